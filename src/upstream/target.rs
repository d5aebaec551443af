//! The credential/upstream boundary: where a call goes and how a credential authenticates
//! there. Dispatch leases a credential from a pool and asks the [`Target`] for the URL of
//! what it wants and for the credential's authentication; it never builds URLs or headers
//! itself. Acquiring the authentication may fail (a token endpoint refusing an account), and
//! that failure is classified like any other, so the credential leaves rotation or cools down
//! as a key would. AI Studio is the first target; Vertex AI (service accounts with OAuth
//! tokens, express keys, project and location paths) is the second.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{KeySlot, Kind, Only};
use crate::upstream::classify::Failure;
use crate::upstream::endpoint::{self, Action, Version, VertexTarget};
use crate::upstream::{Upstream, UpstreamUrl};
use crate::vertex::token::TokenCache;

/// How one call authenticates (`Debug` never shows the secret).
pub enum Auth {
    /// An API key, sent in `x-goog-api-key` (never in the URL).
    ApiKey(String),
    /// An OAuth access token, sent as `Authorization: Bearer`.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKey(key) => write!(f, "ApiKey({})", crate::mask::mask(key)),
            Self::Bearer(_) => f.write_str("Bearer(…)"),
        }
    }
}

/// An upstream API and its way of naming models and authenticating.
#[derive(Clone, Debug)]
pub enum Target {
    /// Google AI Studio's Generative Language API (`GEMINI_BASE_URL`), API keys.
    AiStudio { base: String },
    /// Vertex AI (`VERTEX_BASE_URL`): service accounts with OAuth tokens in their project
    /// and location, express keys on the project-less surface.
    Vertex(Arc<Vertex>),
}

/// Where Vertex calls go and with which credentials.
pub struct Vertex {
    /// `VERTEX_BASE_URL` (or the location's default host).
    pub base: String,
    /// `VERTEX_LOCATION`.
    pub location: String,
    /// `VERTEX_PROJECT_ID`: replaces the accounts' `project_id` when set.
    pub project: Option<String>,
    /// Which credentials may serve (the model's `[PAY]` / `[EXPRESS] ` prefix).
    pub only: Only,
    tokens: Arc<TokenCache>,
    /// For the token endpoint (the upstream client: no redirects, proxy settings).
    client: reqwest::Client,
}

impl std::fmt::Debug for Vertex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vertex")
            .field("base", &self.base)
            .field("location", &self.location)
            .field("project", &self.project)
            .field("only", &self.only)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// AI Studio at `GEMINI_BASE_URL`.
    pub fn ai_studio(settings: &Settings) -> Self {
        Self::AiStudio {
            base: settings.gemini_base_url.clone(),
        }
    }

    /// Vertex with the settings' base URL, location and project, for the credentials
    /// `only` admits.
    pub fn vertex(
        settings: &Settings,
        tokens: &Arc<TokenCache>,
        upstream: &Upstream,
        only: Only,
    ) -> Self {
        Self::Vertex(Arc::new(Vertex {
            base: settings.vertex_base_url.clone(),
            location: settings.vertex_location.clone(),
            project: settings.vertex_project_id.clone(),
            only,
            tokens: Arc::clone(tokens),
            client: upstream.client().clone(),
        }))
    }

    /// How an API key authenticates a call (AI Studio's own calls outside the dispatch:
    /// model lists, key checks).
    pub async fn authorize(&self, secret: &str) -> Result<Auth, Failure> {
        Ok(Auth::ApiKey(secret.to_owned()))
    }

    /// Sends one call with a credential of this target's pool and returns the answer
    /// whatever its status. A service account's call goes to its project (or
    /// `VERTEX_PROJECT_ID`) with a Bearer token from the token cache; a token the token
    /// endpoint refuses is the account's failure (invalid or suspended); a 401 from Vertex
    /// drops the cached token and the call is sent once more with a fresh one.
    pub async fn send(
        &self,
        upstream: &Upstream,
        method: reqwest::Method,
        url: &UpstreamUrl,
        slot: &KeySlot,
        body: Option<Bytes>,
        idle: Duration,
    ) -> Result<reqwest::Response, Failure> {
        let account = match (self, slot.kind()) {
            (Self::Vertex(v), Kind::Account(account)) => (v, account),
            _ => {
                let auth = Auth::ApiKey(slot.secret().to_owned());
                return upstream.send_any(method, url, &auth, body, idle).await;
            }
        };
        let (v, account) = account;
        let project = v.project.as_deref().unwrap_or(account.project_id());
        let url = endpoint::vertex_in_project(url, project, &v.location).map_err(|e| {
            Failure::Garbage {
                detail: e.to_string(),
            }
        })?;
        let source = v.tokens.source(account);
        for retry in [false, true] {
            let token = source.token(&v.client, idle).await.map_err(|e| {
                tracing::warn!(account = %account.client_email(), error = %e, "no Vertex access token");
                e.failure()
            })?;
            let auth = Auth::Bearer(token.expose().to_owned());
            let response = upstream
                .send_any(method.clone(), &url, &auth, body.clone(), idle)
                .await?;
            if response.status() != reqwest::StatusCode::UNAUTHORIZED || retry {
                return Ok(response);
            }
            tracing::info!(account = %account.client_email(), "Vertex answered 401: the access token is dropped and the call sent again");
            source.invalidate(&token);
        }
        Err(Failure::Garbage {
            detail: "unreachable".to_owned(),
        })
    }

    /// The host calls go to (for messages about an unreachable upstream).
    pub fn base(&self) -> &str {
        match self {
            Self::AiStudio { base } => base,
            Self::Vertex(v) => &v.base,
        }
    }

    /// `generateContent` of a model.
    pub fn generate(&self, model: &str) -> Result<UpstreamUrl, GatewayError> {
        self.native(Version::V1beta, model, Action::GenerateContent, &[])
    }

    /// `streamGenerateContent?alt=sse` of a model.
    pub fn stream_sse(&self, model: &str) -> Result<UpstreamUrl, GatewayError> {
        self.native(
            Version::V1beta,
            model,
            Action::StreamGenerateContent,
            &[("alt", "sse")],
        )
    }

    /// Whether this is Vertex AI.
    pub fn is_vertex(&self) -> bool {
        matches!(self, Self::Vertex(_))
    }

    /// `batchEmbedContents` of a model.
    pub fn batch_embed(&self, model: &str) -> Result<UpstreamUrl, GatewayError> {
        endpoint::batch_embed(self.base(), model)
    }

    /// A native action of a model, in the API version the client used (Vertex: its own
    /// version, on the express surface; [`Target::send`] moves a service account's call
    /// into its project).
    pub fn native(
        &self,
        version: Version,
        model: &str,
        action: Action,
        query: &[(&str, &str)],
    ) -> Result<UpstreamUrl, GatewayError> {
        match self {
            Self::AiStudio { base } => endpoint::model_action(base, version, model, action, query),
            Self::Vertex(v) => {
                endpoint::vertex_model_action(&v.base, VertexTarget::Express, model, action, query)
            }
        }
    }

    /// One model's description.
    pub fn model_get(&self, version: Version, model: &str) -> Result<UpstreamUrl, GatewayError> {
        endpoint::model_get(self.base(), version, model)
    }

    /// A page of the model list.
    pub fn model_list(
        &self,
        version: Version,
        query: &[(&str, &str)],
    ) -> Result<UpstreamUrl, GatewayError> {
        endpoint::model_list(self.base(), version, query)
    }
}
