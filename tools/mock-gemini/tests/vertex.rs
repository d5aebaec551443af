//! The mock's Vertex AI over real HTTP: the token endpoint's checks, Bearer tokens and their
//! expiry, express keys, the Vertex answer shape, recording, rules by account, the publisher
//! list and the control API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mock_gemini::{MockGemini, Reply, Rule};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const A: &str = "a@proj-a.iam.gserviceaccount.com";
const B: &str = "b@proj-b.iam.gserviceaccount.com";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The PKCS#8 DER of a key file's `private_key`.
fn private_der(key_file: &str) -> Vec<u8> {
    let v: Value = serde_json::from_str(key_file).unwrap();
    let pem = v["private_key"].as_str().unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).unwrap()
}

fn sign(key_file: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let msg = format!("{header}.{body}");
    let kp = RsaKeyPair::from_pkcs8(&private_der(key_file)).unwrap();
    let mut sig = vec![0; kp.public_modulus_len()];
    kp.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn claims(mock: &MockGemini, email: &str) -> Value {
    let t = now();
    json!({"iss": email, "sub": email, "aud": mock.token_uri(), "scope": SCOPE, "iat": t, "exp": t + 3600})
}

async fn grant(mock: &MockGemini, assertion: &str) -> (u16, Value) {
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    let r = client()
        .post(mock.token_uri())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn token(mock: &MockGemini, key_file: &str, email: &str) -> String {
    let (status, body) = grant(mock, &sign(key_file, &claims(mock, email))).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn hello() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "ping"}]}]})
}

