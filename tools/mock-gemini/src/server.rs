//! The HTTP side: shared state, the accept loop (h1 + h2c, one task per connection, all
//! aborted with the server), routing of the Gemini paths and the `/__mock/` control API,
//! recording, and turning a `Reply` or a default answer into bytes on the wire.

use crate::generate::{self, PlannedCall, ReqInfo, TextPlan};
use crate::models::ModelStore;
use crate::rules::{self, CallSpec, Reply, Rule};
use crate::tools::{self, ToolInfo};
use crate::vertex::{self, Vertex, VertexCall, VertexRoute};
use crate::wire::{ApiError, JSON_CT, SSE_CT, preset, pretty, sse_event};
use crate::{Options, Recorded};
use arc_swap::ArcSwap;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue, LOCATION, SERVER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

type Resp = Response<Body>;

const MAX_BODY: usize = 64 << 20;
const MAX_RECORDED: usize = 10_000;
const MAX_SIGNATURES: usize = 10_000;
const ECHO_PREFIX: &str = "Hello from mock Gemini. You said: ";
const FIXED_TEXT: &str = "Hello from mock Gemini.";

pub(crate) struct Shared {
    stream_chunks: usize,
    chunk_delay_ms: u64,
    echo: bool,
    record: bool,
    latency_ms: AtomicU64,
    rule_count: AtomicUsize,
    rules: Mutex<Vec<Rule>>,
    recorded: Mutex<VecDeque<Recorded>>,
    models: ArcSwap<ModelStore>,
    signatures: Mutex<Signatures>,
    pub(crate) vertex: Vertex,
}

/// Thought signatures the mock issued (the last `MAX_SIGNATURES`), for the Gemini 3 replay check.
#[derive(Default)]
struct Signatures {
    known: HashSet<String>,
    order: VecDeque<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// `token_uri`: the mock's own `POST /token` URL (the audience assertions must name).
    pub(crate) fn new(opts: &Options, token_uri: String) -> Shared {
        Shared {
            stream_chunks: opts.stream_chunks.max(1),
            chunk_delay_ms: opts.chunk_delay_ms,
            echo: opts.echo,
            record: opts.record,
            latency_ms: AtomicU64::new(opts.latency_ms),
            rule_count: AtomicUsize::new(0),
            rules: Mutex::new(Vec::new()),
            recorded: Mutex::new(VecDeque::new()),
            models: ArcSwap::from_pointee(ModelStore::default_store()),
            signatures: Mutex::new(Signatures::default()),
            vertex: Vertex::new(token_uri),
        }
    }

    /// A fresh thought signature, remembered as issued.
    pub(crate) fn issue_signature(&self) -> String {
        let sig = tools::new_signature();
        let mut s = lock(&self.signatures);
        if s.order.len() >= MAX_SIGNATURES
            && let Some(old) = s.order.pop_front()
        {
            s.known.remove(&old);
        }
        s.known.insert(sig.clone());
        s.order.push_back(sig.clone());
        sig
    }

    /// Whether the mock issued this signature. Proto3 JSON accepts either base64 alphabet
    /// (google-genai sends signatures back URL-safe), so both spellings match.
    fn signature_issued(&self, sig: &str) -> bool {
        let standard: String = sig
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                other => other,
            })
            .collect();
        let known = lock(&self.signatures);
        known.known.contains(sig)
            || known
                .known
                .iter()
                .any(|k| k.trim_end_matches('=') == standard)
    }

    pub(crate) fn issued_signatures(&self) -> Vec<String> {
        lock(&self.signatures).order.iter().cloned().collect()
    }

    /// Function calls as answered for `model`: the first one signed when `sign`.
    fn plan_calls(&self, calls: Vec<CallSpec>, sign: bool) -> Vec<PlannedCall> {
        calls
            .into_iter()
            .enumerate()
            .map(|(i, c)| PlannedCall {
                name: c.name,
                args: c.args,
                signature: (sign && i == 0).then(|| self.issue_signature()),
            })
            .collect()
    }

    pub(crate) fn add_rules(&self, new: impl IntoIterator<Item = Rule>) {
        let mut rules = lock(&self.rules);
        rules.extend(new);
        self.rule_count.store(rules.len(), Relaxed);
    }

    fn take_rule(&self, key: Option<&str>, model: Option<&str>, action: &str) -> Option<Reply> {
        if self.rule_count.load(Relaxed) == 0 {
            return None;
        }
        let mut rules = lock(&self.rules);
        let reply = rules::take(&mut rules, key, model, action);
        self.rule_count.store(rules.len(), Relaxed);
        reply
    }

    pub(crate) fn reset(&self) {
        let mut rules = lock(&self.rules);
        rules.clear();
        self.rule_count.store(0, Relaxed);
        lock(&self.recorded).clear();
        self.vertex.reset_counts();
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        lock(&self.recorded).iter().cloned().collect()
    }

    pub(crate) fn set_models(&self, models: Vec<Value>) {
        self.models.store(Arc::new(ModelStore::new(models)));
    }

    pub(crate) fn set_latency_ms(&self, ms: u64) {
        self.latency_ms.store(ms, Relaxed);
    }
}

