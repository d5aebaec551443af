//! The credential/upstream boundary: where a call goes and how a credential authenticates
//! there. Dispatch leases a credential from a pool and asks the [`Target`] for the URL of
//! what it wants and for the credential's authentication; it never builds URLs or headers
//! itself. Acquiring the authentication may fail (a token endpoint refusing an account), and
//! that failure is classified like any other, so the credential leaves rotation or cools down
//! as a key would. AI Studio is the first target; Vertex AI (service accounts with OAuth
//! tokens, express keys, project and location paths) is the second.

use crate::config::Settings;
use crate::error::GatewayError;
use crate::upstream::UpstreamUrl;
use crate::upstream::classify::Failure;
use crate::upstream::endpoint::{self, Action, Version};

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
}

impl Target {
    /// AI Studio at `GEMINI_BASE_URL`.
    pub fn ai_studio(settings: &Settings) -> Self {
        Self::AiStudio {
            base: settings.gemini_base_url.clone(),
        }
    }

    /// How a credential (by its secret) authenticates a call to this target.
    pub async fn authorize(&self, secret: &str) -> Result<Auth, Failure> {
        match self {
            Self::AiStudio { .. } => Ok(Auth::ApiKey(secret.to_owned())),
        }
    }

    /// The host calls go to (for messages about an unreachable upstream).
    pub fn base(&self) -> &str {
        match self {
            Self::AiStudio { base } => base,
        }
    }

    /// `generateContent` of a model.
    pub fn generate(&self, model: &str) -> Result<UpstreamUrl, GatewayError> {
        endpoint::generate(self.base(), model)
    }

    /// `streamGenerateContent?alt=sse` of a model.
    pub fn stream_sse(&self, model: &str) -> Result<UpstreamUrl, GatewayError> {
        endpoint::stream_sse(self.base(), model)
    }

    /// `batchEmbedContents` of a model.
    pub fn batch_embed(&self, model: &str) -> Result<UpstreamUrl, GatewayError> {
        endpoint::batch_embed(self.base(), model)
    }

    /// A native action of a model, in the API version the client used.
    pub fn native(
        &self,
        version: Version,
        model: &str,
        action: Action,
        query: &[(&str, &str)],
    ) -> Result<UpstreamUrl, GatewayError> {
        endpoint::model_action(self.base(), version, model, action, query)
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