async fn post(
    mock: &MockGemini,
    path: &str,
    auth: Option<(&str, &str)>,
    body: &Value,
) -> (u16, String) {
    let mut req = client().post(format!("{}{path}", mock.url())).json(body);
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn project_path(project: &str, location: &str, model: &str, action: &str) -> String {
    format!("/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{action}")
}

#[tokio::test]
async fn a_signed_assertion_gets_a_token_that_serves_vertex_calls() {
    let mock = MockGemini::start().await.unwrap();
    let a = mock.vertex_account(A, "proj-a").unwrap();
    let key_file: Value = serde_json::from_str(&a.json).unwrap();
    assert_eq!(key_file["type"], "service_account");
    assert_eq!(key_file["token_uri"], mock.token_uri());
    assert!(
        key_file["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    assert!(!format!("{a:?}").contains("PRIVATE"));

    let (status, body) = grant(&mock, &sign(&a.json, &claims(&mock, A))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");
    let t = body["access_token"].as_str().unwrap().to_owned();
    assert!(t.starts_with("ya29."));
    assert_eq!(mock.vertex_token_requests(None), 1);
    assert_eq!(mock.vertex_token_requests(Some(A)), 1);

    let bearer = format!("Bearer {t}");
    let path = project_path(
        "proj-a",
        "us-central1",
        "gemini-2.5-flash",
        "generateContent",
    );
    let (status, text) = post(&mock, &path, Some(("authorization", &bearer)), &hello()).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["createTime"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(v["usageMetadata"]["trafficType"], "ON_DEMAND");
    assert!(v["candidates"][0].get("index").is_none(), "{v}");
    assert!(
        v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .contains("ping")
    );
    assert!(v["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 0);

    let rec = mock.requests();
    let call = rec.last().unwrap();
    assert_eq!(call.model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(call.action.as_deref(), Some("generateContent"));
    let vertex = call.vertex.as_ref().unwrap();
    assert_eq!(vertex.project.as_deref(), Some("proj-a"));
    assert_eq!(vertex.location.as_deref(), Some("us-central1"));
    assert_eq!(vertex.credential.as_deref(), Some(A));
    assert!(!vertex.express);

    // Streams and countTokens in Vertex's shape.
    let sse = format!(
        "{}?alt=sse",
        project_path(
            "proj-a",
            "global",
            "gemini-2.5-flash",
            "streamGenerateContent"
        )
    );
    let (status, text) = post(&mock, &sse, Some(("authorization", &bearer)), &hello()).await;
    assert_eq!(status, 200, "{text}");
    let events: Vec<Value> = text
        .split_terminator("\r\n\r\n")
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e["createTime"].is_string()));
    assert_eq!(events[2]["candidates"][0]["finishReason"], "STOP");
    let count = project_path("proj-a", "global", "gemini-2.5-flash", "countTokens");
    let (status, text) = post(&mock, &count, Some(("authorization", &bearer)), &hello()).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["totalBillableCharacters"], 4);
    assert_eq!(v["totalTokens"], 1);
}

#[tokio::test]
async fn the_token_endpoint_checks_the_assertion_like_google() {
    let mock = MockGemini::start().await.unwrap();
    let a = mock.vertex_account(A, "proj-a").unwrap();
    let b = mock.vertex_account(B, "proj-b").unwrap();
    let good = claims(&mock, A);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let cases = [
        // Signed with B's key: not A's signature.
        (
            sign(&b.json, &good),
            "invalid_grant",
            "Invalid JWT Signature.",
        ),
        (
            sign(
                &a.json,
                &with("aud", json!("https://oauth2.googleapis.com/token")),
            ),
            "invalid_grant",
            "Failed audience check",
        ),
        (
            sign(
                &a.json,
                &with("scope", json!("https://www.googleapis.com/auth/drive")),
            ),
            "invalid_scope",
            "scope",
        ),
        (
            sign(&a.json, &with("exp", json!(now() + 7200))),
            "invalid_grant",
            "short-lived",
        ),
        (
            sign(
                &a.json,
                &with("iat", json!(now() - 7200)).tap(|c| c["exp"] = json!(now() - 3600)),
            ),
            "invalid_grant",
            "short-lived",
        ),
        (
            sign(
                &a.json,
                &with("iss", json!("nobody@x.iam.gserviceaccount.com")),
            ),
            "invalid_grant",
            "account not found",
        ),
        ("not.a.jwt".to_owned(), "invalid_grant", "Invalid JWT"),
    ];
    for (assertion, error, description) in cases {
        let (status, body) = grant(&mock, &assertion).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], error, "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains(description),
            "{body}"
        );
    }
    // The grant type and the content type are checked too.
    let r = client()
        .post(mock.token_uri())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let r = client()
        .post(mock.token_uri())
        .json(&json!({"assertion": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(mock.vertex_token_requests(None), 9);
}

trait Tap {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[tokio::test]
async fn refused_accounts_lifetimes_and_expired_tokens() {
    let mock = MockGemini::start().await.unwrap();
    let a = mock.vertex_account(A, "proj-a").unwrap();
    mock.vertex_refuse(A, Some("Invalid grant: account not found"));
    let (status, body) = grant(&mock, &sign(&a.json, &claims(&mock, A))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        body["error_description"],
        "Invalid grant: account not found"
    );
    mock.vertex_refuse(A, None);

    mock.vertex_token_lifetime(60);
    let (status, body) = grant(&mock, &sign(&a.json, &claims(&mock, A))).await;
    assert_eq!((status, body["expires_in"].as_u64()), (200, Some(60)));
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let path = project_path("proj-a", "global", "gemini-2.5-flash", "generateContent");
    assert_eq!(
        post(&mock, &path, Some(("authorization", &bearer)), &hello())
            .await
            .0,
        200
    );

    mock.vertex_expire_tokens();
    let (status, text) = post(&mock, &path, Some(("authorization", &bearer)), &hello()).await;
    assert_eq!(status, 401, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(v["error"]["details"][0]["reason"], "ACCESS_TOKEN_EXPIRED");
    let rec = mock.requests();
    assert_eq!(
        rec.last().unwrap().vertex.as_ref().unwrap().credential,
        None
    );

    // A token the mock never issued, no credential, an API key on a project path.
    let (status, text) = post(
        &mock,
        &path,
        Some(("authorization", "Bearer ya29.forged")),
        &hello(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(text.contains("ACCESS_TOKEN_TYPE_UNSUPPORTED"), "{text}");
    let (status, text) = post(&mock, &path, None, &hello()).await;
    assert_eq!(status, 401);
    assert!(text.contains("CREDENTIALS_MISSING"), "{text}");
    let (status, text) = post(&mock, &path, Some(("x-goog-api-key", "AQ.x")), &hello()).await;
    assert_eq!(status, 401);
    assert!(
        text.contains("API keys are not supported by this API"),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn token_expiry_follows_tokios_clock() {
    let mock = MockGemini::start().await.unwrap();
    let a = mock.vertex_account(A, "proj-a").unwrap();
    let bearer = format!("Bearer {}", token(&mock, &a.json, A).await);
    let path = project_path("proj-a", "global", "gemini-2.5-flash", "generateContent");
    assert_eq!(
        post(&mock, &path, Some(("authorization", &bearer)), &hello())
            .await
            .0,
        200
    );
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3600)).await;
    tokio::time::resume();
    let (status, text) = post(&mock, &path, Some(("authorization", &bearer)), &hello()).await;
    assert_eq!(status, 401, "{text}");
}

#[tokio::test]
async fn express_keys_on_the_project_less_path() {
    let mock = MockGemini::start().await.unwrap();
    mock.vertex_express_key("AQ.express-1");
    let path = "/v1/publishers/google/models/gemini-2.5-flash:generateContent";
    let (status, text) = post(
        &mock,
        path,
        Some(("x-goog-api-key", "AQ.express-1")),
        &hello(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("createTime"));
    let rec = mock.requests();
    let call = rec.last().unwrap();
    assert_eq!(call.api_key.as_deref(), Some("AQ.express-1"));
    let vertex = call.vertex.as_ref().unwrap();
    assert!(vertex.express && vertex.project.is_none());
    assert_eq!(vertex.credential.as_deref(), Some("AQ.express-1"));
    // `?key=` works too; an unknown key is Google's API_KEY_INVALID.
    let (status, _) = post(&mock, &format!("{path}?key=AQ.express-1"), None, &hello()).await;
    assert_eq!(status, 200);
    let (status, text) = post(&mock, path, Some(("x-goog-api-key", "AQ.nope")), &hello()).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("API_KEY_INVALID") && text.contains("aiplatform"),
        "{text}"
    );
    // Control API.
    let r = client()
        .post(format!("{}/__mock/vertex/express_keys", mock.url()))
        .json(&json!(["AQ.express-2"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, _) = post(
        &mock,
        path,
        Some(("x-goog-api-key", "AQ.express-2")),
        &hello(),
    )
    .await;
    assert_eq!(status, 200);
    // An unknown model is Vertex's 404.
    let (status, text) = post(
        &mock,
        "/v1/publishers/google/models/gemini-9-nope:generateContent",
        Some(("x-goog-api-key", "AQ.express-1")),
        &hello(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        text.contains("Publisher Model `publishers/google/models/gemini-9-nope`"),
        "{text}"
    );
}

#[tokio::test]
async fn rules_match_by_account_and_the_publisher_list() {
    let mock = MockGemini::start().await.unwrap();
    let a = mock.vertex_account(A, "proj-a").unwrap();
    let b = mock.vertex_account(B, "proj-b").unwrap();
    mock.add_rule(Rule::new(Reply::preset("vertex_permission_denied_403")).key(A));
    mock.add_rule(Rule::new(Reply::preset("vertex_quota_429")).key(B).times(1));
    let (ta, tb) = (
        token(&mock, &a.json, A).await,
        token(&mock, &b.json, B).await,
    );
    let path = |p| project_path(p, "global", "gemini-2.5-pro", "generateContent");
    let (status, text) = post(
        &mock,
        &path("proj-a"),
        Some(("authorization", &format!("Bearer {ta}"))),
        &hello(),
    )
    .await;
    assert_eq!(status, 403);
    assert!(text.contains("IAM_PERMISSION_DENIED"), "{text}");
    let bearer_b = format!("Bearer {tb}");
    let (status, text) = post(
        &mock,
        &path("proj-b"),
        Some(("authorization", &bearer_b)),
        &hello(),
    )
    .await;
    assert_eq!(status, 429);
    assert!(
        text.contains("RESOURCE_EXHAUSTED") && !text.contains("\"details\""),
        "{text}"
    );
    let (status, _) = post(
        &mock,
        &path("proj-b"),
        Some(("authorization", &bearer_b)),
        &hello(),
    )
    .await;
    assert_eq!(status, 200);

    let r = client()
        .get(format!("{}/v1beta1/publishers/google/models", mock.url()))
        .header("authorization", &bearer_b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    let names: Vec<&str> = v["publisherModels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"publishers/google/models/gemini-2.5-flash"),
        "{names:?}"
    );
    let r = client()
        .get(format!("{}/v1beta1/publishers/google/models", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn the_control_api_makes_accounts_and_counts_grants() {
    let mock = MockGemini::start().await.unwrap();
    let r = client()
        .post(format!("{}/__mock/vertex/accounts", mock.url()))
        .json(&json!({"client_email": A, "project_id": "proj-a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let key_file = r.text().await.unwrap();
    token(&mock, &key_file, A).await;
    let r = client()
        .post(format!("{}/__mock/vertex/token_lifetime", mock.url()))
        .json(&json!({"secs": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, body) = grant(&mock, &sign(&key_file, &claims(&mock, A))).await;
    assert_eq!(body["expires_in"], 5);
    let r = client()
        .post(format!("{}/__mock/vertex/refuse", mock.url()))
        .json(&json!({"client_email": A}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, body) = grant(&mock, &sign(&key_file, &claims(&mock, A))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let stats: Value = client()
        .get(format!("{}/__mock/vertex/stats", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["token_requests"], 3);
    assert_eq!(stats["by_account"][A], 3);
    mock.reset();
    assert_eq!(mock.vertex_token_requests(None), 0);
}

/// The top-level and usage fields of a recorded Vertex answer, and of the mock's.
fn shape(v: &Value) -> (Vec<String>, Vec<String>, bool) {
    let keys = |o: &Value| {
        let mut k: Vec<String> = o.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let usage: Vec<String> = keys(&v["usageMetadata"])
        .into_iter()
        .filter(|k| k == "trafficType" || k == "promptTokenCount" || k == "totalTokenCount")
        .collect();
    (keys(v), usage, v["candidates"][0].get("index").is_some())
}

#[tokio::test]
async fn vertex_answers_have_the_recorded_shape() {
    let recorded: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/vertex/generateContent.response.max-tokens-logprobs-score.json"
    ))
    .unwrap();
    let mock = MockGemini::start().await.unwrap();
    mock.vertex_express_key("AQ.k");
    let auth = Some(("x-goog-api-key", "AQ.k"));
    let (_, text) = post(
        &mock,
        "/v1/publishers/google/models/gemini-2.5-flash:generateContent",
        auth,
        &hello(),
    )
    .await;
    let ours: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shape(&ours), shape(&recorded));
    let counted: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/vertex/countTokens.response.json"
    ))
    .unwrap();
    let (_, text) = post(
        &mock,
        "/v1/publishers/google/models/gemini-2.5-flash:countTokens",
        auth,
        &hello(),
    )
    .await;
    let ours: Value = serde_json::from_str(&text).unwrap();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&ours), keys(&counted));
}