/// Accepts connections until the task is aborted; dropping the `JoinSet` closes them all.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let _ = Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn resp(status: u16, content_type: &'static str, body: impl Into<Body>) -> Resp {
    let mut r = Response::new(body.into());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        SERVER,
        HeaderValue::from_static("scaffolding on HTTPServer2"),
    );
    if content_type == SSE_CT {
        h.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    r
}

fn percent_decode(s: &str, plus: bool) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || (plus && b == b'+')) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) if plus => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k, true) == name).then(|| percent_decode(v, true).into_owned())
    })
}

/// What a request addresses. `version` is "v1beta" / "v1alpha" / "v1".
enum Route<'a> {
    Action {
        version: &'a str,
        model: String,
        action: String,
    },
    List {
        version: &'a str,
    },
    Get {
        version: &'a str,
        model: String,
    },
    NotFound,
}

fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let mut segs = path.strip_prefix('/').unwrap_or(path).splitn(3, '/');
    let (Some(version @ ("v1beta" | "v1alpha" | "v1")), Some("models")) =
        (segs.next(), segs.next())
    else {
        return Route::NotFound;
    };
    match (method, segs.next()) {
        (&Method::GET, None) => Route::List { version },
        (_, Some(rest)) if !rest.is_empty() && !rest.contains('/') => {
            let rest = percent_decode(rest, false);
            match (method, rest.rsplit_once(':')) {
                (&Method::POST, Some((m, a))) if !m.is_empty() => Route::Action {
                    version,
                    model: m.to_owned(),
                    action: a.to_owned(),
                },
                (&Method::GET, None) => Route::Get {
                    version,
                    model: rest.into_owned(),
                },
                _ => Route::NotFound,
            }
        }
        _ => Route::NotFound,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Unary,
    Sse,
    Array,
}

fn error_resp(e: ApiError, mode: Mode) -> Resp {
    match mode {
        Mode::Unary => resp(e.status, JSON_CT, e.body),
        Mode::Sse => resp(e.status, SSE_CT, e.body),
        Mode::Array => {
            let mut b = Vec::with_capacity(e.body.len() + 3);
            b.push(b'[');
            b.extend_from_slice(&e.body);
            b.extend_from_slice(b"\n]");
            resp(e.status, JSON_CT, b)
        }
    }
}

/// Stream pacing for a success answer.
struct Pace {
    chunks: usize,
    delay_ms: u64,
    cut_after: Option<usize>,
    stall_after: Option<usize>,
}

fn stream_resp(
    content_type: &'static str,
    frames: Vec<Vec<u8>>,
    delay_ms: u64,
    hang: bool,
) -> Resp {
    if delay_ms == 0 && !hang {
        let frames = frames
            .into_iter()
            .map(|f| Ok::<_, Infallible>(Bytes::from(f)));
        return resp(
            200,
            content_type,
            Body::from_stream(futures_util::stream::iter(frames)),
        );
    }
    let s = async_stream::stream! {
        for (i, f) in frames.into_iter().enumerate() {
            if i > 0 && delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            yield Ok::<Bytes, Infallible>(Bytes::from(f));
        }
        if hang {
            std::future::pending::<()>().await;
        }
    };
    resp(200, content_type, Body::from_stream(s))
}

