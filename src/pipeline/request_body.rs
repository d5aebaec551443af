//! The upstream body of one request, shared by its attempts: serialised once (part by part,
//! so the typed contents and their JSON never exist in full together), corrected once after a
//! known, fixable refusal (penalties a model does not support, JSON Schema it does not take),
//! and extended with two turns for a mid-stream rescue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::error::GatewayError;
use crate::translate::dialect::UpstreamBody;
use crate::translate::fixups::{drop_penalties, refuses_json_schema, use_schema_subset};
use crate::upstream::classify::Failure;
use crate::wire::gemini::GenerateContentRequest;

/// One-time corrections of a request that Google refused for a known, fixable reason:
/// penalties a model does not support (decisions §4), and JSON Schema fields a model does not
/// accept (then the schemas are converted to Google's subset).
#[derive(Default)]
struct Fixups {
    penalties_dropped: bool,
    schema_subset: bool,
}

impl Fixups {
    fn retry_with_fix(&mut self, failure: &Failure, request: &mut GenerateContentRequest) -> bool {
        match failure {
            Failure::PenaltyUnsupported { .. } if !self.penalties_dropped => {
                self.penalties_dropped = true;
                drop_penalties(request)
            }
            Failure::BadRequest { message, .. }
                if !self.schema_subset && refuses_json_schema(message) =>
            {
                self.schema_subset = true;
                use_schema_subset(request)
            }
            _ => false,
        }
    }
}

/// The upstream body of one client request, shared by its attempts: the serialised bytes
/// only, plus (OpenAI path) the request's other fields without its `contents`, which is all
/// a fix-up changes. A fix-up re-serialises those fields behind the unchanged contents; a
/// mid-stream rescue splices its two turns into the contents. Native bodies are raw bytes.
pub struct RequestBody {
    inner: Mutex<Inner>,
    /// Bodies to move on to after an empty answer (Vertex `-auto`: `-encrypt`, then
    /// `-encrypt-full`), and the flag raised when the last one is in use.
    fallbacks: Mutex<Vec<Inner>>,
    last_in_use: Option<Arc<AtomicBool>>,
}

struct Inner {
    bytes: Bytes,
    head: Option<Head>,
    fixups: Fixups,
}

/// Everything but the contents, and where the contents end in the bytes.
struct Head {
    rest: GenerateContentRequest,
    contents_end: usize,
}

/// How a serialised request starts; `contents` is its first field.
const CONTENTS_OPEN: &[u8] = b"{\"contents\":[";

