//! One upstream call with a credential of any kind: an API key (AI Studio, Vertex express)
//! in `x-goog-api-key`; a service account with a Bearer token from the token cache, in its
//! project ([`Target::locate`]). A token the token endpoint refuses is the account's failure
//! (invalid or suspended, classified by [`crate::vertex::TokenError::failure`]); a 401 from
//! Vertex drops the cached token and the call is sent once more with a fresh one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::Settings;
use crate::config::vertex::Only;
use crate::keys::{KeySlot, Kind};
use crate::upstream::classify::Failure;
use crate::upstream::endpoint::{VertexTarget, vertex_count_tokens};
use crate::upstream::{Auth, Target, Upstream, UpstreamUrl};
use crate::vertex::token::TokenCache;

/// What sends a call with any credential: the upstream client and the Vertex access
/// tokens. Cheap to clone into raced attempts.
#[derive(Clone)]
pub struct Caller {
    pub upstream: Upstream,
    pub tokens: Arc<TokenCache>,
}

impl Caller {
    /// Sends one call and returns the answer whatever its status (transport failures, a
    /// redirect and a refused token are errors).
    pub async fn send(
        &self,
        target: &Target,
        method: reqwest::Method,
        url: &UpstreamUrl,
        slot: &KeySlot,
        body: Option<Bytes>,
        idle: Duration,
    ) -> Result<reqwest::Response, Failure> {
        send(
            &self.upstream,
            &self.tokens,
            target,
            (method, url),
            slot,
            body,
            idle,
        )
        .await
    }
}

async fn send(
    upstream: &Upstream,
    tokens: &TokenCache,
    target: &Target,
    (method, url): (reqwest::Method, &UpstreamUrl),
    slot: &KeySlot,
    body: Option<Bytes>,
    idle: Duration,
) -> Result<reqwest::Response, Failure> {
    let url = target.locate(slot.kind(), url)?;
    let Kind::Account(account) = slot.kind() else {
        let auth = target.authorize(slot.secret()).await?;
        return upstream.send_any(method, &url, &auth, body, idle).await;
    };
    let source = tokens.source(account);
    let mut retried = false;
    loop {
        let token = source.token(upstream.client(), idle).await.map_err(|e| {
            tracing::warn!(account = %account.client_email(), error = %e, "no Vertex access token");
            e.failure()
        })?;
        let auth = Auth::Bearer(token.expose().to_owned());
        let response = upstream
            .send_any(method.clone(), &url, &auth, body.clone(), idle)
            .await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED || retried {
            return Ok(response);
        }
        tracing::info!(account = %account.client_email(), "Vertex answered 401: the access token is dropped and the call sent again");
        source.invalidate(&token);
        retried = true;
    }
}

/// The model a credential check counts tokens on (any model the credential may use would do).
const CHECK_MODEL: &str = "gemini-2.5-flash";

/// A Vertex credential's check: a free `countTokens` of one word, which needs the same
/// token and the same permission as generation; its failure is classified like a call's.
pub async fn check(caller: &Caller, settings: &Settings, slot: &KeySlot) -> Result<(), Failure> {
    let target = Target::vertex(settings, Only::Any);
    let url = vertex_count_tokens(
        &settings.vertex_base_url,
        VertexTarget::Express,
        CHECK_MODEL,
    )
    .map_err(|e| Failure::Garbage {
        detail: e.to_string(),
    })?;
    let body = Bytes::from_static(br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#);
    let idle = settings.upstream_timeout.min(Duration::from_secs(20));
    let response = caller
        .send(&target, reqwest::Method::POST, &url, slot, Some(body), idle)
        .await?;
    if response.status().is_success() {
        return crate::upstream::read_body(response, idle, 1024 * 1024)
            .await
            .map(|_| ());
    }
    Err(crate::upstream::classify_response(response, idle).await.2)
}