fn success(plan: &TextPlan, pace: &Pace, mode: Mode) -> Resp {
    if mode == Mode::Unary {
        return resp(200, JSON_CT, plan.unary());
    }
    let mut frames = plan.events(pace.chunks, mode == Mode::Sse);
    let hang = pace.stall_after.is_some();
    if let Some(n) = pace.stall_after.or(pace.cut_after) {
        frames.truncate(n);
    }
    if mode == Mode::Array {
        for (i, f) in frames.iter_mut().enumerate() {
            f.splice(
                0..0,
                if i == 0 { &b"["[..] } else { &b"\n,\r\n"[..] }
                    .iter()
                    .copied(),
            );
        }
        match frames.last_mut() {
            _ if hang => {}
            Some(last) => last.extend_from_slice(b"\n]"),
            None => frames.push(b"[]".to_vec()),
        }
    }
    let ct = if mode == Mode::Sse { SSE_CT } else { JSON_CT };
    stream_resp(ct, frames, pace.delay_ms, hang)
}

/// Everything a reply may need to know about its request.
struct Ctx<'a> {
    shared: &'a Shared,
    version: &'a str,
    model: &'a str,
    action: &'a str,
    key: &'a str,
    query: Option<&'a str>,
    mode: Mode,
    body: &'a Map<String, Value>,
    /// A Vertex call: its project and location (both `None` on the express path).
    vertex: Option<(Option<&'a str>, Option<&'a str>)>,
}

