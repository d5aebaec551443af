//! `/v1/embeddings` over `batchEmbedContents`, and the SillyTavern vector adapters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::*;
use mock_gemini::{Reply, Rule};
use serde_json::{Value, json};

const EMBED: &str = "gemini-embedding-001";

fn batches(h: &Harness) -> Vec<mock_gemini::Recorded> {
    h.mock
        .requests()
        .into_iter()
        .filter(|r| r.action.as_deref() == Some("batchEmbedContents"))
        .collect()
}

#[tokio::test]
async fn embeddings_are_openai_shaped_floats() {
    let h = start(&[]).await;
    let (status, v) = json(
        h.post(
            "/v1/embeddings",
            &json!({"model": EMBED, "input": ["hello", "world"], "dimensions": 16}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], EMBED);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    assert_eq!(data[0]["embedding"].as_array().map(Vec::len), Some(16));
    assert!(v["usage"]["total_tokens"].is_u64());
    let call = &batches(&h)[0];
    assert_eq!(call.body["requests"][0]["outputDimensionality"], 16);
    assert_eq!(call.body["requests"][0]["model"], format!("models/{EMBED}"));
}

#[tokio::test]
async fn base64_encoding_carries_the_same_vector() {
    let h = start(&[]).await;
    let (_, floats) = json(
        h.post(
            "/v1/embeddings",
            &json!({"model": EMBED, "input": "same text", "dimensions": 8}),
        )
        .await,
    )
    .await;
    let (_, b64) = json(h.post("/v1/embeddings", &json!({"model": EMBED, "input": "same text", "dimensions": 8, "encoding_format": "base64"})).await).await;
    let s = b64["data"][0]["embedding"]
        .as_str()
        .expect("a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    let decoded: Vec<f64> = bytes
        .chunks(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let expected: Vec<f64> = floats["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(decoded.len(), expected.len());
    for (a, b) in decoded.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[tokio::test]
async fn more_than_100_inputs_are_split_into_batches() {
    let h = start(&[]).await;
    let inputs: Vec<String> = (0..150).map(|i| format!("text {i}")).collect();
    let (status, v) = json(
        h.post(
            "/v1/embeddings",
            &json!({"model": EMBED, "input": inputs, "dimensions": 4}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(150));
    assert_eq!(v["data"][149]["index"], 149);
    let sizes: Vec<usize> = batches(&h)
        .iter()
        .map(|b| b.body["requests"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 50]);
}

#[tokio::test]
async fn embeddings_fail_over_to_another_key() {
    let h = start(&[]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("quota_429"))
            .action("batchEmbedContents")
            .times(1),
    );
    let (status, _) = json(
        h.post("/v1/embeddings", &json!({"model": EMBED, "input": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let calls = batches(&h);
    assert_eq!(calls.len(), 2);
    assert_ne!(calls[0].api_key, calls[1].api_key);
}

#[tokio::test]
async fn bad_embedding_requests_are_400() {
    let h = start(&[]).await;
    for body in [
        json!({"model": EMBED, "input": [1, 2, 3]}),
        json!({"model": EMBED, "input": []}),
        json!({"model": EMBED}),
        json!({"model": EMBED, "input": "x", "encoding_format": "int8"}),
    ] {
        let (status, v) = json(h.post("/v1/embeddings", &body).await).await;
        assert_eq!(status, 400, "{body}: {v}");
        openai_error(&v);
    }
    let r = h
        .http
        .post(h.url("/v1/embeddings"))
        .json(&json!({"model": EMBED, "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn vector_query_and_insert_speak_the_plugin_shape() {
    let h = start(&[]).await;
    let (status, v) = json(
        h.post(
            "/api/vector/query",
            &json!({"searchText": "find me", "model": EMBED}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["hashes"], json!([]));
    assert_eq!(v["similarities"], json!([0]));
    assert!(
        v["items"][0]["metadata"]["embedding"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
    let (status, v) = json(
        h.post(
            "/api/vector/insert",
            &json!({"items": [{"text": "a"}, {"text": "b"}], "model": EMBED}),
        )
        .await,
    )
    .await;
    assert_eq!((status, v), (200, json!({"success": true})));
    let (status, v) = json(h.post("/api/vector/query", &json!({"model": EMBED})).await).await;
    assert_eq!(status, 400);
    openai_error(&v);
    let r = h
        .http
        .post(h.url("/api/vector/query"))
        .json(&json!({"searchText": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let _: Value = r.json().await.unwrap();
}

#[tokio::test]
async fn blocked_embedding_models_are_refused_on_use() {
    let h = start(&[("BLOCKED_MODELS", EMBED)]).await;
    let (status, v) = json(
        h.post("/v1/embeddings", &json!({"model": EMBED, "input": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(openai_error(&v)["code"], "model_not_found");
    let (status, _) = json(
        h.post(
            "/api/vector/query",
            &json!({"searchText": "x", "model": EMBED}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    assert!(batches(&h).is_empty(), "nothing reached Google");
}

#[tokio::test]
async fn model_aliases_apply_to_embeddings_and_the_answer_keeps_the_clients_name() {
    let h = start(&[(
        "MODEL_ALIASES",
        "text-embedding-3-small=gemini-embedding-001",
    )])
    .await;
    let (status, v) = json(
        h.post(
            "/v1/embeddings",
            &json!({"model": "text-embedding-3-small", "input": "hello"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "text-embedding-3-small");
    let call = &batches(&h)[0];
    assert_eq!(call.model.as_deref(), Some(EMBED));
    assert_eq!(call.body["requests"][0]["model"], format!("models/{EMBED}"));
}
