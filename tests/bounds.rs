//! What a client can make the gateway remember is bounded: unknown paths are one metrics label,
//! unknown or oversized model names never reach the usage statistics, the request log or
//! `/metrics` as sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::Value;

/// `route` label values of `hajimi_requests_total` in a `/metrics` text.
fn route_labels(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("hajimi_requests_total{"))
        .filter_map(|l| {
            let at = l.find("route=\"")? + 7;
            let end = l[at..].find('"')?;
            Some(l[at..at + end].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn unknown_paths_never_add_metrics_series() {
    let h = start(&[]).await;
    for i in 0..100 {
        let r = h
            .http
            .get(h.url(&format!("/probe-{i}-unmatched-path")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let _ = r.bytes().await;
    }
    // The request log (and its metrics) is written when the body ends: wait for it.
    let routes = eventually("unknown paths counted under one label", || async {
        let text = h.get("/metrics").await.text().await.unwrap();
        let routes = route_labels(&text);
        if routes.iter().any(|r| r == "unmatched") {
            Ok(routes)
        } else {
            Err(routes)
        }
    })
    .await;
    assert!(
        !routes.iter().any(|r| r.contains("probe-")),
        "a raw path became a label: {routes:?}"
    );
}

async fn get_text(h: &Harness, path: &str) -> String {
    let r = h.get(path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_huge_model_name_is_never_stored_or_shown() {
    let h = start(&[]).await;
    let run = "x".repeat(1000);
    let model = format!("gemini-{}", "x".repeat(1024 * 1024));
    let r = h.chat(&hello(&model, false)).await;
    let status = r.status();
    let body = r.bytes().await.unwrap();
    assert_eq!(status, 400, "a name outside Google's id grammar is refused");
    assert!(
        body.len() < 64 * 1024,
        "answer of {} bytes ({status})",
        body.len()
    );
    // Names that pass the grammar but are not in the model list are counted as `other`
    // (the list is loaded first: before any list, a few unknown names keep their names).
    assert_eq!(h.get("/v1/models").await.status(), 200);
    for i in 0..40 {
        let r = h.chat(&hello(&format!("gemini-made-up-{i}"), false)).await;
        let _ = r.bytes().await;
    }
    // The request log entry appears when the response body has ended.
    let logs = eventually("unknown names logged under `other`", || async {
        let text = get_text(&h, "/api/logs").await;
        assert!(text.len() < 256 * 1024, "/api/logs is {} bytes", text.len());
        assert!(!text.contains(&run), "the name reached /api/logs");
        let logs: Value = serde_json::from_str(&text).unwrap();
        if logs["logs"]
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e["model"] == "other"))
        {
            Ok(logs)
        } else {
            Err(logs)
        }
    })
    .await;
    let entries = logs["logs"].as_array().cloned().unwrap_or_default();
    assert!(
        !entries.iter().any(|e| e["model"]
            .as_str()
            .is_some_and(|m| m.starts_with("gemini-made-up"))),
        "an unknown name was stored as sent: {logs}"
    );
    for path in ["/api/usage", "/api/dashboard-data", "/metrics"] {
        let text = get_text(&h, path).await;
        assert!(text.len() < 256 * 1024, "{path} is {} bytes", text.len());
        assert!(!text.contains(&run), "the name reached {path}");
        assert!(
            !text.contains("gemini-made-up"),
            "an unknown name reached {path}"
        );
    }
    let usage: Value = serde_json::from_str(&get_text(&h, "/api/usage").await).unwrap();
    let models = usage["models_today"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        models.keys().all(|m| m.len() <= 128),
        "model names in usage are capped: {:?}",
        models.keys().map(String::len).collect::<Vec<_>>()
    );
    assert!(models.contains_key("other"), "counted as `other`: {usage}");
}