async fn render(mut reply: Reply, ctx: &Ctx<'_>) -> Resp {
    loop {
        return match reply {
            Reply::Delay { ms, then } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                reply = *then;
                continue;
            }
            Reply::Hang => std::future::pending::<Resp>().await,
            Reply::Error { status, body } => error_resp(
                ApiError {
                    status,
                    body: pretty(&body),
                },
                ctx.mode,
            ),
            Reply::Preset { name } => {
                let e = preset(&name, ctx.model, ctx.key, ctx.version, ctx.action).unwrap_or_else(
                    || {
                        ApiError::new(
                            500,
                            "INTERNAL",
                            &format!("mock-gemini: unknown preset {name:?}"),
                        )
                    },
                );
                error_resp(e, ctx.mode)
            }
            Reply::Json { status, body } => resp(status.unwrap_or(200), JSON_CT, pretty(&body)),
            Reply::Redirect { status, location } => {
                let mut r = resp(status, JSON_CT, Body::empty());
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert(LOCATION, v);
                }
                r
            }
            Reply::Raw {
                status,
                content_type,
                body,
            } => {
                let mut r = resp(status, JSON_CT, body);
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    r.headers_mut().insert(CONTENT_TYPE, v);
                }
                r
            }
            Reply::Sse {
                events,
                delay_ms,
                end,
            } => {
                let frames = events.iter().map(sse_event).collect();
                stream_resp(
                    SSE_CT,
                    frames,
                    delay_ms.unwrap_or(0),
                    end.as_deref() == Some("hang"),
                )
            }
            Reply::Text {
                text,
                chunks,
                chunk_delay_ms,
                finish_reason,
                thought,
                cut_after,
                stall_after,
                candidates,
            } => {
                let info = ReqInfo::from_body(ctx.body);
                let mut plan =
                    TextPlan::new(&text, candidates.unwrap_or(info.candidate_count), ctx.model);
                plan.thought = thought;
                plan.prompt_tokens = info.prompt_tokens;
                if ctx.vertex.is_some() {
                    plan.vertex = Some(vertex::create_time());
                }
                if tools::has_google_search(ctx.body) {
                    plan.ground(&info.last_user_text);
                }
                if let Some(f) = finish_reason {
                    plan.finish_reason = f;
                }
                let pace = Pace {
                    chunks: chunks.unwrap_or(ctx.shared.stream_chunks),
                    delay_ms: chunk_delay_ms.unwrap_or(ctx.shared.chunk_delay_ms),
                    cut_after,
                    stall_after,
                };
                success(&plan, &pace, ctx.mode)
            }
            Reply::FunctionCall {
                calls,
                text,
                signature,
            } => {
                let info = ReqInfo::from_body(ctx.body);
                let sign = signature.unwrap_or_else(|| ctx.model.starts_with("gemini-3"));
                let calls = ctx.shared.plan_calls(calls, sign);
                let mut plan = TextPlan::function_calls(text.as_deref(), calls, ctx.model);
                plan.prompt_tokens = info.prompt_tokens;
                if ctx.vertex.is_some() {
                    plan.vertex = Some(vertex::create_time());
                }
                let pace = Pace {
                    chunks: 2,
                    delay_ms: ctx.shared.chunk_delay_ms,
                    cut_after: None,
                    stall_after: None,
                };
                success(&plan, &pace, ctx.mode)
            }
        };
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Resp {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            let msg = format!("Request payload size exceeds the limit: {MAX_BODY} bytes.");
            return error_resp(ApiError::invalid(&msg), Mode::Unary);
        }
    };
    let path = parts.uri.path();
    if let Some(cmd) = path.strip_prefix("/__mock/") {
        return control(shared, &parts.method, cmd, &body);
    }
    if path == "/token" && parts.method == Method::POST {
        let ct = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let (status, answer) = shared.vertex.grant(ct, &body);
        return resp(status, JSON_CT, answer);
    }
    let decode = |s: &str| percent_decode(s, false).into_owned();
    if let Some(vroute) = vertex::route(parts.method == Method::GET, path, &decode) {
        return handle_vertex(shared, &parts, &body, vroute).await;
    }
    let query = parts.uri.query();
    let query_key = query_param(query, "key");
    let key_in_query = query_key.is_some();
    let header_key = parts
        .headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok());
    let key = header_key.map(str::to_owned).or(query_key);
    let route = route(&parts.method, path);
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };

    let (version, model, action) = match &route {
        Route::Action {
            version,
            model,
            action,
        } => (*version, Some(model.as_str()), Some(action.as_str())),
        Route::List { version } => (*version, None, None),
        Route::Get { version, model } => (*version, Some(model.as_str()), None),
        Route::NotFound => ("v1beta", None, None),
    };
    if shared.record {
        let rec = Recorded {
            method: parts.method.to_string(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            api_key: key.clone(),
            key_in_query,
            model: model.map(str::to_owned),
            action: action.map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: parsed.clone().unwrap_or(Value::Null),
            vertex: None,
        };
        let mut recorded = lock(&shared.recorded);
        if recorded.len() >= MAX_RECORDED {
            recorded.pop_front();
        }
        recorded.push_back(rec);
    }
    let latency = shared.latency_ms.load(Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    let mode = match action {
        Some("streamGenerateContent") if query_param(query, "alt").as_deref() == Some("sse") => {
            Mode::Sse
        }
        Some("streamGenerateContent") => Mode::Array,
        _ => Mode::Unary,
    };
    let empty = Map::new();
    let body_map = match &parsed {
        Some(Value::Object(m)) => m,
        _ => &empty,
    };
    let ctx = Ctx {
        shared,
        version,
        model: model.unwrap_or_default(),
        action: action.unwrap_or_default(),
        key: key.as_deref().unwrap_or_default(),
        query,
        mode,
        body: body_map,
        vertex: None,
    };
    let rule_action = match &route {
        Route::Action { action, .. } => Some(action.as_str()),
        Route::List { .. } => Some("list"),
        Route::Get { .. } => Some("get"),
        Route::NotFound => None,
    };
    if let Some(ra) = rule_action
        && let Some(reply) = shared.take_rule(key.as_deref(), model, ra)
    {
        return render(reply, &ctx).await;
    }
    if key.is_none() {
        let msg = "Method doesn't allow unregistered callers (callers without established identity). \
                   Please use API Key or other form of API consumer identity to call this API.";
        return error_resp(ApiError::new(403, "PERMISSION_DENIED", msg), mode);
    }
    let invalid_json = !body.is_empty() && !matches!(parsed, Some(Value::Object(_)));
    match default_answer(&ctx, &route, invalid_json) {
        Ok(r) => r,
        Err(e) => error_resp(e, mode),
    }
}

fn default_answer(ctx: &Ctx<'_>, route: &Route<'_>, invalid_json: bool) -> Result<Resp, ApiError> {
    let models = ctx.shared.models.load();
    let action = match route {
        Route::NotFound => return Err(ApiError::new(404, "NOT_FOUND", "Method not found.")),
        Route::List { .. } => {
            let q = |camel: &str, snake: &str| {
                query_param(ctx.query, camel).or_else(|| query_param(ctx.query, snake))
            };
            let body = models.page(
                q("pageSize", "page_size").as_deref(),
                q("pageToken", "page_token").as_deref(),
            )?;
            return Ok(resp(200, JSON_CT, body));
        }
        Route::Get { version, model } => {
            let m = models.get(model).ok_or_else(|| {
                let msg = format!("Model is not found: models/{model} for api version {version}");
                ApiError::new(404, "NOT_FOUND", &msg)
            })?;
            return Ok(resp(200, JSON_CT, m.pretty.clone()));
        }
        Route::Action { action, .. } => action.as_str(),
    };
    if !matches!(
        action,
        "generateContent"
            | "streamGenerateContent"
            | "countTokens"
            | "embedContent"
            | "batchEmbedContents"
    ) {
        return Err(ApiError::new(404, "NOT_FOUND", "Method not found."));
    }
    if invalid_json {
        return Err(ApiError::invalid(
            "Invalid JSON payload received. Unexpected token.",
        ));
    }
    let generating = matches!(action, "generateContent" | "streamGenerateContent");
    if generating {
        generate::check_fields(ctx.body)?;
    }
    let model = models
        .get(ctx.model)
        .filter(|m| m.supports(action))
        .ok_or_else(|| match ctx.vertex {
            Some((project, location)) => vertex::model_not_found(project, location, ctx.model),
            None => ApiError::model_not_found(ctx.model, ctx.version, action),
        })?;
    match action {
        "countTokens" => {
            return Ok(resp(
                200,
                JSON_CT,
                generate::count_tokens(ctx.body, ctx.vertex.is_some()),
            ));
        }
        "embedContent" => return Ok(resp(200, JSON_CT, generate::embed_content(ctx.body))),
        "batchEmbedContents" => {
            return Ok(resp(
                200,
                JSON_CT,
                generate::batch_embed(ctx.body, &model.name)?,
            ));
        }
        _ => {}
    }
    generate::check_semantics(ctx.body, model, &|s| ctx.shared.signature_issued(s))?;
    let info = ReqInfo::from_body(ctx.body);
    let tool_info = ToolInfo::from_body(ctx.body);
    let mut plan = if let Some((name, args)) = tool_info.forced_call() {
        let call = CallSpec {
            name,
            args: Some(args),
        };
        let calls = ctx
            .shared
            .plan_calls(vec![call], model.name.starts_with("gemini-3"));
        TextPlan::function_calls(None, calls, &model.name)
    } else {
        let mut text = match ctx.shared.echo {
            true => Cow::Owned(format!("{ECHO_PREFIX}{}", info.last_user_text)),
            false => Cow::Borrowed(FIXED_TEXT),
        };
        if let Some(json) = tools::json_answer(ctx.body, &text) {
            text = Cow::Owned(json);
        }
        let mut plan = TextPlan::new(&text, info.candidate_count, &model.name);
        if tool_info.google_search {
            plan.ground(&info.last_user_text);
        }
        plan
    };
    plan.prompt_tokens = info.prompt_tokens;
    if ctx.vertex.is_some() {
        plan.vertex = Some(vertex::create_time());
    }
    if info.include_thoughts && model.thinking {
        plan.thought = Some(generate::THOUGHT_TEXT.to_owned());
    }
    let pace = Pace {
        chunks: ctx.shared.stream_chunks,
        delay_ms: ctx.shared.chunk_delay_ms,
        cut_after: None,
        stall_after: None,
    };
    Ok(success(&plan, &pace, ctx.mode))
}

/// A Vertex path: authentication (Bearer token of a service account on the project paths and
/// the list, express key on the express path), recording, rules (matched with the account's
/// email or the express key as the key), then the usual answers in Vertex's shape.
async fn handle_vertex(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    body: &Bytes,
    vroute: VertexRoute,
) -> Resp {
    let query = parts.uri.query();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header("authorization").and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("bearer "))
    });
    let key = header("x-goog-api-key")
        .map(str::to_owned)
        .or_else(|| query_param(query, "key"));
    let (version, project, location, model, action, express) = match &vroute {
        VertexRoute::Action {
            version,
            project,
            location,
            model,
            action,
        } => (
            version.as_str(),
            project.as_deref(),
            location.as_deref(),
            Some(model.as_str()),
            Some(action.as_str()),
            project.is_none(),
        ),
        VertexRoute::List => ("v1beta1", None, None, None, None, false),
    };
    let method = match action {
        Some("streamGenerateContent") => "StreamGenerateContent",
        Some("countTokens") => "CountTokens",
        _ => "GenerateContent",
    };
    let identity = if express {
        match key.as_deref() {
            Some(k) if shared.vertex.express(k) => Ok(k.to_owned()),
            Some(_) => Err(vertex::AuthError::BadKey),
            None => Err(vertex::AuthError::Missing { api_key: false }),
        }
    } else {
        match bearer {
            Some(t) => shared.vertex.bearer(t),
            None => Err(vertex::AuthError::Missing {
                api_key: key.is_some(),
            }),
        }
    };
    let parsed: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(body).ok()
    };
    if shared.record {
        let rec = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: query.map(str::to_owned),
            api_key: key.clone(),
            key_in_query: query_param(query, "key").is_some(),
            model: model.map(str::to_owned),
            action: action.map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: parsed.clone().unwrap_or(Value::Null),
            vertex: Some(VertexCall {
                project: project.map(str::to_owned),
                location: location.map(str::to_owned),
                credential: identity.as_ref().ok().cloned(),
                express,
            }),
        };
        let mut recorded = lock(&shared.recorded);
        if recorded.len() >= MAX_RECORDED {
            recorded.pop_front();
        }
        recorded.push_back(rec);
    }
    let latency = shared.latency_ms.load(Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mode = match action {
        Some("streamGenerateContent") if query_param(query, "alt").as_deref() == Some("sse") => {
            Mode::Sse
        }
        Some("streamGenerateContent") => Mode::Array,
        _ => Mode::Unary,
    };
    let identity = match identity {
        Ok(who) => who,
        Err(e) => return error_resp(e.api_error(method), mode),
    };
    let empty = Map::new();
    let body_map = match &parsed {
        Some(Value::Object(m)) => m,
        _ => &empty,
    };
    let ctx = Ctx {
        shared,
        version,
        model: model.unwrap_or_default(),
        action: action.unwrap_or_default(),
        key: &identity,
        query,
        mode,
        body: body_map,
        vertex: Some((project, location)),
    };
    let rule_action = action.unwrap_or("list");
    if let Some(reply) = shared.take_rule(Some(&identity), model, rule_action) {
        return render(reply, &ctx).await;
    }
    match &vroute {
        VertexRoute::List => {
            let models = shared.models.load();
            resp(
                200,
                JSON_CT,
                vertex::publisher_models(&|m| models.get(m).is_some()),
            )
        }
        VertexRoute::Action { model, action, .. } => {
            let route = Route::Action {
                version,
                model: model.clone(),
                action: action.clone(),
            };
            let invalid_json = !body.is_empty() && !matches!(parsed, Some(Value::Object(_)));
            match default_answer(&ctx, &route, invalid_json) {
                Ok(r) => r,
                Err(e) => error_resp(e, mode),
            }
        }
    }
}

