//! `POST /v1/embeddings` over Gemini `batchEmbedContents` (split at Google's 100-item limit),
//! `dimensions` → `outputDimensionality`, `encoding_format: base64` honoured, key failover
//! like chat. Also the embedding helper of the SillyTavern vector adapters.

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::error::GatewayError;
use crate::pipeline::dispatch;
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;
use crate::translate::model_name::upstream_model_name;
use crate::upstream::classify::Failure;
use crate::upstream::read_body;

/// Google's limit on requests in one `batchEmbedContents`.
pub const BATCH_LIMIT: usize = 100;
/// A bound on inputs per client request.
const MAX_INPUTS: usize = 10_000;

#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: Value,
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub dimensions: Option<u32>,
    /// Gemini's task type, as an extension (`RETRIEVAL_QUERY`, …).
    #[serde(default)]
    pub task_type: Option<String>,
}

/// Serves one OpenAI embeddings request.
pub async fn embeddings(
    state: &AppState,
    snap: &Settings,
    req: EmbeddingsRequest,
    outcome: &OutcomeHandle,
) -> Result<Response, GatewayError> {
    outcome.update(|o| o.model = Some(req.model.clone()));
    let inputs = inputs(&req.input)?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(GatewayError::bad_param(
                format!(
                    "不支持的 encoding_format {other:?} / Unsupported encoding_format {other:?}: use float or base64"
                ),
                "encoding_format",
            ));
        }
    };
    let vectors = embed(
        state,
        snap,
        &req.model,
        &inputs,
        req.dimensions,
        req.task_type.as_deref(),
        outcome,
    )
    .await?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                Value::String(encode_base64(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    // Google reports no token usage for embeddings; an estimate (4 bytes a token) keeps
    // clients that read `usage` working.
    let tokens: usize = inputs.iter().map(|t| t.len().div_ceil(4)).sum();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}

fn inputs(input: &Value) -> Result<Vec<String>, GatewayError> {
    let list = match input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::Array(_) => {
            return Err(GatewayError::bad_param(
                "不支持 token 数组输入，请直接传文本 / Token-array inputs are not supported; send text",
                "input",
            ));
        }
        _ => {
            return Err(GatewayError::bad_param(
                "input 必须是字符串或字符串数组 / `input` must be a string or an array of strings",
                "input",
            ));
        }
    };
    if list.is_empty() {
        return Err(GatewayError::bad_param(
            "input 不能为空 / `input` must not be empty",
            "input",
        ));
    }
    if list.len() > MAX_INPUTS {
        return Err(GatewayError::bad_param(
            format!("input 最多 {MAX_INPUTS} 项 / At most {MAX_INPUTS} inputs per request"),
            "input",
        ));
    }
    Ok(list)
}

/// Little-endian float32 bytes, base64 (what the OpenAI SDK decodes).
pub fn encode_base64(v: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Embeds texts in batches of [`BATCH_LIMIT`], each batch with key failover.
pub async fn embed(
    state: &AppState,
    snap: &Settings,
    model: &str,
    texts: &[String],
    dimensions: Option<u32>,
    task_type: Option<&str>,
    outcome: &OutcomeHandle,
) -> Result<Vec<Vec<f32>>, GatewayError> {
    // `MODEL_ALIASES` applies here as in every dialect (`text-embedding-3-small=…`).
    let model = upstream_model_name(snap.model_aliases.resolve(model)).to_owned();
    // A client's model name never carries `/`, `?`, `#` or `%` into an upstream URL.
    crate::upstream::endpoint::require_model_id(&model)?;
    let target = crate::upstream::Target::ai_studio(snap);
    let url = target.batch_embed(&model)?;
    crate::pipeline::generate::require_allowed_model(snap, &model)?;
    // One deadline for the whole request, however many batches it takes.
    let budget = dispatch::Budget::of(snap);
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(BATCH_LIMIT) {
        let requests: Vec<Value> = batch
            .iter()
            .map(|t| {
                let mut r = json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
                if let Some(d) = dimensions {
                    r["outputDimensionality"] = json!(d);
                }
                if let Some(task) = task_type {
                    r["taskType"] = json!(task);
                }
                r
            })
            .collect();
        let body = bytes::Bytes::from(json!({ "requests": requests }).to_string());
        let (vectors, _) = dispatch::run(
            &dispatch::Dispatch::new(state, snap, &model, outcome),
            budget,
            |key| {
                let body = body.clone();
                let (url, target) = (&url, &target);
                async move {
                    let auth = target.authorize(key.secret()).await?;
                    let response = state
                        .upstream
                        .post(url, &auth, body, snap.upstream_timeout)
                        .await?;
                    let bytes = read_body(
                        response,
                        snap.upstream_timeout,
                        crate::upstream::ANSWER_LIMIT,
                    )
                    .await?;
                    parse_embeddings(&bytes, batch.len())
                }
            },
            |_| false,
        )
        .await?;
        out.extend(vectors);
    }
    Ok(out)
}

fn parse_embeddings(bytes: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, Failure> {
    #[derive(Deserialize)]
    struct Batch {
        #[serde(default)]
        embeddings: Vec<Embedding>,
    }
    #[derive(Deserialize)]
    struct Embedding {
        #[serde(default)]
        values: Vec<f32>,
    }
    let batch: Batch = serde_json::from_slice(bytes).map_err(|e| Failure::Garbage {
        detail: format!("unreadable embeddings: {e}"),
    })?;
    if batch.embeddings.len() != expected {
        return Err(Failure::Garbage {
            detail: format!(
                "expected {expected} embeddings, got {}",
                batch.embeddings.len()
            ),
        });
    }
    Ok(batch.embeddings.into_iter().map(|e| e.values).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_little_endian_f32() {
        let s = encode_base64(&[1.0, -2.5]);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("base64");
        assert_eq!(bytes.len(), 8);
        assert_eq!(
            f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            1.0
        );
        assert_eq!(
            f32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            -2.5
        );
    }

    #[test]
    fn inputs_accept_strings_and_refuse_tokens() {
        assert_eq!(inputs(&json!("a")).expect("ok"), vec!["a"]);
        assert_eq!(inputs(&json!(["a", "b"])).expect("ok"), vec!["a", "b"]);
        assert!(inputs(&json!([1, 2, 3])).is_err());
        assert!(inputs(&json!([[1, 2]])).is_err());
        assert!(inputs(&json!([])).is_err());
        assert!(inputs(&json!(null)).is_err());
    }

    #[test]
    fn the_recorded_openai_embedding_shape_is_what_we_write() {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/openai/embeddings.response.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["object"], "embedding");
        assert!(v["usage"]["prompt_tokens"].is_u64() && v["usage"]["total_tokens"].is_u64());
    }
}
