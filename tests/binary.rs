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
    let mut child = Command::new(BIN)
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
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ok = rt.block_on(async {
        let http = client();
        for _ in 0..200 {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{port}/v1/models"))
                .bearer_auth("from-file")
                .send()
                .await
            {
                return r.status().as_u16();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        0
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ok, 200, "the CLI port and the .env password were used");
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
