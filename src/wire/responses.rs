//! OpenAI Responses API types (`POST /v1/responses`, the Response object, its stream
//! events), named as OpenAI names them. Requests are parsed leniently: unknown fields are
//! ignored, input items and content parts of unknown types become `Other` (agents such as
//! Codex send items hajimi has no use for); tools and `tool_choice` stay loose JSON for the
//! translation to read. Responses and events are written with every field the official SDK's
//! types require.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Requests

#[derive(Debug, Deserialize, Clone, Default)]
pub struct CreateResponse {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub input: Option<Input>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub reasoning: Option<Reasoning>,
    #[serde(default)]
    pub text: Option<TextConfig>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub stream: Option<bool>,
    /// The SDK omits it and the API defaults it to true.
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

impl CreateResponse {
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn stores(&self) -> bool {
        self.store.unwrap_or(true)
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

#[derive(Debug, Deserialize, Clone, Default)]
pub struct Reasoning {
    /// `none`, `minimal`, `low`, `medium`, `high`, `xhigh`.
    #[serde(default)]
    pub effort: Option<String>,
    /// `auto`, `concise`, `detailed`.
    #[serde(default)]
    pub summary: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Default)]
pub struct TextConfig {
    /// `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", "name",
    /// "schema", "strict"}`.
    #[serde(default)]
    pub format: Option<Value>,
}

/// One input item. Messages may come without `type` (the SDK's "easy" input message).
#[derive(Debug, Clone)]
pub enum InputItem {
    Message(InputMessage),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(CallOutput),
    CustomToolCall(CustomToolCallItem),
    CustomToolCallOutput(CallOutput),
    Reasoning(ReasoningItem),
    /// Any other item type (its `type`), e.g. `item_reference`, `web_search_call`.
    Other(String),
}

impl<'de> Deserialize<'de> for InputItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = Value::deserialize(deserializer)?;
        let kind = match value.get("type").and_then(Value::as_str) {
            Some(kind) => kind.to_owned(),
            None if value.get("role").is_some() => "message".to_owned(),
            None => return Err(D::Error::custom("input item without `type`")),
        };
        let item = match kind.as_str() {
            "message" => Self::Message(serde_json::from_value(value).map_err(D::Error::custom)?),
            "function_call" => {
                Self::FunctionCall(serde_json::from_value(value).map_err(D::Error::custom)?)
            }
            "function_call_output" => {
                Self::FunctionCallOutput(serde_json::from_value(value).map_err(D::Error::custom)?)
            }
            "custom_tool_call" => {
                Self::CustomToolCall(serde_json::from_value(value).map_err(D::Error::custom)?)
            }
            "custom_tool_call_output" => {
                Self::CustomToolCallOutput(serde_json::from_value(value).map_err(D::Error::custom)?)
            }
            "reasoning" => {
                Self::Reasoning(serde_json::from_value(value).map_err(D::Error::custom)?)
            }
            _ => Self::Other(kind),
        };
        Ok(item)
    }
}

#[derive(Debug, Deserialize, Clone)]
pub struct InputMessage {
    /// `user`, `assistant`, `system`, `developer`.
    pub role: String,
    pub content: MessageContent,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    InputText {
        #[serde(default)]
        text: String,
    },
    /// Assistant history.
    OutputText {
        #[serde(default)]
        text: String,
    },
    Refusal {
        #[serde(default)]
        refusal: String,
    },
    InputImage {
        #[serde(default)]
        image_url: Option<String>,
        #[serde(default)]
        file_id: Option<String>,
    },
    InputFile {
        #[serde(default)]
        file_data: Option<String>,
        #[serde(default)]
        file_url: Option<String>,
        #[serde(default)]
        file_id: Option<String>,
        #[serde(default)]
        filename: Option<String>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize, Clone)]
pub struct FunctionCallItem {
    pub call_id: String,
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Deserialize, Clone)]
pub struct CustomToolCallItem {
    pub call_id: String,
    pub name: String,
    #[serde(default)]
    pub input: String,
}

/// `function_call_output` / `custom_tool_call_output`.
#[derive(Debug, Deserialize, Clone)]
pub struct CallOutput {
    pub call_id: String,
    pub output: CallOutputContent,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum CallOutputContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize, Clone)]
