//! The real `hajimi` binary as a process: configuration errors, flags, logs that never
//! carry a secret, JSON logs, and an orderly exit on SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use mock_gemini::{MockGemini, Reply, Rule};
use serde_json::json;

#[test]
fn an_unparsable_value_exits_with_code_2_and_one_clear_line() {
    let out = Command::new(BIN)
        .env("PORT", "abc")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PORT") && stderr.contains("abc"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace") && !stderr.contains("panicked"));
}

#[test]
fn help_and_version_flags_work() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--host", "--port", "--env-file"] {
        assert!(help.contains(flag), "{help}");
    }
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new(BIN)
        .args(["--env-file", "/nonexistent/.env"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn env_file_and_cli_flags_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("my.env");
    std::fs::write(&file, "PASSWORD=\"from-file\"\nPORT=1\nHOST=127.0.0.1\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .args([
            "--env-file",
            file.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .env("ENABLE_STORAGE", "false")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ok = rt.block_on(async {
        let http = client();
        eventually("the server to listen on the CLI port", || async {
            http.get(format!("http://127.0.0.1:{port}/v1/models"))
                .bearer_auth("from-file")
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
        .await
    });
    drop(child);
    // No key is configured: the model list cannot load, 503 (decisions §6); a wrong password
    // or port would be 401 or no answer.
    assert_eq!(ok, 503, "the CLI port and the .env password were used");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_never_contain_a_key_or_the_password() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(Rule::new(Reply::preset("api_key_invalid")).key(KEYS[0]));
    mock.add_rule(
        Rule::new(Reply::preset("quota_429"))
            .key(KEYS[1])
            .model("gemini-2.5-pro"),
    );
    let keys = KEYS.join("\n");
    let p = spawn(&[
        ("PASSWORD", PASSWORD),
        ("GEMINI_API_KEYS", &keys),
        ("GEMINI_BASE_URL", &mock.url()),
        ("FAKE_STREAMING", "false"),
    ]);
    let http = client();
    for model in [FLASH, "gemini-2.5-pro", "no-such-model"] {
        for stream in [false, true] {
            let _ = http
                .post(format!("{}/v1/chat/completions?key={PASSWORD}", p.url))
                .json(&hello(model, stream))
                .send()
                .await
                .unwrap()
                .text()
                .await;
        }
    }
    let _ = http
        .get(format!("{}/v1/models", p.url))
        .header("x-goog-api-key", PASSWORD)
        .send()
        .await
        .unwrap()
        .text()
        .await;
    let _ = http
        .get(format!("{}/v1/models", p.url))
        .bearer_auth("wrong-guess")
        .send()
        .await
        .unwrap()
        .text()
        .await;
    let (code, lines) = p.stop();
    assert_eq!(code, Some(0), "SIGTERM is an orderly exit");
    let all = lines.join("\n");
    for key in KEYS {
        assert!(!all.contains(key), "a key leaked into the logs");
    }
    assert!(!all.contains(PASSWORD), "the password leaked into the logs");
    assert!(
        all.contains("key=…"),
        "the ?key= value is redacted, not dropped"
    );
    let request_lines: Vec<&String> = lines.iter().filter(|l| l.contains("request_id=")).collect();
    assert!(request_lines.len() >= 8, "one line per request: {all}");
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains("attempts=") && l.contains("status=200") && l.contains("key=k"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line() {
    let mock = MockGemini::start().await.unwrap();
    let p = spawn(&[
        ("PASSWORD", PASSWORD),
        ("GEMINI_API_KEYS", KEYS[0]),
        ("GEMINI_BASE_URL", &mock.url()),
        ("LOG_FORMAT", "json"),
        ("CONCURRENT_REQUESTS", "-1"),
    ]);
    let r = client()
        .post(format!("{}/v1/chat/completions", p.url))
        .bearer_auth(PASSWORD)
        .json(&json!({"model": FLASH, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.text().await;
    let (_, lines) = p.stop();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CONCURRENT_REQUESTS=-1") && l.contains("out of range")),
        "the clamp is reported"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"route\":\"/v1/chat/completions\"")
                && l.contains("\"status\":200"))
    );
}

#[test]
fn config_prints_effective_settings_with_sources_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "MAX_RETRY_NUM=4\n").unwrap();
    let out = Command::new(BIN)
        .arg("config")
        .current_dir(dir.path())
        .env_clear()
        .env("PASSWORD", "very-secret-password")
        .env("GEMINI_API_KEYS", KEYS.join(","))
        .env("ENABLE_STORAGE", "false")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("very-secret-password") && !KEYS.iter().any(|k| text.contains(k)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("MAX_RETRY_NUM") && l.contains(".env") && l.contains('4')),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("PASSWORD") && l.contains("environment")),
        "{text}"
    );
    assert!(text.contains("3 key(s)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_check_prints_a_masked_table_and_fails_on_invalid_keys() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(
        Rule::new(Reply::preset("api_key_invalid"))
            .key(KEYS[0])
            .action("list"),
    );
    mock.add_rule(
        Rule::new(Reply::preset("overloaded_503"))
            .key(KEYS[1])
            .action("list"),
    );
    let run = |keys: String| {
        let url = mock.url();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(BIN)
                    .args(["keys", "check"])
                    .env_clear()
                    .env("GEMINI_API_KEYS", keys)
                    .env("GEMINI_BASE_URL", url)
                    .env("ENABLE_STORAGE", "false")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let out = run(KEYS.join(",")).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!KEYS.iter().any(|k| text.contains(k)), "masked: {text}");
    assert!(text.lines().any(|l| l.contains("key_invalid")), "{text}");
    assert!(text.lines().any(|l| l.contains("overloaded")), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.ends_with("valid")).count(),
        1,
        "{text}"
    );
    let out = run(KEYS[2].to_owned()).await;
    assert_eq!(out.status.code(), Some(0));
}

/// Runs the binary with a clean environment plus `env`, in `dir`; a process still running
/// after 30 s (a server that should have refused to start) is killed and the test fails.
fn run_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    for _ in 0..300 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "still running after 30 s: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_misspelled_boolean_or_log_level_exits_with_code_2_and_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("FAKE_STREAMING", "ture"),
        ("ENABLE_STORAGE", "maybe"),
        ("LOG_LEVEL", "verbose"),
    ] {
        let out = run_in(
            dir.path(),
            &[],
            &[
                ("HOST", "127.0.0.1"),
                ("PORT", "0"),
                ("ENABLE_STORAGE", "false"),
                (name, value),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name) && stderr.contains(value), "{stderr}");
        assert!(stderr.contains(" / "), "bilingual: {stderr}");
    }
}

