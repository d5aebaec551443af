//! The one place responses of the pipeline are built: a body given whole, or a stream of
//! frames, with its content type, and for event streams the headers that keep proxies from
//! buffering them (`Cache-Control: no-cache`, `X-Accel-Buffering: no`).

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type.starts_with("text/event-stream") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    response
}

/// A response whose body is `parts`, all known now.
pub fn respond(status: StatusCode, content_type: &'static str, parts: Vec<Bytes>) -> Response {
    let body = if parts.len() == 1 {
        Body::from(parts.into_iter().next().unwrap_or_default())
    } else {
        Body::from_stream(futures_util::stream::iter(
            parts.into_iter().map(Ok::<Bytes, Infallible>),
        ))
    };
    with_type(status, content_type, body)
}

/// A response whose body is written as `frames` come.
pub fn stream(
    status: StatusCode,
    content_type: &'static str,
    frames: impl Stream<Item = Bytes> + Send + 'static,
) -> Response {
    with_type(
        status,
        content_type,
        Body::from_stream(frames.map(Ok::<Bytes, Infallible>)),
    )
}

/// A response whose body is written as `chunks` come; an error ends the body abruptly (the
/// client sees a broken transfer, as from the upstream).
pub fn stream_fallible(
    status: StatusCode,
    content_type: &'static str,
    chunks: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    with_type(status, content_type, Body::from_stream(chunks))
}

/// `frames`, with `ping` inserted whenever none came for `every`: a real stream whose
/// upstream falls silent midway (a model thinking, a rescue opening) still shows the client
/// it is alive. The inner stream is only polled, never dropped, so no frame is lost to a tick.
pub fn kept_alive(
    frames: impl Stream<Item = Bytes> + Send + 'static,
    every: std::time::Duration,
    ping: Bytes,
) -> impl Stream<Item = Bytes> + Send + 'static {
    KeptAlive {
        frames: Box::pin(frames),
        tick: Box::pin(tokio::time::sleep(every)),
        every,
        ping,
    }
}

struct KeptAlive<S> {
    frames: std::pin::Pin<Box<S>>,
    tick: std::pin::Pin<Box<tokio::time::Sleep>>,
    every: std::time::Duration,
    ping: Bytes,
}

impl<S: Stream<Item = Bytes>> Stream for KeptAlive<S> {
    type Item = Bytes;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Bytes>> {
        use std::task::Poll;
        let next = tokio::time::Instant::now() + self.every;
        match self.frames.as_mut().poll_next(cx) {
            Poll::Ready(frame) => {
                self.tick.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending => match self.tick.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.tick.as_mut().reset(next);
                    Poll::Ready(Some(self.ping.clone()))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
