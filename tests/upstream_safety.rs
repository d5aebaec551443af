//! What a hostile client must never get through the proxy (issue 8 items 1, 4, 7): an upstream
//! URL outside the fixed list of Google endpoints (encoded `/`, `?`, `#`, double-encoded `:`),
//! a query parameter or credential of its own upstream, past `BLOCKED_MODELS` or the per-IP
//! limit; the client password upstream or in a log line through an encoded query name; and
//! the pool's keys sent to wherever an upstream redirect points.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mock_gemini::{MockGemini, Recorded, Reply, Rule};
use serde_json::{Value, json};

/// A key the client tries to smuggle into the upstream query.
const INJECTED: &str = "AIzaSyINJECTEDKEY0000000000000000000000";

/// Every attack form of the issue, on the model `x` (or `gemini-2.5-flash`).
const ATTACKS: [&str; 6] = [
    "x:generateContent%2F..%2F..%2Ffiles",
    "gemini-2.5-flash:generateContent%3Fkey%3DAIzaSyINJECTEDKEY0000000000000000000000",
    "gemini-2.5-flash:generateContent%23fragment",
    "x:generateContent%2F..%2Fgemini-2.5-pro%253AgenerateContent",
    "..%2F..%2Ffiles%3F:generateContent",
    "gemini-2.5-flash%253AgenerateContent",
];

/// The native route prefixes a model segment can follow.
const PREFIXES: [&str; 4] = [
    "/v1beta/models/",
    "/v1alpha/models/",
    "/gemini/v1beta/models/",
    "/v1/models/",
];

fn google_request() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
}

async fn native_post(h: &Harness, path: &str) -> reqwest::Response {
    h.http
        .post(h.url(path))
        .header("x-goog-api-key", PASSWORD)
        .json(&google_request())
        .send()
        .await
        .unwrap()
}

/// What the mock saw besides the start-up key checks and model listing (`GET /v1beta/models`).
fn traffic(mock: &MockGemini) -> Vec<Recorded> {
    mock.requests()
        .into_iter()
        .filter(|r| !(r.method == "GET" && r.path == "/v1beta/models"))
        .collect()
}

