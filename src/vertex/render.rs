//! `-encrypt-full` answers written without the obfuscation: a [`Render`] around the
//! dialect's that passes every answer and stream event through
//! [`crate::vertex::models::deobfuscate`] (answer text only, never thoughts) before the
//! dialect sees it (the parsed answer; the raw bytes, which only the identity dialect reads
//! and which never goes to Vertex, stay Google's). Everything else is the dialect's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use bytes::Bytes;

use crate::cache::Answer;
use crate::error::{Flavor, GatewayError};
use crate::translate::dialect::{Keep, Render};
use crate::vertex::models::deobfuscate;
use crate::wire::gemini::{GenerateContentResponse, UsageMetadata};

/// The dialect's render, fed de-obfuscated answers while `active` is raised (from the start
/// for `-encrypt-full`; for `-auto` once its `-encrypt-full` body is in use).
pub struct Deobfuscating {
    pub render: Box<dyn Render>,
    pub active: Arc<AtomicBool>,
}

impl Deobfuscating {
    fn clean(&self, response: &GenerateContentResponse) -> Option<GenerateContentResponse> {
        if self.active.load(Ordering::Relaxed) {
            clean(response)
        } else {
            None
        }
    }
}

/// The response with its answer text de-obfuscated; `None` when nothing changed.
fn clean(response: &GenerateContentResponse) -> Option<GenerateContentResponse> {
    let mut out = response.clone();
    let mut changed = false;
    for candidate in out.candidates.iter_mut().flatten() {
        for part in candidate
            .content
            .iter_mut()
            .flat_map(|c| c.parts.iter_mut())
        {
            if part.thought == Some(true) {
                continue;
            }
            if let Some(text) = &mut part.text {
                let plain = deobfuscate(text);
                if plain != *text {
                    *text = plain;
                    changed = true;
                }
            }
        }
    }
    changed.then_some(out)
}

impl Render for Deobfuscating {
    fn label(&self) -> &'static str {
        self.render.label()
    }
    fn flavor(&self) -> Flavor {
        self.render.flavor()
    }
    fn content_type(&self, stream: bool) -> &'static str {
        self.render.content_type(stream)
    }
    fn forwards_request_errors(&self) -> bool {
        self.render.forwards_request_errors()
    }
    fn check(&self, answer: &Answer) -> Result<(), GatewayError> {
        self.render.check(answer)
    }
    fn complete(&mut self, answer: &Answer) -> Result<(StatusCode, Bytes), GatewayError> {
        match answer.parsed.as_deref().and_then(|a| self.clean(a)) {
            Some(plain) => {
                // Translating dialects read the parsed answer; the raw bytes stay Google's.
                let answer = Answer {
                    status: answer.status,
                    raw: answer.raw.clone(),
                    parsed: Some(Arc::new(plain)),
                };
                self.render.complete(&answer)
            }
            None => self.render.complete(answer),
        }
    }
    fn open(&mut self, out: &mut Vec<Bytes>) {
        self.render.open(out);
    }
    fn event(
        &mut self,
        raw: &Bytes,
        event: Option<&GenerateContentResponse>,
        out: &mut Vec<Bytes>,
    ) {
        match event.and_then(|e| self.clean(e)) {
            Some(plain) => self.render.event(raw, Some(&plain), out),
            None => self.render.event(raw, event, out),
        }
    }
    fn finish(&mut self, out: &mut Vec<Bytes>) {
        self.render.finish(out);
    }
    fn fail(&mut self, error: &GatewayError, stream: bool, out: &mut Vec<Bytes>) {
        self.render.fail(error, stream, out);
    }
    fn keepalive(&self, stream: bool) -> Bytes {
        self.render.keepalive(stream)
    }
    fn inband(&self, error: &GatewayError, stream: bool) -> Option<Vec<Bytes>> {
        self.render.inband(error, stream)
    }
    fn signatures(&mut self) -> Vec<(String, String)> {
        self.render.signatures()
    }
    fn keep(&mut self) -> Option<Keep> {
        self.render.keep()
    }
    fn is_finished(&self) -> bool {
        self.render.is_finished()
    }
    fn rescuable(&self) -> Option<String> {
        self.render.rescuable()
    }
    fn begin_rescue(&mut self) {
        self.render.begin_rescue();
    }
    fn usage(&self) -> Option<UsageMetadata> {
        self.render.usage()
    }
}
