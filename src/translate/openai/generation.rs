//! OpenAI sampling parameters, `stop`, `logprobs`, `response_format` and the reasoning
//! controls → Gemini `generationConfig` (only what the client sent, decisions §5); the
//! explicit context cache a client names under `google`.

use serde_json::Value;

use crate::error::GatewayError;
use crate::translate::thinking;
use crate::wire::gemini::GenerationConfig;
use crate::wire::openai::{ChatRequest, Stop};

/// The request's `generationConfig`, `thinkingConfig` included (for `upstream_model`, whose
/// model-list `thinking` flag is `model_thinks`; `enable_thinking` is `ENABLE_THINKING`).
pub fn generation_config(
    req: &ChatRequest,
    upstream_model: &str,
    model_thinks: Option<bool>,
    enable_thinking: bool,
) -> Result<GenerationConfig, GatewayError> {
    let mut generation_config = sampling_config(req)?;
    let (google, extra_google) = google_fields(req);
    generation_config.thinking_config = thinking::thinking_config(
        upstream_model,
        model_thinks,
        enable_thinking,
        &thinking::Requested {
            reasoning_effort: req.reasoning_effort.as_deref(),
            thinking_budget: req.thinking_budget,
            google,
            extra_body_google: extra_google,
            exclude_thoughts: req.excludes_reasoning(),
        },
    )?;
    Ok(generation_config)
}

/// The context cache a client names (`google.cached_content`, `extra_body` winning).
pub fn cached_content(req: &ChatRequest) -> Option<String> {
    let (google, extra_google) = google_fields(req);
    extra_google
        .or(google)
        .and_then(|g| g.get("cached_content").or_else(|| g.get("cachedContent")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Google's extension fields: top-level `google` (possibly wrapped in another `google`) and
/// `extra_body.google`.
fn google_fields(req: &ChatRequest) -> (Option<&Value>, Option<&Value>) {
    let google = req
        .google
        .as_ref()
        .and_then(|g| g.get("google").or(Some(g)));
    let extra_google = req.extra_body.as_ref().and_then(|e| e.get("google"));
    (google, extra_google)
}

fn sampling_config(req: &ChatRequest) -> Result<GenerationConfig, GatewayError> {
    let stop_sequences = match &req.stop {
        Some(Stop::One(s)) if !s.is_empty() => Some(vec![s.clone()]),
        Some(Stop::Many(v)) => {
            let v: Vec<String> = v
                .iter()
                .filter(|s| !s.is_empty())
                .take(5)
                .cloned()
                .collect();
            (!v.is_empty()).then_some(v)
        }
        _ => None,
    };
    let mut cfg = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k.map(|k| k.round() as i64),
        candidate_count: req.n,
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        stop_sequences,
        seed: req
            .seed
            .map(|s| s.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
        presence_penalty: req.presence_penalty.filter(|p| *p != 0.0),
        frequency_penalty: req.frequency_penalty.filter(|p| *p != 0.0),
        ..GenerationConfig::default()
    };
    if req.logprobs == Some(true) {
        cfg.response_logprobs = Some(true);
        cfg.logprobs = req.top_logprobs;
    }
    if let Some(format) = &req.response_format {
        match format.get("type").and_then(Value::as_str) {
            None | Some("text") => {}
            Some("json_object") => cfg.response_mime_type = Some("application/json".into()),
            Some("json_schema") => {
                cfg.response_mime_type = Some("application/json".into());
                let schema = format.get("json_schema").and_then(|j| j.get("schema"));
                if let Some(schema) = schema.filter(|s| s.is_object()) {
                    cfg.response_json_schema = Some(schema.clone());
                }
            }
            Some(other) => {
                return Err(GatewayError::bad_param(
                    format!(
                        "不支持的 response_format 类型 {other:?} / Unsupported response_format type {other:?}"
                    ),
                    "response_format",
                ));
            }
        }
    }
    Ok(cfg)
}