fn describe(recs: &[Recorded]) -> Vec<String> {
    recs.iter()
        .map(|r| {
            format!(
                "{} {}?{}",
                r.method,
                r.path,
                r.query.as_deref().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn encoded_path_never_reaches_other_google_paths() {
    let h = start(&[]).await;
    for prefix in PREFIXES {
        for attack in ATTACKS {
            let path = format!("{prefix}{attack}");
            let r = native_post(&h, &path).await;
            let status = r.status().as_u16();
            let (_, v) = json(r).await;
            assert!(
                status == 400 || status == 404,
                "{path}: expected 400/404, got {status}: {v}"
            );
            assert!(
                v["error"]["code"].is_u64() && v["error"]["status"].is_string(),
                "{path}: Google's error shape: {v}"
            );
            let seen = traffic(&h.mock);
            assert!(
                seen.is_empty(),
                "{path} reached the upstream: {:?}",
                describe(&seen)
            );
        }
    }
}

#[tokio::test]
async fn unknown_actions_and_bad_model_ids_never_reach_the_upstream() {
    let h = start(&[]).await;
    for (path, want) in [
        ("/v1beta/models/gemini-2.5-flash:deleteEverything", 404),
        ("/v1beta/models/gemini-2.5-flash:generatecontent", 404),
        ("/v1beta/models/gemini-2.5-flash:", 404),
        ("/v1beta/models/:generateContent", 400),
        ("/v1beta/models/gemini%202.5:generateContent", 400),
        ("/v1beta/models/gemini%252Fx:generateContent", 400),
        ("/v1beta/models/.:generateContent", 400),
        ("/v1beta/models/-x:generateContent", 400),
    ] {
        let r = native_post(&h, path).await;
        let status = r.status().as_u16();
        let (_, v) = json(r).await;
        assert_eq!(status, want, "{path}: {v}");
        assert!(v["error"]["status"].is_string(), "{path}: {v}");
    }
    let long = format!("/v1beta/models/{}:generateContent", "a".repeat(129));
    assert_eq!(native_post(&h, &long).await.status(), 400);
    for path in [
        "/v1beta/models/gemini%2F..%2F..%2Ffiles",
        "/v1beta/models/x%3Fkey%3Dy",
    ] {
        let r = h
            .http
            .get(h.url(path))
            .header("x-goog-api-key", PASSWORD)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
    let seen = traffic(&h.mock);
    assert!(
        seen.is_empty(),
        "reached the upstream: {:?}",
        describe(&seen)
    );
    // The allowed actions still work.
    for action in ["generateContent", "countTokens"] {
        let r = native_post(&h, &format!("/v1beta/models/{FLASH}:{action}")).await;
        assert_eq!(r.status(), 200, "{action}");
    }
    let r = h
        .http
        .get(h.url("/v1beta/models/models%2Fgemini-2.5-flash"))
        .header("x-goog-api-key", PASSWORD)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a `models/` prefix is stripped");
}

#[tokio::test]
async fn client_model_names_never_smuggle_url_characters_upstream() {
    let h = start(&[]).await;
    for model in [
        "gemini-2.5-flash:generateContent?key=x#",
        "../../files",
        "gemini-2.5-flash/../gemini-2.5-pro",
        "gemini%2F..",
    ] {
        let r = h.chat(&hello(model, false)).await;
        let (status, v) = json(r).await;
        assert_eq!(status, 400, "{model}: {v}");
        assert_eq!(openai_error(&v)["param"], "model", "{model}: {v}");
        let r = h.chat(&hello(model, true)).await;
        assert_eq!(r.status(), 400, "{model}, streamed");
        let r = h
            .post("/v1/embeddings", &json!({"model": model, "input": "x"}))
            .await;
        assert_eq!(r.status(), 400, "{model}, embeddings");
    }
    let seen = traffic(&h.mock);
    assert!(
        seen.is_empty(),
        "reached the upstream: {:?}",
        describe(&seen)
    );
}

#[tokio::test]
async fn blocked_models_cannot_be_reached_through_encodings() {
    let h = start(&[("BLOCKED_MODELS", "gemini-2.5-pro")]).await;
    for path in [
        "/v1beta/models/x:generateContent%2F..%2Fgemini-2.5-pro%253AgenerateContent",
        "/v1beta/models/x:generateContent%2F..%2Fgemini-2.5-pro:generateContent",
        "/v1beta/models/models%2Fgemini-2.5-pro:generateContent",
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
        "/gemini/v1/models/gemini-2.5-pro%3AgenerateContent",
    ] {
        let status = native_post(&h, path).await.status().as_u16();
        assert!(matches!(status, 400 | 404), "{path}: {status}");
    }
    let pro: Vec<_> = h
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.model.as_deref() == Some("gemini-2.5-pro") || r.path.contains("2.5-pro"))
        .collect();
    assert!(
        pro.is_empty(),
        "blocked model reached: {:?}",
        describe(&pro)
    );
}

#[tokio::test]
async fn the_per_ip_limit_cannot_be_bypassed_through_encodings() {
    let h = start(&[("MAX_REQUESTS_PER_MINUTE", "1")]).await;
    let first = native_post(&h, &format!("/v1beta/models/{FLASH}:generateContent")).await;
    assert_eq!(first.status(), 200);
    for attack in ATTACKS.iter().chain(&[
        "gemini-2.5-flash%3AgenerateContent",
        "gemini-2.5-flash:streamGenerateContent",
        "gemini-2.5-flash:generateContent",
        "gemini-2.5-flash:batchEmbedContents",
    ]) {
        let path = format!("/v1beta/models/{attack}");
        let status = native_post(&h, &path).await.status().as_u16();
        assert!(
            matches!(status, 400 | 404 | 429),
            "{path}: got {status} past the limit"
        );
    }
    let seen = traffic(&h.mock);
    assert_eq!(
        seen.len(),
        1,
        "only the first request may reach the upstream: {:?}",
        describe(&seen)
    );
}

#[tokio::test]
async fn client_query_parameters_and_credentials_never_go_upstream() {
    let h = start(&[]).await;
    let path = format!(
        "/v1beta/models/{FLASH}:streamGenerateContent?alt=sse&key={PASSWORD}&%6Bey={INJECTED}\
         &access_token=tok&oauth_token=tok&%61ccess_token=tok&fields=x&upload_protocol=raw&%24alt=proto"
    );
    for fake in ["true", "false"] {
        let h = start(&[("FAKE_STREAMING", fake)]).await;
        let r = native_post(&h, &path).await;
        assert_eq!(r.status(), 200, "FAKE_STREAMING={fake}");
        let body = r.text().await.unwrap();
        assert!(body.starts_with("data: "), "still an SSE stream: {body}");
        let seen = traffic(&h.mock);
        assert_eq!(seen.len(), 1, "{:?}", describe(&seen));
        let query = seen[0].query.clone().unwrap_or_default();
        let expected = if fake == "true" { "" } else { "alt=sse" };
        assert_eq!(query, expected, "FAKE_STREAMING={fake}");
        assert_eq!(
            seen[0]
                .api_key
                .as_deref()
                .map(|k| k.starts_with("AIzaSyTESTKEY")),
            Some(true)
        );
    }
    // Listing: only the paging parameters go upstream.
    let r = h
        .http
        .get(h.url(&format!(
            "/v1beta/models?pageSize=5&%6Bey={PASSWORD}&access_token=tok&x=1"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "authenticated by the decoded name `key`");
    let lists: Vec<_> = h
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.query.as_deref().is_some_and(|q| q.contains("pageSize=5")))
        .collect();
    assert_eq!(lists.len(), 1, "{:?}", describe(&lists));
    let q = lists[0].query.clone().unwrap_or_default();
    assert!(
        !q.contains(PASSWORD) && !q.contains("token=tok") && !q.contains("x=1"),
        "{q}"
    );
}

#[tokio::test]
async fn encoded_key_parameter_never_reaches_the_upstream_or_the_log() {
    let mock = MockGemini::start().await.unwrap();
    let keys = KEYS.join(",");
    let base = mock.url();
    let p = spawn(&[
        ("PASSWORD", PASSWORD),
        ("GEMINI_API_KEYS", keys.as_str()),
        ("GEMINI_BASE_URL", base.as_str()),
        ("RANDOM_STRING", "false"),
        ("LOG_LEVEL", "debug"),
    ]);
    let http = client();
    for (query, want) in [
        (format!("%6Bey={PASSWORD}"), 200),
        (format!("%6bEY={PASSWORD}"), 401),
        (format!("alt=sse&%4B%45%59={PASSWORD}"), 401),
        (format!("%256Bey={PASSWORD}"), 401),
    ] {
        let r = http
            .post(format!(
                "{}/v1beta/models/{FLASH}:generateContent?{query}",
                p.url
            ))
            .json(&google_request())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{query}");
    }
    let calls = traffic(&mock);
    assert_eq!(calls.len(), 1, "{:?}", describe(&calls));
    for c in &calls {
        let q = c.query.clone().unwrap_or_default();
        assert!(!q.contains(PASSWORD), "password forwarded upstream: {q}");
        assert!(c.api_key.as_deref() != Some(PASSWORD));
    }
    let (_, lines) = p.stop();
    let logged: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("generateContent") || l.contains("request"))
        .collect();
    assert!(!logged.is_empty(), "request lines were logged: {lines:?}");
    let leaked: Vec<_> = lines.iter().filter(|l| l.contains(PASSWORD)).collect();
    assert!(leaked.is_empty(), "password in the log: {leaked:?}");
}

#[tokio::test]
async fn upstream_redirects_are_not_followed_and_keys_stay_home() {
    let elsewhere = MockGemini::start().await.unwrap();
    let h = start(&[
        ("FAKE_STREAMING", "false"),
        ("NONSTREAM_KEEPALIVE_ENABLED", "false"),
    ])
    .await;
    for status in [301, 302, 303, 307, 308] {
        let target = format!("{}/v1beta/models/{FLASH}:generateContent", elsewhere.url());
        h.mock.reset();
        h.mock
            .add_rule(Rule::new(Reply::redirect(status, &target)).action("generateContent"));
        h.mock
            .add_rule(Rule::new(Reply::redirect(status, &target)).action("streamGenerateContent"));
        h.mock
            .add_rule(Rule::new(Reply::redirect(status, &target)).action("batchEmbedContents"));
        h.mock
            .add_rule(Rule::new(Reply::redirect(status, &target)).action("get"));

        let r = h.chat(&hello(FLASH, false)).await;
        let (code, v) = json(r).await;
        assert!(code >= 500, "{status}, chat: {code} {v}");
        let r = h.chat(&hello(FLASH, true)).await;
        assert!(r.status().as_u16() >= 500, "{status}, stream");
        let r = native_post(&h, &format!("/v1beta/models/{FLASH}:generateContent")).await;
        assert!(r.status().as_u16() >= 500, "{status}, native");
        let r = native_post(
            &h,
            &format!("/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"),
        )
        .await;
        assert!(r.status().as_u16() >= 500, "{status}, native stream");
        let r = h
            .post(
                "/v1/embeddings",
                &json!({"model": "text-embedding-004", "input": "x"}),
            )
            .await;
        assert!(r.status().as_u16() >= 500, "{status}, embeddings");
        let r = h
            .http
            .get(h.url(&format!("/v1beta/models/{FLASH}")))
            .header("x-goog-api-key", PASSWORD)
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() >= 500, "{status}, model get");

        let leaked = elsewhere.requests();
        assert!(
            leaked.is_empty(),
            "{status}: the redirect target was called: {:?}",
            leaked
                .iter()
                .map(|r| (r.path.clone(), r.api_key.clone()))
                .collect::<Vec<_>>()
        );
    }
    // A redirect is not the key's fault: every key is still active, with no cooldown.
    let (status, v) = json(h.get("/api/keys").await).await;
    assert_eq!(status, 200, "{v}");
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), KEYS.len());
    for k in keys {
        assert_eq!(k["state"], "active", "{k}");
        assert_eq!(k["cooldowns"], json!([]), "{k}");
    }
    h.mock.reset();
    assert_eq!(h.chat(&hello(FLASH, false)).await.status(), 200);
}
