//! Delivering a complete answer in the client's dialect, as JSON or as a (fake) stream. With
//! a keep-alive interval, headers go out only when the first keep-alive is due: a failure
//! before that keeps its real status; after that, a keep-alive every interval until the
//! answer (or an in-band error) ends the body (decisions §3, §6).

use std::collections::VecDeque;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::cache::Answer;
use crate::error::GatewayError;
use crate::kept::Kept;
use crate::pipeline::sse;
use crate::signatures::Signatures;
use crate::translate::dialect::Render;

/// Where what an answer leaves behind is remembered: the thought signatures of its tool
/// calls, and what its dialect keeps for later requests.
#[derive(Clone)]
pub struct Memo {
    pub store: Signatures,
    pub kept: Kept,
    /// The upstream model the answer came from.
    pub model: String,
}

impl Memo {
    pub fn keep(&self, pairs: Vec<(String, String)>) {
        for (id, signature) in pairs {
            self.store.remember(&id, &self.model, &signature);
        }
    }

    /// Keeps what the dialect keeps once its answer is complete.
    pub fn keep_answer(&self, render: &mut dyn Render) {
        if let Some(keep) = render.keep() {
            self.kept.keep(keep);
        }
    }
}

/// How the answer is wanted.
pub struct Delivery {
    pub render: Box<dyn Render>,
    /// The client asked for a stream (served from one complete answer: fake streaming).
    pub stream: bool,
    pub memo: Memo,
}

/// What a result became: its status, the body's pieces, and whether they are a stream.
struct Written {
    status: StatusCode,
    parts: Vec<Bytes>,
    streamed: bool,
}

impl Delivery {
    /// The body of a result; `Err` when nothing was sent yet and the error should keep its
    /// status.
    fn write(
        &mut self,
        result: Result<Answer, GatewayError>,
        headers_out: bool,
    ) -> Result<Written, GatewayError> {
        let stream = self.stream;
        let answer = match result {
            Ok(answer) => answer,
            Err(e) => {
                if let Some(parts) = self.render.inband(&e, stream) {
                    return Ok(Written {
                        status: StatusCode::OK,
                        parts,
                        streamed: stream,
                    });
                }
                if !headers_out {
                    return Err(e);
                }
                return Ok(self.failed(&e));
            }
        };
        // A refusal forwarded as Google sent it goes out as JSON while the status can still
        // say what it is.
        let as_json = !stream || (answer.status != 200 && !headers_out);
        let written = if as_json {
            self.render.complete(&answer).map(|(status, body)| Written {
                status,
                parts: vec![body],
                streamed: false,
            })
        } else {
            self.render.check(&answer).map(|()| {
                let mut parts = Vec::new();
                if !headers_out {
                    self.render.open(&mut parts);
                }
                self.render
                    .event(&answer.raw, answer.parsed.as_deref(), &mut parts);
                self.render.finish(&mut parts);
                Written {
                    status: StatusCode::OK,
                    parts,
                    streamed: true,
                }
            })
        };
        self.memo.keep(self.render.signatures());
        if written.is_ok() {
            self.memo.keep_answer(self.render.as_mut());
        }
        match written {
            Ok(w) => Ok(w),
            Err(e) if !headers_out => Err(e),
            Err(e) => Ok(self.failed(&e)),
        }
    }

    fn failed(&mut self, e: &GatewayError) -> Written {
        let mut parts = Vec::new();
        self.render.fail(e, self.stream, &mut parts);
        Written {
            status: StatusCode::OK,
            parts,
            streamed: self.stream,
        }
    }
}

/// Writes the answer of `work` (see the module comment).
pub async fn deliver(
    work: BoxFuture<'static, Result<Answer, GatewayError>>,
    delivery: Delivery,
    keepalive: Option<Duration>,
) -> Response {
    let mut work = work;
    if let Some(every) = keepalive {
        tokio::select! {
            result = &mut work => return early(delivery, result),
            () = tokio::time::sleep(every) => {}
        }
        return late(work, delivery, every);
    }
    let result = work.await;
    early(delivery, result)
}

fn early(mut delivery: Delivery, result: Result<Answer, GatewayError>) -> Response {
    let flavor = delivery.render.flavor();
    match delivery.write(result, false) {
        Ok(w) => {
            let content_type = delivery.render.content_type(w.streamed);
            sse::respond(w.status, content_type, w.parts)
        }
        Err(e) => e.render(flavor).into_response(),
    }
}

fn late(
    work: BoxFuture<'static, Result<Answer, GatewayError>>,
    mut delivery: Delivery,
    every: Duration,
) -> Response {
    struct State {
        work: Option<BoxFuture<'static, Result<Answer, GatewayError>>>,
        delivery: Delivery,
        queue: VecDeque<Bytes>,
        ticker: tokio::time::Interval,
    }
    let stream = delivery.stream;
    let mut opening = Vec::new();
    if stream {
        delivery.render.open(&mut opening);
    }
    let mut queue: VecDeque<Bytes> = opening.into();
    queue.push_back(delivery.render.keepalive(stream));
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let content_type = delivery.render.content_type(stream);
    let state = State {
        work: Some(work),
        delivery,
        queue,
        ticker,
    };
    let frames = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(frame) = s.queue.pop_front() {
                return Some((frame, s));
            }
            let work = s.work.as_mut()?;
            tokio::select! {
                result = work => {
                    s.work = None;
                    if let Ok(w) = s.delivery.write(result, true) {
                        s.queue.extend(w.parts);
                    }
                }
                _ = s.ticker.tick() => {
                    let stream = s.delivery.stream;
                    s.queue.push_back(s.delivery.render.keepalive(stream));
                }
            }
        }
    });
    sse::stream(StatusCode::OK, content_type, frames)
}