fn control(shared: &Shared, method: &Method, cmd: &str, body: &[u8]) -> Resp {
    let ok = |v: Value| resp(200, JSON_CT, pretty(&v));
    let bad = |msg: String| {
        error_resp(
            ApiError::invalid(&format!("mock-gemini control: {msg}")),
            Mode::Unary,
        )
    };
    match (method, cmd) {
        (&Method::GET, "health") => resp(200, "text/plain; charset=utf-8", "ok"),
        (&Method::POST, "reset") => {
            shared.reset();
            ok(json!({"ok": true}))
        }
        (&Method::GET, "requests") => resp(
            200,
            JSON_CT,
            serde_json::to_vec(&shared.requests()).unwrap_or_default(),
        ),
        (&Method::POST, "rules") => {
            let rules = match serde_json::from_slice::<Value>(body) {
                Ok(v @ Value::Array(_)) => serde_json::from_value::<Vec<Rule>>(v),
                Ok(v) => serde_json::from_value::<Rule>(v).map(|r| vec![r]),
                Err(e) => Err(e),
            };
            match rules {
                Ok(rules) => match rules.iter().find_map(|r| r.reply.unknown_preset()) {
                    Some(name) => bad(format!(
                        "unknown preset {name:?}; known: {:?}",
                        crate::PRESETS
                    )),
                    None => {
                        let added = rules.len();
                        shared.add_rules(rules);
                        ok(json!({"ok": true, "added": added}))
                    }
                },
                Err(e) => bad(e.to_string()),
            }
        }
        (&Method::POST, "models") => match serde_json::from_slice::<Vec<Value>>(body) {
            Ok(models) => {
                let n = models.len();
                shared.set_models(models);
                ok(json!({"ok": true, "models": n}))
            }
            Err(e) => bad(e.to_string()),
        },
        (&Method::POST, "vertex/accounts") => {
            let v: Value = serde_json::from_slice(body).unwrap_or_default();
            let (Some(email), Some(project)) =
                (v["client_email"].as_str(), v["project_id"].as_str())
            else {
                return bad("expected {\"client_email\": …, \"project_id\": …}".to_owned());
            };
            match vertex::generate_account(email, project, shared.vertex.token_uri()) {
                Ok(account) => {
                    shared
                        .vertex
                        .register(email, project, account.public_key_der.clone());
                    resp(200, JSON_CT, account.json)
                }
                Err(e) => bad(e.to_string()),
            }
        }
        (&Method::POST, "vertex/refuse") => {
            let v: Value = serde_json::from_slice(body).unwrap_or_default();
            let Some(email) = v["client_email"].as_str() else {
                return bad("expected {\"client_email\": …, \"refuse\": true}".to_owned());
            };
            let refuse = v["refuse"].as_bool().unwrap_or(true);
            let description = v["description"]
                .as_str()
                .unwrap_or("Invalid JWT Signature.");
            shared.vertex.refuse(email, refuse.then_some(description));
            ok(json!({"ok": true}))
        }
        (&Method::POST, "vertex/token_lifetime") => match serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["secs"].as_u64())
        {
            Some(secs) => {
                shared.vertex.set_lifetime(secs);
                ok(json!({"ok": true, "secs": secs}))
            }
            None => bad("expected {\"secs\": N}".to_owned()),
        },
        (&Method::POST, "vertex/expire_tokens") => {
            shared.vertex.expire_tokens();
            ok(json!({"ok": true}))
        }
        (&Method::POST, "vertex/express_keys") => {
            match serde_json::from_slice::<Vec<String>>(body) {
                Ok(keys) => {
                    for k in &keys {
                        shared.vertex.add_express_key(k);
                    }
                    ok(json!({"ok": true, "added": keys.len()}))
                }
                Err(e) => bad(e.to_string()),
            }
        }
        (&Method::GET, "vertex/stats") => ok(shared.vertex.stats()),
        (&Method::POST, "latency") => match serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["ms"].as_u64())
        {
            Some(ms) => {
                shared.set_latency_ms(ms);
                ok(json!({"ok": true, "ms": ms}))
            }
            None => bad("expected {\"ms\": N}".to_owned()),
        },
        _ => error_resp(
            ApiError::new(404, "NOT_FOUND", "mock-gemini control: no such command"),
            Mode::Unary,
        ),
    }
}