#[test]
fn the_port_in_use_error_is_bilingual() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run_in(
        dir.path(),
        &[],
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", &port),
            ("ENABLE_STORAGE", "false"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(&port))
        .unwrap_or_default();
    assert!(
        line.contains("端口") && line.contains("already in use") && line.contains("PORT"),
        "{stderr}"
    );
    drop(taken);
}

#[test]
fn a_token_that_is_not_key_shaped_is_reported_at_start_up_masked() {
    let broken = "AIzaSyThisKeyLostSomeCharacters";
    let keys = format!("{},{broken},{}", KEYS[0], KEYS[1]);
    let p = spawn(&[
        ("PASSWORD", PASSWORD),
        ("GEMINI_API_KEYS", &keys),
        ("GEMINI_BASE_URL", "http://127.0.0.1:9"),
        ("SKIP_CHECK_API_KEY", "true"),
    ]);
    let (_, lines) = p.stop();
    let all = lines.join("\n");
    assert!(!all.contains(broken), "masked: {all}");
    assert!(
        lines.iter().any(|l| l.contains("GEMINI_API_KEYS")
            && l.contains("entry 2")
            && l.contains(&hajimi::mask::mask(broken))),
        "{all}"
    );
}

#[test]
fn config_shows_every_effective_value_and_its_source_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "UPSTREAM_TIMEOUT=120\n").unwrap();
    let out = run_in(
        dir.path(),
        &["config"],
        &[
            ("PASSWORD", "very-secret-password"),
            (
                "HTTPS_PROXY",
                "http://alice:proxy-pass-123@proxy.example:3128",
            ),
            ("GEMINI_API_KEYS", &KEYS.join(",")),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row: {text}"))
            .to_owned()
    };
    // Defaults are shown with their values, not as "(default)".
    assert!(line("PORT").contains("7860") && line("PORT").contains("default"));
    assert!(line("HOST").contains("0.0.0.0"));
    assert!(
        line("STORAGE_DIR").contains("data"),
        "{}",
        line("STORAGE_DIR")
    );
    assert!(line("REQUEST_DEADLINE").contains("900s"));
    assert!(line("UPSTREAM_TIMEOUT").contains("120s") && line("UPSTREAM_TIMEOUT").contains(".env"));
    assert!(line("METRICS_PASSWORD").contains("(unset)"));
    // Credentials: a proxy URL keeps its user and host, never its password; a password
    // shows at most two characters.
    assert!(
        line("HTTPS_PROXY").contains("http://alice:****@proxy.example:3128"),
        "{}",
        line("HTTPS_PROXY")
    );
    assert!(!text.contains("proxy-pass-123"), "{text}");
    let password = line("PASSWORD");
    assert!(password.contains("environment"), "{password}");
    assert!(
        !password.contains("very") && !password.contains("word") && password.contains("…rd"),
        "{password}"
    );
    assert!(!KEYS.iter().any(|k| text.contains(k)), "{text}");
    // Nothing was created: no ./data directory, no database.
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries,
        vec![".env".to_owned()],
        "created files: {entries:?}"
    );
}

