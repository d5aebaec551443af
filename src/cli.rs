//! The command-line tools beside the server: `hajimi config` (effective settings and where
//! each came from, secrets masked) and `hajimi keys check` (validate the configured keys and
//! print a masked table).

use std::process::ExitCode;

use crate::config::parse::UNSET;
use crate::config::table::{self, Entry, Group, Kind, TABLE};
use crate::config::{Config, Source};
use crate::keys::health::{Verdict, unreachable_hint};
use crate::mask::mask;

/// Applies what the store saved (dashboard values, added and removed keys) and HAJIMI's
/// `settings.json` not yet imported, reading only: nothing is created or written on disk.
pub fn with_saved(mut config: Config) -> Config {
    if !config.settings.enable_storage {
        return config;
    }
    let dir = config.settings.storage_dir.path.clone();
    let loaded = crate::store::read_existing(&dir).unwrap_or_default();
    let _ = crate::persist::apply_saved(&mut config, &loaded);
    let _ = crate::persist::import_hajimi(&mut config, &dir, &loaded);
    config
}

/// The value shown for a variable: the dashboard's value when it set one, else the value in
/// effect recorded while loading (masked).
fn shown_value(config: &Config, entry: &Entry, name: &str, source: Source) -> String {
    if source == Source::Dashboard {
        return entry.shown(&config.settings);
    }
    config
        .effective
        .get(name)
        .cloned()
        .unwrap_or_else(|| UNSET.to_owned())
}

/// The variables an entry shows as rows: its own, the numbered key variables that were read,
/// and a lower-case proxy twin when it is set.
fn row_names(config: &Config, entry: &Entry) -> Vec<String> {
    if let Kind::Keys { numbered: true } = entry.kind {
        let mut read: Vec<(u32, &String)> = config
            .provenance
            .keys()
            .filter_map(|n| Some((n.strip_prefix("GEMINI_API_KEYS_")?.parse().ok()?, n)))
            .collect();
        read.sort();
        return read.into_iter().map(|(_, n)| n.clone()).collect();
    }
    let mut names = vec![entry.env.to_owned()];
    if let Some(alias) = entry.alias
        && config.effective.get(alias).is_some_and(|v| v != UNSET)
    {
        names.push(alias.to_owned());
    }
    names
}

/// One row of `hajimi config`: variable, value shown, source.
type Row = (String, String, &'static str);

/// Renders the effective configuration as a table, by group in the settings table's order:
/// every setting, its value in effect (secrets masked, unset ones as `(unset)`) and where that
/// value came from.
pub fn config_table(config: &Config) -> String {
    let mut sections: Vec<(Group, Vec<Row>)> = Vec::new();
    for group in Group::ALL {
        let mut rows = Vec::new();
        for entry in TABLE.iter().filter(|e| e.group == group) {
            for name in row_names(config, entry) {
                let source = config
                    .provenance
                    .get(&name)
                    .copied()
                    .unwrap_or(Source::Default);
                let value = shown_value(config, entry, &name, source);
                rows.push((name, value, source.label()));
            }
        }
        sections.push((group, rows));
    }
    let width = sections
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.0.len()))
        .max()
        .unwrap_or(8);
    let mut out = format!("{:width$}  {:<12}  VALUE\n", "NAME", "SOURCE");
    for (group, rows) in sections {
        let (en, zh) = group.title();
        out.push_str(&format!("\n# {en} / {zh}\n"));
        for (name, value, source) in rows {
            let value: String = value.chars().take(160).collect();
            out.push_str(&format!("{name:width$}  {source:<12}  {value}\n"));
        }
    }
    let from_env = config
        .keys
        .iter()
        .filter(|k| config.key_vars.iter().any(|(v, _)| v == *k))
        .count();
    out.push_str(&format!(
        "\n{} key(s) in use / 使用中的密钥: {} from the environment, {} added from the dashboard: {}\n",
        config.keys.len(),
        from_env,
        config.keys.len() - from_env,
        config
            .keys
            .iter()
            .map(|k| mask(k))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

/// `hajimi config --markdown`: README.md's configuration tables, from the settings table.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn print_markdown() -> ExitCode {
    print!("{}", table::markdown());
    ExitCode::SUCCESS
}

#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn print_config(config: &Config) -> ExitCode {
    print!("{}", config_table(config));
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    ExitCode::SUCCESS
}

