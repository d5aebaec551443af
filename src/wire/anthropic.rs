//! Anthropic Messages API types (`POST /v1/messages`, its stream events, errors, the model
//! list), named as Anthropic names them. Requests are parsed leniently: unknown fields are
//! ignored and unknown block, source, tool-choice and thinking types become `Other`, because
//! clients such as Claude Code send beta fields (`context_management`, `defer_loading`, server
//! tools) that hajimi does not need. Responses and events are written exactly as the official
//! SDKs parse them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Requests

/// `POST /v1/messages` (and `/v1/messages/count_tokens`, which has no `max_tokens`).
#[derive(Debug, Deserialize, Clone)]
pub struct MessagesRequest {
    pub model: String,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub system: Option<SystemPrompt>,
    /// Required by Anthropic; optional here so `count_tokens` bodies parse too.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<f64>,
    /// Client tools (`name`, `input_schema`) and Anthropic's typed tools (`web_search_…`,
    /// `bash_…`); kept loose and read by the translation.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub thinking: Option<Thinking>,
    #[serde(default)]
    pub output_config: Option<OutputConfig>,
    /// Ignored (`user_id`).
    #[serde(default)]
    pub metadata: Option<Value>,
}

impl MessagesRequest {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

/// One turn. Roles are `user` and `assistant`; Claude Code also sends `system` turns in the
/// middle of the conversation.
#[derive(Debug, Deserialize, Clone)]
pub struct Message {
    pub role: String,
    pub content: MessageContent,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum SystemPrompt {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// A request content block. `cache_control` and `citations` are accepted and ignored.
#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Image {
        source: Source,
    },
    Document {
        source: Source,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        context: Option<String>,
    },
    SearchResult {
        #[serde(default)]
        source: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        content: Vec<ContentBlock>,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<ToolResultContent>,
        #[serde(default)]
        is_error: Option<bool>,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    /// Server-tool blocks (`server_tool_use`, `web_search_tool_result`, …) and anything newer.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// An image or document source.
#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    Base64 {
        #[serde(default)]
        media_type: String,
        data: String,
    },
    /// Plain-text documents (`media_type: text/plain`).
    Text {
        #[serde(default)]
        media_type: Option<String>,
        data: String,
    },
    Url {
        url: String,
    },
    /// A document made of content blocks.
    Content {
        content: ToolResultContent,
    },
    /// Anthropic Files API ids (`file_id`): nothing hajimi can resolve.
    File {
        #[serde(default)]
        file_id: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto {
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
    #[serde(other)]
    Other,
}

/// `thinking`: `enabled` with a budget, `adaptive` (the model decides, `output_config.effort`
/// steers), `disabled`; `display: "omitted"` asks for signatures without the thought text.
#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Thinking {
    Enabled {
        #[serde(default)]
        budget_tokens: Option<i64>,
        #[serde(default)]
        display: Option<String>,
    },
    Adaptive {
        #[serde(default)]
        display: Option<String>,
    },
    BetweenTools,
    Disabled,
    #[serde(other)]
    Other,
}

impl Thinking {
    /// Whether the client asked for thinking blocks at all.
    pub fn is_on(&self) -> bool {
        !matches!(self, Self::Disabled | Self::Other)
    }

