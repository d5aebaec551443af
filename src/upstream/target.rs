//! The credential/upstream boundary: where a call goes and how a credential authenticates
//! there. Dispatch leases a credential from a pool and asks the [`Target`] for the URL of
//! what it wants and for the credential's authentication; it never builds URLs or headers
//! itself. Acquiring the authentication may fail (a token endpoint refusing an account), and
//! that failure is classified like any other, so the credential leaves rotation or cools down
//! as a key would. AI Studio is the first target; Vertex AI (service accounts with OAuth
//! tokens, express keys, project and location paths) is the second.

use std::borrow::Cow;
use std::sync::Arc;

use crate::config::Settings;
use crate::config::vertex::{Kind, Only};
use crate::error::GatewayError;
use crate::upstream::UpstreamUrl;
use crate::upstream::classify::Failure;
use crate::upstream::endpoint::{self, Action, Version, VertexTarget};

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
}

impl std::fmt::Debug for Vertex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vertex")
            .field("base", &self.base)
            .field("location", &self.location)
            .field("project", &self.project)
            .field("only", &self.only)
            .finish()
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
    pub fn vertex(settings: &Settings, only: Only) -> Self {
        Self::Vertex(Arc::new(Vertex {
            base: settings.vertex_base_url.clone(),
            location: settings.vertex_location.clone(),
            project: settings.vertex_project_id.clone(),
            only,
        }))
    }

    /// How an API key authenticates a call (AI Studio keys and Vertex express keys; a
    /// service account's Bearer token comes from `vertex::token`, see `vertex::send`).
    pub async fn authorize(&self, secret: &str) -> Result<Auth, Failure> {
        Ok(Auth::ApiKey(secret.to_owned()))
    }

    /// Where a call to `url` (made by this target's builders) goes with a credential of
    /// this kind: a Vertex service account's call moves into its project (or
    /// `VERTEX_PROJECT_ID`) and `VERTEX_LOCATION`; everything else goes where it was built.
    pub fn locate<'u>(
        &self,
        kind: &Kind,
        url: &'u UpstreamUrl,
    ) -> Result<Cow<'u, UpstreamUrl>, Failure> {
        match (self, kind) {
            (Self::Vertex(v), Kind::Account(account)) => {
                let project = v.project.as_deref().unwrap_or(account.project_id());
                endpoint::vertex_in_project(url, project, &v.location)
                    .map(Cow::Owned)
                    .map_err(|e| Failure::Garbage {
                        detail: e.to_string(),
                    })
            }
            _ => Ok(Cow::Borrowed(url)),
        }
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