impl RequestBody {
    /// Serialises a translated request, consuming it: each part is written and dropped in
    /// turn, so the typed contents and their JSON never both exist in full.
    pub fn typed(mut request: GenerateContentRequest) -> Result<Self, GatewayError> {
        let contents = std::mem::take(&mut request.contents);
        let rest = rest_fields(&request)?;
        // Sized up front: growing a buffer of many megabytes would copy it (two copies at once).
        let estimate = CONTENTS_OPEN.len()
            + contents.iter().map(estimated_len).sum::<usize>()
            + 1
            + rest.len();
        let mut out = Vec::with_capacity(estimate);
        out.extend_from_slice(CONTENTS_OPEN);
        for (i, content) in contents.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_content(&mut out, content)?;
        }
        out.push(b']');
        let contents_end = out.len();
        out.extend_from_slice(&rest);
        Ok(Self::of_inner(Inner {
            bytes: Bytes::from(out),
            head: Some(Head {
                rest: request,
                contents_end,
            }),
            fixups: Fixups::default(),
        }))
    }

    fn of_inner(inner: Inner) -> Self {
        Self {
            inner: Mutex::new(inner),
            fallbacks: Mutex::new(Vec::new()),
            last_in_use: None,
        }
    }

    /// A body that, after an empty answer (blocked or nothing usable), moves on to the
    /// next of `fallbacks` in order; `last_in_use` is raised once the last one is sent.
    pub fn with_fallbacks(
        mut self,
        fallbacks: Vec<RequestBody>,
        last_in_use: Arc<AtomicBool>,
    ) -> Self {
        let mut inners: Vec<Inner> = fallbacks
            .into_iter()
            .map(|b| b.inner.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect();
        inners.reverse();
        self.fallbacks = Mutex::new(inners);
        self.last_in_use = Some(last_in_use);
        self
    }

    /// Whether another body would be tried after this one (Vertex `-auto`): a blocked prompt
    /// is then a reason to move on, not the answer.
    pub fn has_fallbacks(&self) -> bool {
        !self
            .fallbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Moves on to the next fallback body after an empty answer; false when there is none.
    fn fall_back(&self, failure: &Failure) -> bool {
        if !matches!(failure, Failure::Empty { .. }) {
            return false;
        }
        let mut fallbacks = self
            .fallbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(next) = fallbacks.pop() else {
            return false;
        };
        if fallbacks.is_empty()
            && let Some(flag) = &self.last_in_use
        {
            flag.store(true, Ordering::Relaxed);
        }
        drop(fallbacks);
        *self.lock() = next;
        true
    }

    /// The body of a prepared request: typed (serialised here) or the client's own bytes.
    pub fn of(body: UpstreamBody) -> Result<Self, GatewayError> {
        match body {
            UpstreamBody::Typed(request) => Self::typed(*request),
            UpstreamBody::Raw(bytes) => Ok(Self::raw(bytes)),
        }
    }

    pub fn raw(bytes: Bytes) -> Self {
        Self::of_inner(Inner {
            bytes,
            head: None,
            fixups: Fixups::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn bytes(&self) -> Bytes {
        self.lock().bytes.clone()
    }

    /// The request to continue a reply that broke after `partial` was sent: the partial
    /// reply as the model's turn, then a user turn asking it to go on (mid-stream rescue).
    pub fn continuation(&self, partial: &str) -> Option<Bytes> {
        use crate::wire::gemini::{Content, Part};
        let guard = self.lock();
        let end = guard.head.as_ref()?.contents_end;
        let bytes = &guard.bytes;
        if partial.is_empty() {
            return Some(bytes.clone());
        }
        let turns = [
            Content {
                role: Some("model".into()),
                parts: vec![Part::text(partial)],
            },
            Content {
                role: Some("user".into()),
                parts: vec![Part::text(CONTINUE_PROMPT)],
            },
        ];
        let mut out = Vec::with_capacity(bytes.len() + partial.len() + 512);
        out.extend_from_slice(bytes.get(..end.checked_sub(1)?)?);
        for turn in &turns {
            if out.len() > CONTENTS_OPEN.len() {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, turn).ok()?;
        }
        out.extend_from_slice(bytes.get(end - 1..)?);
        Some(Bytes::from(out))
    }

    /// Applies a one-time fix-up for this failure; true when the request changed.
    pub fn fix(&self, failure: &Failure) -> bool {
        if self.fall_back(failure) {
            return true;
        }
        let mut guard = self.lock();
        let Inner {
            bytes,
            head,
            fixups,
        } = &mut *guard;
        let Some(head) = head.as_mut() else {
            return false;
        };
        if !fixups.retry_with_fix(failure, &mut head.rest) {
            return false;
        }
        let (Ok(rest), Some(contents)) = (rest_fields(&head.rest), bytes.get(..head.contents_end))
        else {
            return false;
        };
        let mut out = Vec::with_capacity(contents.len() + rest.len());
        out.extend_from_slice(contents);
        out.extend_from_slice(&rest);
        *bytes = Bytes::from(out);
        true
    }
}

/// Writes one content as serde would, its parts one by one, each dropped once written.
fn write_content(
    out: &mut Vec<u8>,
    mut content: crate::wire::gemini::Content,
) -> Result<(), GatewayError> {
    let parts = std::mem::take(&mut content.parts);
    let shell = serde_json::to_vec(&content).map_err(GatewayError::internal)?;
    // `parts` is the last field: `{"role":"user","parts":[]}`.
    let Some(open) = shell.strip_suffix(b"]}".as_slice()) else {
        content.parts = parts;
        return serde_json::to_writer(out, &content).map_err(GatewayError::internal);
    };
    out.extend_from_slice(open);
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, &part).map_err(GatewayError::internal)?;
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// The fields after `contents` as they follow it in the body: `,"systemInstruction":…}`, or
/// `}` when there are none. `request.contents` is empty here.
fn rest_fields(request: &GenerateContentRequest) -> Result<Vec<u8>, GatewayError> {
    let json = serde_json::to_vec(request).map_err(GatewayError::internal)?;
    json.strip_prefix(b"{\"contents\":[]".as_slice())
        .map(<[u8]>::to_vec)
        .ok_or_else(|| GatewayError::internal(anyhow::anyhow!("contents is not the first field")))
}

/// About how long a content's JSON is (exact for inline data, which dominates large bodies).
fn estimated_len(content: &crate::wire::gemini::Content) -> usize {
    content
        .parts
        .iter()
        .map(|p| {
            let text = p.text.as_ref().map_or(0, |t| t.len() + t.len() / 16);
            let data = p.inline_data.as_ref().map_or(0, |b| b.data.len());
            64 + text + data
        })
        .sum::<usize>()
        + 32
}

/// What a mid-stream rescue asks the model.
pub const CONTINUE_PROMPT: &str = "Your previous reply was cut off. Continue exactly where it stopped: do not repeat anything already written and do not add any preamble.";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample_request() -> GenerateContentRequest {
        use crate::wire::gemini::{Blob, Content, GenerationConfig, Part};
        GenerateContentRequest {
            contents: vec![
                Content {
                    role: Some("user".into()),
                    parts: vec![
                        Part::text("say \"hi\"\n"),
                        Part {
                            inline_data: Some(Blob {
                                mime_type: "image/png".into(),
                                data: "iVBORw0KGgo=".into(),
                            }),
                            ..Part::default()
                        },
                    ],
                },
                Content {
                    role: Some("model".into()),
                    parts: vec![Part::text("hi")],
                },
            ],
            system_instruction: Some(Content {
                role: None,
                parts: vec![Part::text("be brief")],
            }),
            generation_config: Some(GenerationConfig {
                temperature: Some(0.5),
                presence_penalty: Some(0.2),
                ..GenerationConfig::default()
            }),
            ..GenerateContentRequest::default()
        }
    }

    fn json_of(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).expect("valid JSON")
    }

    #[test]
    fn the_body_is_what_serde_writes_for_the_whole_request() {
        let request = sample_request();
        let whole = serde_json::to_vec(&request).expect("serialises");
        let body = RequestBody::typed(request).expect("serialises");
        assert_eq!(body.bytes(), Bytes::from(whole));
        let empty = RequestBody::typed(GenerateContentRequest::default()).expect("serialises");
        assert_eq!(json_of(&empty.bytes())["contents"], json!([]));
    }

    #[test]
    fn the_body_buffer_is_sized_once() {
        let mut request = sample_request();
        request.contents[0].parts[1] = crate::wire::gemini::Part {
            inline_data: Some(crate::wire::gemini::Blob {
                mime_type: "image/png".into(),
                data: "A".repeat(1 << 20),
            }),
            ..crate::wire::gemini::Part::default()
        };
        request.safety_settings = Some(crate::translate::safety::safety_settings("gemini-2.5-pro"));
        let rest = rest_fields(&GenerateContentRequest {
            contents: Vec::new(),
            ..request.clone()
        })
        .expect("serialises");
        let estimate = CONTENTS_OPEN.len()
            + request.contents.iter().map(estimated_len).sum::<usize>()
            + 1
            + rest.len();
        let body = RequestBody::typed(request).expect("serialises");
        assert!(
            body.bytes().len() <= estimate,
            "no reallocation while writing"
        );
    }

    #[test]
    fn a_fix_up_rewrites_the_fields_after_the_contents() {
        let body = RequestBody::typed(sample_request()).expect("serialises");
        let before = json_of(&body.bytes());
        let penalty = Failure::PenaltyUnsupported {
            message: "Penalty is not enabled".into(),
        };
        assert!(body.fix(&penalty));
        let after = json_of(&body.bytes());
        assert_eq!(after["contents"], before["contents"]);
        assert_eq!(after["systemInstruction"], before["systemInstruction"]);
        assert_eq!(after["generationConfig"], json!({"temperature": 0.5}));
        assert!(!body.fix(&penalty), "once only");
    }

    #[test]
    fn a_continuation_appends_the_partial_reply_and_a_request_to_go_on() {
        let body = RequestBody::typed(sample_request()).expect("serialises");
        let original = json_of(&body.bytes());
        let next = json_of(&body.continuation("Once upon").expect("a continuation"));
        let contents = next["contents"].as_array().expect("contents");
        assert_eq!(contents.len(), 4);
        assert_eq!(
            contents[..2],
            original["contents"].as_array().expect("contents")[..]
        );
        assert_eq!(
            contents[2],
            json!({"role": "model", "parts": [{"text": "Once upon"}]})
        );
        assert_eq!(contents[3]["parts"][0]["text"], CONTINUE_PROMPT);
        assert_eq!(next["generationConfig"], original["generationConfig"]);
        assert_eq!(body.continuation(""), Some(body.bytes()));
        assert_eq!(
            RequestBody::raw(Bytes::from_static(b"{}")).continuation("x"),
            None
        );
    }
}
