//! Every axum handler, thin, one file per route family (`openai`, `responses`, `gemini`,
//! `anthropic`,
//! `admin`, `ops`, `vector`): a handler names what it extracts and calls one pipeline or service function.
//! The request prologue is done once, by extractors: [`ClientCall`] (the family's
//! password, the User-Agent whitelist, the per-address rate limits where they apply, the
//! bounded body, typed JSON) and `admin::AdminCall` (the dashboard's password, session or
//! body password). Their rejection is a [`GatewayError`] in the family's shape.

pub mod admin;
pub mod anthropic;
pub mod auth;
pub mod body;
pub mod gemini;
pub mod openai;
pub mod ops;
pub mod responses;
pub mod vector;

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::config::Settings;
use crate::error::{Flavor, Flavored, GatewayError};
use crate::routes::body::{ItemLimits, Shape, parse_bounded, read_limited};
use crate::state::AppState;
use crate::telemetry::OutcomeHandle;

/// A route family: how its errors look.
pub trait Family: Send + Sync + 'static {
    const FLAVOR: Flavor;
    /// The client password is also accepted as `x-api-key` (Anthropic's header).
    const X_API_KEY: bool = false;
}

/// OpenAI-shaped routes (chat, models, embeddings, the vector adapters).
pub struct OpenAiRoutes;
/// Google's native routes (`/gemini/…`, `/v1beta/…`, `/v1alpha/…`).
pub struct GeminiRoutes;

impl Family for OpenAiRoutes {
    const FLAVOR: Flavor = Flavor::OpenAi;
}

impl Family for GeminiRoutes {
    const FLAVOR: Flavor = Flavor::Gemini;
}

/// Anthropic Messages routes (`/v1/messages`, `/messages`, `/v1/messages/count_tokens`).
pub struct AnthropicRoutes;

impl Family for AnthropicRoutes {
    const FLAVOR: Flavor = Flavor::Anthropic;
    const X_API_KEY: bool = true;
}

/// What a client route reads from its body.
pub trait FromBody: Sized + Send + 'static {
    /// Counted by the per-address rate limits (generation and embeddings, not listings).
    const ADMITTED: bool;
    fn from_body(
        body: axum::body::Body,
        parts: &Parts,
        snap: &Settings,
    ) -> impl Future<Output = Result<Self, GatewayError>> + Send;
}

/// A JSON request body, bounded while it is parsed (decisions §6: `MAX_MESSAGES`,
/// `MAX_CONTENT_PARTS`).
pub trait Bounded: DeserializeOwned + Send + 'static {
    /// How the bounds count this body's items.
    const SHAPE: Shape;
    const ADMITTED: bool = true;
}

impl<T: Bounded> FromBody for T {
    const ADMITTED: bool = <T as Bounded>::ADMITTED;
    async fn from_body(
        body: axum::body::Body,
        parts: &Parts,
        snap: &Settings,
    ) -> Result<Self, GatewayError> {
        let bytes = read_limited(body, &parts.headers, snap.max_body_size).await?;
        parse_bounded(&bytes, T::SHAPE, ItemLimits::of(snap))
    }
}

/// No body is read (listings).
pub struct NoBody;

impl FromBody for NoBody {
    const ADMITTED: bool = false;
    async fn from_body(_: axum::body::Body, _: &Parts, _: &Settings) -> Result<Self, GatewayError> {
        Ok(Self)
    }
}

/// The body, not read yet: the handler reads it once the path has been checked.
pub struct Unread(pub axum::body::Body);

impl FromBody for Unread {
    const ADMITTED: bool = false;
    async fn from_body(
        body: axum::body::Body,
        _: &Parts,
        _: &Settings,
    ) -> Result<Self, GatewayError> {
        Ok(Self(body))
    }
}

/// An authenticated client request of family `F` with body `T`, and the settings snapshot
/// it is served with (one per request, whatever changes meanwhile).
pub struct ClientCall<T, F: Family = OpenAiRoutes> {
    pub snap: Arc<Settings>,
    pub parts: Parts,
    pub body: T,
    /// What the request log reports about this request.
    pub outcome: OutcomeHandle,
    family: PhantomData<F>,
}

impl<T, F: Family> ClientCall<T, F> {
    /// This family's rendering of an error.
    pub fn fail(e: GatewayError) -> Flavored {
        e.flavored(F::FLAVOR)
    }

    /// Counts the request in the per-address rate limits (for routes that decide from the
    /// path whether they apply).
    pub fn admit(&self, state: &AppState) -> Result<(), GatewayError> {
        crate::limits::admit(&state.limiter, &self.snap, &self.parts)
    }
}

impl<T: FromBody, F: Family> FromRequest<AppState> for ClientCall<T, F> {
    type Rejection = Flavored;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let snap = state.live.current();
        let (parts, body) = request.into_parts();
        let outcome = outcome_of(&parts);
        auth::authenticate(&snap, &parts, F::X_API_KEY).map_err(Self::fail)?;
        if T::ADMITTED {
            crate::limits::admit(&state.limiter, &snap, &parts).map_err(Self::fail)?;
        }
        let body = T::from_body(body, &parts, &snap)
            .await
            .map_err(Self::fail)?;
        Ok(Self {
            snap,
            parts,
            body,
            outcome,
            family: PhantomData,
        })
    }
}

/// The request's [`OutcomeHandle`], put there by the request log (a fresh one when the
/// request did not pass through it, as in handler-level tests).
pub fn outcome_of(parts: &Parts) -> OutcomeHandle {
    parts
        .extensions
        .get::<OutcomeHandle>()
        .cloned()
        .unwrap_or_default()
}

impl<S: Send + Sync> FromRequestParts<S> for OutcomeHandle {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(outcome_of(parts))
    }
}
