//! The embedded store on a real SQLite file: restarts keep settings, keys, key states and
//! statistics; the dashboard precedence rule; HAJIMI's settings.json import; a SIGKILL loses
//! nothing committed; graceful shutdown lets a running stream finish.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use hajimi::config::{CliOverrides, Config};
use mock_gemini::{MockGemini, Reply, Rule};
use serde_json::{Value, json};

const WEB: &str = "web-secret";

async fn boot(mock: &MockGemini, dir: &Path, extra: &[(&str, &str)]) -> hajimi::Server {
    let mut env: Vec<(String, String)> = vec![
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("PASSWORD".into(), PASSWORD.into()),
        ("WEB_PASSWORD".into(), WEB.into()),
        ("GEMINI_API_KEYS".into(), KEYS.join(",")),
        ("GEMINI_BASE_URL".into(), mock.url()),
        ("ENABLE_STORAGE".into(), "true".into()),
        ("STORAGE_DIR".into(), dir.display().to_string()),
        ("RANDOM_STRING".into(), "false".into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    let config = Config::from_sources(Vec::new(), env, &CliOverrides::default()).unwrap();
    hajimi::Server::start(config).await.unwrap()
}

async fn dashboard(server: &hajimi::Server) -> Value {
    client()
        .get(format!("{}/api/dashboard-data", server.url()))
        .bearer_auth(WEB)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn chat(server: &hajimi::Server, text: &str) -> u16 {
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": text}]});
    client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .bearer_auth(PASSWORD)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin_post(server: &hajimi::Server, path: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}{path}", server.url()))
        .bearer_auth(WEB)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn key_state(d: &Value, secret: &str) -> String {
    let masked = format!("{}…{}", &secret[..4], &secret[secret.len() - 4..]);
    // KEYS differ only at the end: the id identifies the key.
    let id = hajimi::mask::KeyId::of(secret).to_string();
    d["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str() && k["key"] == masked.as_str())
        .map(|k| k["state"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Must show (issue 5): stats and key states survive a restart.
#[tokio::test]
async fn statistics_and_key_states_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(Rule::new(Reply::preset("api_key_invalid")).key(KEYS[0]));
    let server = boot(&mock, dir.path(), &[]).await;
    for i in 0..6 {
        assert_eq!(chat(&server, &format!("q{i}")).await, 200);
    }
    let before = dashboard(&server).await;
    assert_eq!(key_state(&before, KEYS[0]), "invalid");
    let calls = before["last_24h_calls"].as_u64().unwrap();
    assert!(calls >= 6);
    server.shutdown().await.unwrap();

    let server = boot(&mock, dir.path(), &[]).await;
    let after = dashboard(&server).await;
    assert_eq!(
        key_state(&after, KEYS[0]),
        "invalid",
        "the key state came back from the store"
    );
    assert_eq!(
        after["last_24h_calls"].as_u64(),
        Some(calls),
        "the statistics came back"
    );
    assert_eq!(after["last_24h_tokens"], before["last_24h_tokens"]);
    let per_key = |d: &Value| -> u64 {
        d["api_key_stats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["calls_24h"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(per_key(&after), per_key(&before));
    let before_calls = mock.requests().len();
    assert_eq!(chat(&server, "after restart").await, 200);
    assert!(
        mock.requests()[before_calls..]
            .iter()
            .all(|r| r.api_key.as_deref() != Some(KEYS[0])),
        "the invalid key stays out after a restart"
    );
    server.shutdown().await.unwrap();
}

/// Must show (issue 5): a setting changed through `/api/update-config` survives a restart —
/// and yields when the environment value it overrode changes (decisions §1).
#[tokio::test]
async fn a_dashboard_setting_survives_restarts_until_the_environment_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockGemini::start().await.unwrap();
    let server = boot(&mock, dir.path(), &[("MAX_RETRY_NUM", "15")]).await;
    let (s, _) = admin_post(
        &server,
        "/api/update-config",
        json!({"key": "max_retry_num", "value": 2}),
    )
    .await;
    assert_eq!(s, 200);
    server.shutdown().await.unwrap();

    let server = boot(&mock, dir.path(), &[("MAX_RETRY_NUM", "15")]).await;
    assert_eq!(
        dashboard(&server).await["max_retry_num"],
        2,
        "the saved value is back"
    );
    mock.add_rule(Rule::new(Reply::preset("overloaded_503")).action("generateContent"));
    let calls = mock.requests().len();
    assert_eq!(chat(&server, "retries").await, 503);
    let attempts = mock.requests()[calls..]
        .iter()
        .filter(|r| r.action.as_deref() == Some("generateContent"))
        .count();
    assert_eq!(attempts, 2, "and it governs requests");
    mock.reset();
    server.shutdown().await.unwrap();

    let server = boot(&mock, dir.path(), &[("MAX_RETRY_NUM", "7")]).await;
    assert_eq!(
        dashboard(&server).await["max_retry_num"],
        7,
        "editing the environment always takes effect"
    );
    server.shutdown().await.unwrap();
    let server = boot(&mock, dir.path(), &[("MAX_RETRY_NUM", "15")]).await;
    assert_eq!(
        dashboard(&server).await["max_retry_num"],
        15,
        "the overridden saved value was dropped"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn added_and_removed_keys_survive_and_tombstones_yield_to_env_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockGemini::start().await.unwrap();
    let env_keys = format!("{},{}", KEYS[0], KEYS[1]);
    let server = boot(&mock, dir.path(), &[("GEMINI_API_KEYS", &env_keys)]).await;
    let (s, _) = admin_post(&server, "/api/keys/add", json!({"keys": KEYS[2]})).await;
    assert_eq!(s, 200);
    let id = hajimi::mask::KeyId::of(KEYS[0]).to_string();
    let (s, _) = admin_post(&server, "/api/keys/remove", json!({"ids": [id]})).await;
    assert_eq!(s, 200);
    server.shutdown().await.unwrap();

    let server = boot(&mock, dir.path(), &[("GEMINI_API_KEYS", &env_keys)]).await;
    let d = dashboard(&server).await;
    let ids: Vec<String> = d["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(d["keys"].as_array().map(Vec::len), Some(2));
    assert!(
        ids.contains(&hajimi::mask::KeyId::of(KEYS[2]).to_string()),
        "the added key is back"
    );
    assert!(
        !ids.contains(&hajimi::mask::KeyId::of(KEYS[0]).to_string()),
        "the removed key stays removed"
    );
    server.shutdown().await.unwrap();

    let changed = format!("{},{}", KEYS[1], KEYS[0]);
    let server = boot(&mock, dir.path(), &[("GEMINI_API_KEYS", &changed)]).await;
    assert_eq!(
        dashboard(&server).await["keys"].as_array().map(Vec::len),
        Some(3),
        "the variable changed: its keys count again"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn hajimis_settings_json_is_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("settings.json"),
        serde_json::to_string_pretty(&json!({
            "FAKE_STREAMING": false, "MAX_RETRY_NUM": 9, "CONCURRENT_REQUESTS": 2,
            "search": {"search_mode": true, "search_prompt": "搜索！"},
            "GEMINI_API_KEYS": format!("{},{}", KEYS[1], "AIzaSyIMPORTED0000000000000000000000001"),
            "INVALID_API_KEYS": "", "api_call_stats": {"calls": []}, "PASSWORD": "ignored"
        }))
        .unwrap(),
    )
    .unwrap();
    let mock = MockGemini::start().await.unwrap();
    let server = boot(&mock, dir.path(), &[("GEMINI_API_KEYS", KEYS[0])]).await;
    let d = dashboard(&server).await;
    assert_eq!(
        (
            d["fake_streaming"].as_bool(),
            d["max_retry_num"].as_u64(),
            d["concurrent_requests"].as_u64()
        ),
        (Some(false), Some(9), Some(2))
    );
    assert_eq!(
        (d["search_mode"].as_bool(), d["search_prompt"].as_str()),
        (Some(true), Some("搜索！"))
    );
    assert_eq!(
        d["keys"].as_array().map(Vec::len),
        Some(3),
        "HAJIMI's saved keys join the environment's"
    );
    let (s, _) = admin_post(
        &server,
        "/api/update-config",
        json!({"key": "max_retry_num", "value": 4}),
    )
    .await;
    assert_eq!(s, 200);
    server.shutdown().await.unwrap();
    let server = boot(&mock, dir.path(), &[("GEMINI_API_KEYS", KEYS[0])]).await;
    assert_eq!(
        dashboard(&server).await["max_retry_num"],
        4,
        "imported once: later changes are not overwritten"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn storage_off_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockGemini::start().await.unwrap();
    let server = boot(&mock, dir.path(), &[("ENABLE_STORAGE", "false")]).await;
    assert_eq!(chat(&server, "x").await, 200);
    server.shutdown().await.unwrap();
    assert!(!dir.path().join("hajimi.db").exists());
}

/// Overwrites the root pages of the tables the request path writes to (usage and the
/// request log) with garbage: the file opens, start-up reads what it needs, and the first
/// write of statistics meets "database disk image is malformed".
/// Calls counted in the store's per-minute usage rows, read through a separate read-only
/// connection (None while the file or its tables do not exist yet).
fn committed_calls(db: &Path) -> Option<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row(
        "SELECT COALESCE(SUM(calls), 0) FROM usage WHERE bucket = 'minute'",
        [],
        |r| r.get(0),
    )
    .ok()
}

fn corrupt_usage_tables(db: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let (page_size, roots) = {
        let conn = rusqlite::Connection::open(db).unwrap();
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let mut s = conn
            .prepare("SELECT rootpage FROM sqlite_master WHERE tbl_name IN ('usage', 'request_log') AND rootpage > 0")
            .unwrap();
        let roots: Vec<i64> = s
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (page_size, roots)
    };
    assert!(roots.len() >= 2, "{roots:?}");
    let mut file = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    for root in roots {
        file.seek(SeekFrom::Start(
            u64::try_from((root - 1) * page_size).unwrap(),
        ))
        .unwrap();
        file.write_all(&vec![0xFF; usize::try_from(page_size).unwrap()])
            .unwrap();
    }
    file.sync_all().unwrap();
}

/// Must not be possible (issue 8 item 11): a store whose writes fail with "malformed" while
/// `/ready` stays green.
#[tokio::test]
async fn a_corrupted_store_never_reports_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockGemini::start().await.unwrap();
    let server = boot(&mock, dir.path(), &[]).await;
    assert_eq!(chat(&server, "before").await, 200);
    server.shutdown().await.unwrap();
    corrupt_usage_tables(&dir.path().join("hajimi.db"));

    let server = boot(&mock, dir.path(), &[]).await;
    let ready = || async {
        let r = client()
            .get(format!("{}/ready", server.url()))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(ready().await.0, 200, "the file opens and start-up reads it");
    assert_eq!(
        chat(&server, "after").await,
        200,
        "requests are still served"
    );
    // The writer finds the damage when it next commits.
    let (status, body) = eventually("/ready to report the damaged store", || async {
        let (status, body) = ready().await;
        if status == 200 {
            Err(body)
        } else {
            Ok((status, body))
        }
    })
    .await;
    assert_eq!(status, 503, "{body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("malformed"), "the reason is given: {body}");
    assert_eq!(
        client()
            .get(format!("{}/health", server.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the process is still alive"
    );
    server.shutdown().await.unwrap();
}

#[test]
fn an_explicit_storage_dir_that_cannot_be_written_stops_start_up() {
    let out = std::process::Command::new(BIN)
        .env("STORAGE_DIR", "/proc/hajimi-cannot-write-here")
        .env("PORT", "0")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/proc/hajimi-cannot-write-here"),
        "{stderr}"
    );
}

/// A SIGKILL during a stream of writes loses nothing committed (decisions §7): settings and
/// keys answered 200 are on disk; usage the writer has committed (within a second) is on disk.
#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockGemini::start().await.unwrap();
    let storage = dir.path().join("store");
    let storage_s = storage.display().to_string();
    let keys = KEYS.join(",");
    let env = [
        ("PASSWORD", PASSWORD),
        ("WEB_PASSWORD", WEB),
        ("GEMINI_API_KEYS", keys.as_str()),
        ("GEMINI_BASE_URL", &mock.url()),
        ("ENABLE_STORAGE", "true"),
        ("STORAGE_DIR", storage_s.as_str()),
        ("RANDOM_STRING", "false"),
    ];
    let p = spawn_in(dir.path(), &env);
    let http = client();
    let body = json!({"model": FLASH, "messages": [{"role": "user", "content": "count me"}]});
    for _ in 0..5 {
        assert_eq!(
            http.post(format!("{}/v1/chat/completions", p.url))
                .bearer_auth(PASSWORD)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let r = http
        .post(format!("{}/api/update-config", p.url))
        .bearer_auth(WEB)
        .json(&json!({"key": "max_empty_responses", "value": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{}/api/keys/add", p.url))
        .bearer_auth(WEB)
        .json(&json!({"keys": "AIzaSyADDEDBEFOREKILL0000000000000000001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Usage is committed within a second: wait until the five calls are in the file, then
    // keep writing while the process dies.
    let db = storage.join("hajimi.db");
    eventually("the five calls committed to the store", || async {
        committed_calls(&db).filter(|n| *n >= 5)
    })
    .await;
    let generated = || {
        mock.requests()
            .iter()
            .filter(|r| r.action.as_deref() == Some("generateContent"))
            .count()
    };
    let before_noise = generated();
    let noise = {
        let http = http.clone();
        let url = p.url.clone();
        let body = body.clone();
        tokio::task::spawn(async move {
            for _ in 0..50 {
                let _ = http
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(PASSWORD)
                    .json(&body)
                    .send()
                    .await;
            }
        })
    };
    eventually("the noise to reach Google", || async {
        generated() > before_noise
    })
    .await;
    p.kill9();
    let _ = noise.await;

    let p = spawn_in(dir.path(), &env);
    let d: Value = http
        .get(format!("{}/api/dashboard-data", p.url))
        .bearer_auth(WEB)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["max_empty_responses"], 3,
        "the committed setting survived"
    );
    assert_eq!(
        d["keys"].as_array().map(Vec::len),
        Some(4),
        "the committed key survived"
    );
    assert!(
        d["last_24h_calls"].as_u64().unwrap() >= 5,
        "usage older than a second survived: {}",
        d["last_24h_calls"]
    );
    let (code, _) = p.stop();
    assert_eq!(code, Some(0));
}

/// Graceful shutdown: SIGTERM stops accepting, lets a running stream finish, exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_running_stream_finish() {
    let mock = MockGemini::start().await.unwrap();
    mock.add_rule(
        Rule::new(Reply::text("a b c d e f").chunks(6).chunk_delay_ms(300))
            .action("streamGenerateContent"),
    );
    let p = spawn(&[
        ("PASSWORD", PASSWORD),
        ("GEMINI_API_KEYS", KEYS[0]),
        ("GEMINI_BASE_URL", &mock.url()),
        ("FAKE_STREAMING", "false"),
    ]);
    let http = client();
    let r = http
        .post(format!("{}/v1/chat/completions", p.url))
        .bearer_auth(PASSWORD)
        .json(&hello(FLASH, true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    p.signal("TERM");
    eventually("no new connections after SIGTERM", || async {
        let fresh = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        match fresh.get(format!("{}/health", p.url)).send().await {
            Err(refused) => Ok(refused),
            Ok(answered) => Err(answered.status()),
        }
    })
    .await;
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "the stream finished: {text}"
    );
    let (code, _) = p.stop();
    assert_eq!(code, Some(0));
}