pub struct ReasoningItem {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub summary: Vec<SummaryText>,
    #[serde(default)]
    pub encrypted_content: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
pub struct SummaryText {
    #[serde(rename = "type", default = "summary_text")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
}

fn summary_text() -> String {
    "summary_text".to_owned()
}

// ---------------------------------------------------------------------------------------
// Responses

/// The Response object (complete answers, `GET /v1/responses/{id}`, and the `response` of
/// lifecycle stream events).
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Response {
    pub id: String,
    pub object: String,
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete`, `failed`.
    pub status: String,
    pub background: bool,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub model: String,
    pub output: Vec<OutputItem>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: Value,
    pub store: bool,
    pub temperature: Option<f64>,
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub top_p: Option<f64>,
    pub truncation: String,
    pub usage: Option<ResponseUsage>,
    pub metadata: Value,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    Message {
        id: String,
        status: String,
        role: String,
        content: Vec<OutputContent>,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: String,
    },
    CustomToolCall {
        id: String,
        call_id: String,
        name: String,
        input: String,
        status: String,
    },
    Reasoning {
        id: String,
        summary: Vec<SummaryText>,
        /// A Gemini thought signature, carried for the next turn.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        encrypted_content: Option<String>,
        status: String,
    },
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    OutputText {
        text: String,
        annotations: Vec<Annotation>,
        logprobs: Vec<Value>,
    },
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Annotation {
    UrlCitation {
        start_index: u64,
        end_index: u64,
        title: String,
        url: String,
    },
}

#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
}

#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

/// A stream event without its `sequence_number` (the mapper numbers them).
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(tag = "type")]
pub enum StreamEvent {
    #[serde(rename = "response.created")]
    Created { response: Box<Response> },
    #[serde(rename = "response.in_progress")]
    InProgress { response: Box<Response> },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded { output_index: u32, item: OutputItem },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone { output_index: u32, item: OutputItem },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        item_id: String,
        output_index: u32,
        content_index: u32,
        part: OutputContent,
    },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        item_id: String,
        output_index: u32,
        content_index: u32,
        part: OutputContent,
    },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        item_id: String,
        output_index: u32,
        content_index: u32,
        delta: String,
        logprobs: Vec<Value>,
    },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        item_id: String,
        output_index: u32,
        content_index: u32,
        text: String,
        logprobs: Vec<Value>,
    },
    #[serde(rename = "response.output_text.annotation.added")]
    AnnotationAdded {
        item_id: String,
        output_index: u32,
        content_index: u32,
        annotation_index: u32,
        annotation: Annotation,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        item_id: String,
        output_index: u32,
        delta: String,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        item_id: String,
        output_index: u32,
        arguments: String,
    },
    #[serde(rename = "response.custom_tool_call_input.delta")]
    CustomToolCallInputDelta {
        item_id: String,
        output_index: u32,
        delta: String,
    },
    #[serde(rename = "response.custom_tool_call_input.done")]
    CustomToolCallInputDone {
        item_id: String,
        output_index: u32,
        input: String,
    },
    #[serde(rename = "response.reasoning_summary_part.added")]
    ReasoningSummaryPartAdded {
        item_id: String,
        output_index: u32,
        summary_index: u32,
        part: SummaryText,
    },
    #[serde(rename = "response.reasoning_summary_text.delta")]
    ReasoningSummaryTextDelta {
        item_id: String,
        output_index: u32,
        summary_index: u32,
        delta: String,
    },
    #[serde(rename = "response.reasoning_summary_text.done")]
    ReasoningSummaryTextDone {
        item_id: String,
        output_index: u32,
        summary_index: u32,
        text: String,
    },
    #[serde(rename = "response.reasoning_summary_part.done")]
    ReasoningSummaryPartDone {
        item_id: String,
        output_index: u32,
        summary_index: u32,
        part: SummaryText,
    },
    #[serde(rename = "response.completed")]
    Completed { response: Box<Response> },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: Box<Response> },
    #[serde(rename = "response.failed")]
    Failed { response: Box<Response> },
    /// A failure: OpenAI's fields at the top (the SDK's type) and as an `error` object (what
    /// the API sends, and what makes the SDK raise).
    #[serde(rename = "error")]
    Error {
        code: Option<String>,
        message: String,
        param: Option<String>,
        error: Value,
    },
}

impl StreamEvent {
    /// The SSE event name (equal to the payload's `type`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "response.created",
            Self::InProgress { .. } => "response.in_progress",
            Self::OutputItemAdded { .. } => "response.output_item.added",
            Self::OutputItemDone { .. } => "response.output_item.done",
            Self::ContentPartAdded { .. } => "response.content_part.added",
            Self::ContentPartDone { .. } => "response.content_part.done",
            Self::OutputTextDelta { .. } => "response.output_text.delta",
            Self::OutputTextDone { .. } => "response.output_text.done",
            Self::AnnotationAdded { .. } => "response.output_text.annotation.added",
            Self::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Self::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Self::CustomToolCallInputDelta { .. } => "response.custom_tool_call_input.delta",
            Self::CustomToolCallInputDone { .. } => "response.custom_tool_call_input.done",
            Self::ReasoningSummaryPartAdded { .. } => "response.reasoning_summary_part.added",
            Self::ReasoningSummaryTextDelta { .. } => "response.reasoning_summary_text.delta",
            Self::ReasoningSummaryTextDone { .. } => "response.reasoning_summary_text.done",
            Self::ReasoningSummaryPartDone { .. } => "response.reasoning_summary_part.done",
            Self::Completed { .. } => "response.completed",
            Self::Incomplete { .. } => "response.incomplete",
            Self::Failed { .. } => "response.failed",
            Self::Error { .. } => "error",
        }
    }
}

/// A stream event with its sequence number, as written.
#[derive(Debug, Serialize)]
pub struct Sequenced<'a> {
    #[serde(flatten)]
    pub event: &'a StreamEvent,
    pub sequence_number: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_items_parse_with_or_without_type_and_unknown_ones_are_kept_aside() {
        let req: CreateResponse = serde_json::from_value(json!({
            "model": "gpt-5", "store": false, "include": ["reasoning.encrypted_content"],
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "yo", "annotations": []}]},
                {"type": "item_reference", "id": "msg_1"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "content": null, "encrypted_content": "x"},
                {"type": "message", "role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
            ]
        }))
        .expect("parses");
        assert!(!req.stores());
        let Some(Input::Items(items)) = &req.input else {
            panic!("items");
        };
        assert!(matches!(&items[0], InputItem::Message(m) if m.role == "user"));
        assert!(matches!(&items[2], InputItem::Other(kind) if kind == "item_reference"));
        assert!(
            matches!(&items[3], InputItem::Reasoning(r) if r.encrypted_content.as_deref() == Some("x"))
        );
        assert!(matches!(&items[4], InputItem::Message(m)
            if matches!(&m.content, MessageContent::Parts(p) if matches!(p[0], ContentPart::Other))));
        let bad = serde_json::from_value::<CreateResponse>(
            json!({"model": "m", "input": [{"content": "x"}]}),
        );
        assert!(bad.is_err(), "an item without type or role");
    }
}