/// `hajimi config --markdown` prints README.md's configuration tables (what lies between the
/// generated-table markers), without reading the configuration: a broken variable is no
/// obstacle.
#[test]
fn config_markdown_prints_the_readmes_tables() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["config", "--markdown"],
        &[("PORT", "not-a-port")],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let begin = readme.find(hajimi::config::table::README_BEGIN).unwrap();
    let end = readme.find(hajimi::config::table::README_END).unwrap();
    let section = &readme[begin + hajimi::config::table::README_BEGIN.len()..end];
    assert_eq!(section.trim(), text.trim());
    assert!(text.contains("| `CACHE_EXPIRY_TIME` | `6h` | 0s–365d | `cache_expiry_time` |"));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_shows_dashboard_values_from_the_store_without_touching_it() {
    let mock = MockGemini::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("store");
    let storage = storage.to_str().unwrap().to_owned();
    let env = [
        ("PASSWORD", PASSWORD),
        ("GEMINI_API_KEYS", KEYS[0]),
        ("ENABLE_STORAGE", "true"),
        ("STORAGE_DIR", storage.as_str()),
        ("SKIP_CHECK_API_KEY", "true"),
    ];
    let mut pairs: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    pairs.extend([
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("GEMINI_BASE_URL".to_owned(), mock.url()),
    ]);
    let config = hajimi::config::Config::from_sources(
        Vec::new(),
        pairs,
        &hajimi::config::CliOverrides::default(),
    )
    .unwrap();
    let server = hajimi::Server::start(config).await.unwrap();
    let r = client()
        .post(format!("{}/api/update-config", server.url()))
        .bearer_auth(PASSWORD)
        .json(&json!({"key": "max_retry_num", "value": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await.unwrap();
    let listing = |p: &str| {
        let mut v: Vec<(String, Vec<u8>, std::time::SystemTime)> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                    e.metadata().unwrap().modified().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    // Opening the store for writing stamps `opened_at`; make sure such a stamp would differ.
    let db = rusqlite::Connection::open(format!("{storage}/hajimi.db")).unwrap();
    db.execute("UPDATE meta SET value = '0' WHERE name = 'opened_at'", [])
        .unwrap();
    drop(db);
    let before = listing(&storage);
    let out = tokio::task::block_in_place(|| run_in(dir.path(), &["config"], &env));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("MAX_RETRY_NUM "))
        .unwrap_or_default();
    assert!(row.contains("dashboard") && row.contains('7'), "{text}");
    assert_eq!(listing(&storage), before, "the store was not written");
}

#[test]
fn keys_check_exits_non_zero_when_no_key_could_be_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["keys", "check"],
        &[
            ("GEMINI_API_KEYS", &KEYS.join(",")),
            ("GEMINI_BASE_URL", "http://127.0.0.1:9"),
            ("ENABLE_STORAGE", "false"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{text}");
    for needle in ["127.0.0.1:9", "HTTPS_PROXY", "GEMINI_BASE_URL"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    assert!(!KEYS.iter().any(|k| text.contains(k)), "{text}");
}

#[test]
fn start_up_names_an_unreachable_upstream_and_counts_no_unchecked_key_as_active() {
    let p = spawn(&[
        ("PASSWORD", PASSWORD),
        ("GEMINI_API_KEYS", &KEYS.join(",")),
        ("GEMINI_BASE_URL", "http://127.0.0.1:9"),
    ]);
    eventually_blocking("the start-up key check's summary", || {
        let lines = p.lines();
        if lines.iter().any(|l| l.contains("key check done")) {
            Ok(())
        } else {
            Err(lines)
        }
    });
    let (_, lines) = p.stop();
    let all = lines.join("\n");
    let summary = lines.iter().find(|l| l.contains("key check done")).unwrap();
    assert!(
        summary.contains("passed=0") && summary.contains("unchecked=3"),
        "{summary}"
    );
    assert!(!summary.contains("active=3"), "{summary}");
    assert!(
        lines.iter().any(|l| l.contains("127.0.0.1:9")
            && l.contains("HTTPS_PROXY")
            && l.contains("GEMINI_BASE_URL")),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_check_also_checks_vertex_credentials() {
    let mock = MockGemini::start().await.unwrap();
    let good = "cli-good@proj-good.iam.gserviceaccount.com";
    let bad = "cli-bad@proj-bad.iam.gserviceaccount.com";
    let files: Vec<serde_json::Value> = [(good, "proj-good"), (bad, "proj-bad")]
        .iter()
        .map(|(email, project)| {
            serde_json::from_str(&mock.vertex_account(email, project).unwrap().json).unwrap()
        })
        .collect();
    mock.vertex_refuse(bad, Some("Invalid grant: account not found"));
    let creds = serde_json::Value::Array(files).to_string();
    let url = mock.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["keys", "check"])
            .env_clear()
            .env("GOOGLE_CREDENTIALS_JSON", creds)
            .env("VERTEX_BASE_URL", url)
            .env("ENABLE_STORAGE", "false")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "one account is refused: {text}");
    let line = |email: &str| {
        text.lines()
            .find(|l| l.contains(email))
            .unwrap_or_else(|| panic!("{email} listed: {text}"))
            .to_owned()
    };
    assert!(line(good).ends_with("valid"), "{text}");
    assert!(line(bad).contains("key_invalid"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(text.contains("2 key(s)"), "{text}");
}