    /// Whether the thought text is wanted (`display` is not `omitted`).
    pub fn shows_text(&self) -> bool {
        let display = match self {
            Self::Enabled { display, .. } | Self::Adaptive { display } => display.as_deref(),
            _ => None,
        };
        self.is_on() && display != Some("omitted")
    }
}

#[derive(Debug, Deserialize, Clone, Default)]
pub struct OutputConfig {
    /// `low`, `medium`, `high`, `xhigh`, `max`.
    #[serde(default)]
    pub effort: Option<String>,
    /// `{"type": "json_schema", "schema": {...}}`.
    #[serde(default)]
    pub format: Option<Value>,
}

// ---------------------------------------------------------------------------------------
// Responses

/// A complete answer (`type: "message"`).
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct MessageResponse {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: String,
    pub content: Vec<ResponseBlock>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// An answer content block.
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseBlock {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

#[derive(Debug, Serialize, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub output_tokens: u64,
}

/// One stream event; the SSE `event:` line repeats its `type` ([`StreamEvent::name`]).
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessageResponse,
    },
    ContentBlockStart {
        index: u32,
        content_block: ResponseBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: Usage,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorBody,
    },
}

impl StreamEvent {
    /// The SSE event name (equal to the payload's `type`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta { text: String },
    InputJsonDelta { partial_json: String },
    ThinkingDelta { thinking: String },
    SignatureDelta { signature: String },
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct MessageDelta {
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<String>,
}

/// `POST /v1/messages/count_tokens` answer.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount {
    pub input_tokens: u64,
}

// ---------------------------------------------------------------------------------------
// Errors

/// `{"type": "error", "error": {"type", "message"}}`, the body of every error status and the
/// payload of an in-stream `error` event.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct ErrorResponse {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}

impl ErrorResponse {
    /// An error of `kind`, or of the type Anthropic uses for `status` when `kind` is `None`.
    pub fn new(status: u16, message: impl Into<String>, kind: Option<&'static str>) -> Self {
        Self {
            kind: "error",
            error: ErrorBody {
                kind: kind.unwrap_or_else(|| error_type_for_status(status)),
                message: message.into(),
            },
        }
    }
}

/// Anthropic's error type for an HTTP status: 400 `invalid_request_error`, 401
/// `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
/// `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 504 `timeout_error`,
/// 529 `overloaded_error`, other 5xx `api_error`.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

// ---------------------------------------------------------------------------------------
// Models

/// `GET /v1/models` in Anthropic's shape (answered when the request carries
/// `anthropic-version`).
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct ModelList {
    pub data: Vec<ModelInfo>,
    pub has_more: bool,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct ModelInfo {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
}

impl ModelList {
    /// A one-page list of `(id, display name)` pairs; `created_at` is a fixed date, as
    /// Google's list has none.
    pub fn new(models: impl IntoIterator<Item = (String, String)>) -> Self {
        let data: Vec<ModelInfo> = models
            .into_iter()
            .map(|(id, display_name)| ModelInfo {
                kind: "model",
                id,
                display_name,
                created_at: "2024-01-01T00:00:00Z".to_owned(),
            })
            .collect();
        Self {
            first_id: data.first().map(|m| m.id.clone()),
            last_id: data.last().map(|m| m.id.clone()),
            has_more: false,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_parse_leniently() {
        let req: MessagesRequest = serde_json::from_value(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 10,
            "thinking": {"type": "something_new"},
            "tool_choice": {"type": "mystery"},
            "context_management": {"edits": []},
            "messages": [{"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "image", "source": {"type": "future_kind"}},
                {"type": "text", "text": "ok", "citations": null, "cache_control": {"type": "ephemeral"}}
            ]}]
        }))
        .expect("parses");
        assert!(matches!(req.thinking, Some(Thinking::Other)));
        assert!(matches!(req.tool_choice, Some(ToolChoice::Other)));
        let MessageContent::Blocks(blocks) = &req.messages[0].content else {
            panic!("blocks");
        };
        assert!(matches!(blocks[0], ContentBlock::Other));
        assert!(matches!(
            blocks[2],
            ContentBlock::Image {
                source: Source::Other
            }
        ));
        assert!(matches!(&blocks[3], ContentBlock::Text { text } if text == "ok"));
    }

    #[test]
    fn thinking_display_decides_whether_text_is_shown() {
        let t = |v: serde_json::Value| serde_json::from_value::<Thinking>(v).expect("thinking");
        assert!(t(json!({"type": "enabled", "budget_tokens": 2048})).shows_text());
        assert!(!t(json!({"type": "adaptive", "display": "omitted"})).shows_text());
        assert!(t(json!({"type": "adaptive", "display": "omitted"})).is_on());
        assert!(!t(json!({"type": "disabled"})).is_on());
    }

    #[test]
    fn the_model_list_has_anthropics_shape() {
        let list = ModelList::new([("gemini-2.5-pro".to_owned(), "Gemini 2.5 Pro".to_owned())]);
        assert_eq!(
            serde_json::to_value(&list).expect("json"),
            json!({"data": [{"type": "model", "id": "gemini-2.5-pro", "display_name": "Gemini 2.5 Pro",
                             "created_at": "2024-01-01T00:00:00Z"}],
                   "has_more": false, "first_id": "gemini-2.5-pro", "last_id": "gemini-2.5-pro"})
        );
    }
}