/// Checks every configured key against Google (or `GEMINI_BASE_URL`), and every Vertex
/// credential against Vertex (or `VERTEX_BASE_URL`), and prints the result.
/// Exit code 1 when a key is invalid or suspended, or when no key could be checked at all
/// (no verdict from the upstream for any key).
#[expect(clippy::print_stdout, reason = "the command's output")]
pub async fn check_keys(config: Config) -> ExitCode {
    let upstream = match crate::upstream::Upstream::new(&config.settings) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("hajimi: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = &config.settings;
    // Vertex credentials (service accounts, express keys) are checked with the keys.
    let (vertex, problems) = crate::vertex::VertexCreds::new(settings);
    for p in &problems {
        eprintln!("hajimi: {p}");
    }
    if config.keys.is_empty() && vertex.pool.is_empty() {
        println!(
            "没有配置任何密钥或 Vertex 凭据 / No keys configured (GEMINI_API_KEYS) and no Vertex credential."
        );
        return ExitCode::from(1);
    }
    let pool = crate::keys::KeyPool::new(config.keys.clone());
    let caller = crate::vertex::send::Caller {
        upstream: upstream.clone(),
        tokens: std::sync::Arc::clone(&vertex.tokens),
    };
    let slots: Vec<_> = pool
        .slots()
        .iter()
        .chain(vertex.pool.slots().iter())
        .cloned()
        .collect();
    let total = slots.len();
    let results = futures_util::future::join_all(slots.into_iter().map(|slot| {
        let (upstream, caller) = (&upstream, &caller);
        async move {
            let result = match slot.kind() {
                crate::keys::Kind::ApiKey => {
                    crate::keys::health::check(upstream, settings, &slot).await
                }
                _ => crate::vertex::send::check(caller, settings, &slot).await,
            };
            (slot, result)
        }
    }))
    .await;
    println!("{:<14} {:<10} RESULT", "KEY", "ID");
    let (mut bad, mut verdicts, mut unreachable) = (0, 0, 0);
    for (slot, result) in results {
        match Verdict::of(&result) {
            Verdict::Passed => verdicts += 1,
            Verdict::Refused => {
                verdicts += 1;
                bad += 1;
            }
            Verdict::Limited => verdicts += 1,
            Verdict::Unreachable => unreachable += 1,
            Verdict::Inconclusive => {}
        }
        let verdict = match &result {
            Ok(()) => "valid".to_owned(),
            Err(f) => format!("{} ({})", f.kind(), f.label()),
        };
        println!("{:<14} {:<10} {verdict}", slot.masked(), slot.id);
    }
    println!(
        "{} key(s), {} invalid or suspended, {} not checked",
        total,
        bad,
        total - verdicts
    );
    if verdicts == 0 {
        let host = crate::config::base_url_host(&settings.gemini_base_url);
        if unreachable == total {
            println!("{}", unreachable_hint(settings));
        } else {
            println!(
                "没有一个密钥得到 {host} 的结论（过载或错误），请稍后再试 / no key could be checked: {host} gave no verdict on any key (overloaded or failing); try again later"
            );
        }
        return ExitCode::from(1);
    }
    if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CliOverrides;

    #[test]
    fn the_table_shows_sources_and_never_a_secret() {
        let key = format!("AIzaSy{:0>33}", 1); // a fake key of the AI Studio shape
        let env = vec![
            ("PASSWORD".to_owned(), "super-secret-password".to_owned()),
            ("GEMINI_API_KEYS".to_owned(), key.clone()),
            ("MAX_RETRY_NUM".to_owned(), "4".to_owned()),
        ];
        let config = Config::from_sources(
            vec![("PORT".into(), "8000".into())],
            env,
            &CliOverrides::default(),
        )
        .expect("config");
        let table = config_table(&config);
        assert!(!table.contains("super-secret-password"), "{table}");
        assert!(!table.contains(&key));
        let password = line_of(&table, "PASSWORD");
        assert!(
            password.contains("…rd") && !password.contains("supe"),
            "at most two characters of a password: {password}"
        );
        let line = |name: &str| {
            table
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(
            line("MAX_RETRY_NUM").contains("environment") && line("MAX_RETRY_NUM").contains('4')
        );
        assert!(line("PORT").contains(".env") && line("PORT").contains("8000"));
        assert!(
            line("FAKE_STREAMING").contains("default") && line("FAKE_STREAMING").contains("true")
        );
    }

    #[test]
    fn rows_follow_the_settings_table_by_group() {
        let keys = [1, 2].map(|n| format!("AIzaSy{n:0>33}"));
        let env = vec![
            ("GEMINI_API_KEYS_1".to_owned(), keys[0].clone()),
            ("GEMINI_API_KEYS_2".to_owned(), keys[1].clone()),
            (
                "https_proxy".to_owned(),
                "http://u:pw-123@proxy:1".to_owned(),
            ),
        ];
        let config =
            Config::from_sources(Vec::new(), env, &CliOverrides::default()).expect("config");
        let table = config_table(&config);
        let at = |name: &str| {
            table
                .lines()
                .position(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} row:\n{table}"))
        };
        assert!(at("# Basic") < at("PASSWORD"));
        assert!(at("PASSWORD") < at("GEMINI_API_KEYS_1"));
        assert!(at("GEMINI_API_KEYS_1") < at("GEMINI_API_KEYS_2"));
        assert!(at("GEMINI_API_KEYS_2") < at("MAX_RETRY_NUM"));
        assert!(at("MAX_RETRY_NUM") < at("VERTEX_LOCATION"));
        assert!(line_of(&table, "https_proxy").contains("http://u:****@proxy:1"));
        assert!(line_of(&table, "HTTPS_PROXY").contains("(unset)"));
        assert!(!table.contains("pw-123"), "{table}");
    }

    fn line_of(table: &str, name: &str) -> String {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn every_setting_shows_its_value_in_effect() {
        let config =
            Config::from_sources(Vec::new(), Vec::new(), &CliOverrides::default()).expect("config");
        let table = config_table(&config);
        for (name, value) in [
            ("PORT", "7860"),
            ("HOST", "0.0.0.0"),
            ("UPSTREAM_TIMEOUT", "600s"),
            ("UPSTREAM_CONNECT_TIMEOUT", "10s"),
            ("MAX_BODY_SIZE", "64 MiB"),
            (
                "GEMINI_BASE_URL",
                "https://generativelanguage.googleapis.com",
            ),
            ("LOG_LEVEL", "info"),
            ("REDIS_URL", "(unset)"),
            ("METRICS_PASSWORD", "(unset)"),
            ("GOOGLE_CREDENTIALS_JSON", "(unset)"),
            ("WEB_PASSWORD", "(same as PASSWORD)"),
            ("BLOCKED_MODELS", "(empty)"),
        ] {
            let line = line_of(&table, name);
            assert!(line.contains(value), "{name}: {line:?}\n{table}");
            assert!(line.contains("default"), "{name}: {line:?}");
        }
        assert!(
            !table.contains("(default)"),
            "no value hidden behind '(default)': {table}"
        );
        // Every setting read while loading has a row.
        for name in config.provenance.keys() {
            if name.chars().all(|c| !c.is_ascii_lowercase()) {
                assert!(!line_of(&table, name).is_empty(), "{name} missing");
            }
        }
    }
}
