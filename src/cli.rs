//! The command-line tools beside the server: `hajimi config` (effective settings and where
//! each came from, secrets masked) and `hajimi keys check` (validate the configured keys and
//! print a masked table).

use std::process::ExitCode;

use crate::config::editable::EDITABLE;
use crate::config::{Config, Source};
use crate::mask::mask;

/// Names whose values are secrets.
fn secret_name(name: &str) -> bool {
    ["PASSWORD", "KEY", "CREDENTIALS", "REDIS_URL", "TOKEN"]
        .iter()
        .any(|s| name.contains(s))
}

/// Applies what the store saved (dashboard values, added and removed keys), without starting
/// anything else.
pub fn with_saved(mut config: Config) -> Config {
    if let Ok((Some(store), loaded, _)) = crate::persist::open(&config) {
        let _ = crate::persist::apply_saved(&mut config, &loaded);
        store.close();
    }
    config
}

/// Renders the effective configuration as a table.
pub fn config_table(config: &Config) -> String {
    let mut rows: Vec<(String, String, &'static str)> = Vec::new();
    for (name, source) in &config.provenance {
        if name.starts_with("GEMINI_API_KEYS") {
            continue;
        }
        let value = if let Some(e) = EDITABLE.iter().find(|e| e.env == name) {
            let v = (e.get)(&config.settings);
            if e.secret {
                v.to_string()
            } else {
                v.to_string().trim_matches('"').to_owned()
            }
        } else {
            match config.env.get(name) {
                Some(raw) if secret_name(name) => mask(raw),
                Some(raw) => raw.to_owned(),
                None => "(default)".to_owned(),
            }
        };
        rows.push((name.clone(), value, source_label(*source)));
    }
    let keys = format!(
        "{} key(s): {}",
        config.keys.len(),
        config
            .keys
            .iter()
            .map(|k| mask(k))
            .collect::<Vec<_>>()
            .join(", ")
    );
    rows.push(("GEMINI_API_KEYS".into(), keys, "environment + dashboard"));
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(8);
    let mut out = format!("{:width$}  {:<24}  VALUE\n", "NAME", "SOURCE");
    for (name, value, source) in rows {
        let value: String = value.chars().take(120).collect();
        out.push_str(&format!("{name:width$}  {source:<24}  {value}\n"));
    }
    out
}

fn source_label(s: Source) -> &'static str {
    s.label()
}

#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn print_config(config: &Config) -> ExitCode {
    print!("{}", config_table(config));
    ExitCode::SUCCESS
}

/// Checks every configured key against Google (or `GEMINI_BASE_URL`) and prints the result.
#[expect(clippy::print_stdout, reason = "the command's output")]
pub async fn check_keys(config: Config) -> ExitCode {
    let upstream = match crate::upstream::Upstream::new(&config.settings) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("hajimi: {e}");
            return ExitCode::FAILURE;
        }
    };
    if config.keys.is_empty() {
        println!("没有配置任何密钥 / No keys configured (GEMINI_API_KEYS).");
        return ExitCode::from(1);
    }
    let pool = crate::keys::KeyPool::new(config.keys.clone());
    let settings = &config.settings;
    let results = futures_util::future::join_all(pool.slots().iter().map(|slot| {
        let upstream = &upstream;
        async move {
            (
                slot.clone(),
                crate::keys::health::check(upstream, settings, slot).await,
            )
        }
    }))
    .await;
    println!("{:<14} {:<10} RESULT", "KEY", "ID");
    let mut bad = 0;
    for (slot, result) in results {
        let verdict = match &result {
            Ok(()) => "valid".to_owned(),
            Err(f) => {
                if matches!(
                    f,
                    crate::upstream::classify::Failure::KeyInvalid
                        | crate::upstream::classify::Failure::KeySuspended
                ) {
                    bad += 1;
                }
                format!("{} ({})", f.kind(), f.label())
            }
        };
        println!("{:<14} {:<10} {verdict}", slot.masked(), slot.id);
    }
    println!("{} key(s), {} invalid or suspended", pool.len(), bad);
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
        assert!(table.contains("supe…word"));
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
        assert!(line("FAKE_STREAMING").contains("default"));
    }
}
