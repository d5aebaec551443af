//! Google's model list: fetched through every page (`nextPageToken`), cached, refreshed in
//! the background, and shown in OpenAI shape (decisions §6). Fetching uses keys from the pool
//! and reports key failures back to it. A model the list does not know is still sent to
//! Google when a client asks for it: Google decides, so new models work on day one. Until a
//! list is loaded, the reason it could not be ([`Unloaded`]) is kept for the 503 that
//! `/v1/models` answers (decisions §6).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use crate::config::Settings;
use crate::error::GatewayError;
use crate::keys::{KeyPool, Pick};
use crate::translate::model_name::{gemini_version, strip_model_prefix};
use crate::upstream::classify::Failure;
use crate::upstream::{Upstream, read_body};
use crate::wire::gemini::{ModelInfo, ModelPage};
use crate::wire::openai::{Model, ModelList};

/// How often the list is refreshed in the background.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// The `created` field shown for every model (Google publishes no creation time).
const CREATED: u64 = 1_700_000_000;
/// A bound on pages followed, in case an upstream hands out tokens forever.
const MAX_PAGES: usize = 50;
/// After a failed fetch, requests that find no list do not fetch again for this long (each
/// try can take up to three keys' timeouts).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Why no model list could be loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Unloaded {
    /// The pool has no key at all.
    NoKeys,
    /// Keys exist but none can be used now (invalid, suspended, busy or cooling down).
    NoUsableKey,
    /// Every key tried failed; the last failure.
    Failed(Failure),
}

impl Unloaded {
    /// A short bilingual label for logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NoKeys => "没有密钥 no key configured",
            Self::NoUsableKey => "没有可用密钥 no usable key",
            Self::Failed(f) => f.label(),
        }
    }

    /// The bilingual reason a client reads in the 503, naming the upstream host.
    pub fn message(&self, settings: &Settings) -> String {
        let host = crate::config::base_url_host(&settings.gemini_base_url);
        let (zh, en) = match self {
            Self::NoKeys => (
                format!("没有配置任何密钥（GEMINI_API_KEYS），无法从 {host} 获取"),
                format!(
                    "no upstream key is configured (GEMINI_API_KEYS), so it cannot be fetched from {host}"
                ),
            ),
            Self::NoUsableKey => (
                format!("没有可用的密钥（全部无效、被停用或冷却中），无法从 {host} 获取"),
                format!(
                    "no key can be used now (all invalid, suspended or cooling down), so it cannot be fetched from {host}"
                ),
            ),
            Self::Failed(Failure::Connection | Failure::Timeout) => {
                crate::keys::health::unreachable_parts(settings)
            }
            Self::Failed(
                f @ (Failure::KeyInvalid
                | Failure::KeySuspended
                | Failure::KeyNoAccess
                | Failure::Quota { .. }),
            ) => (
                format!("{host} 拒绝了所试的每个密钥（{}）", f.label()),
                format!("{host} refused every key tried ({})", f.label()),
            ),
            Self::Failed(f) => (
                format!("{host} 未能返回模型列表（{}）", f.label()),
                format!("{host} did not return the list ({})", f.label()),
            ),
        };
        format!("模型列表尚未加载：{zh} / The model list is not loaded yet: {en}")
    }
}

#[derive(Default)]
pub struct Catalog {
    models: ArcSwapOption<Vec<ModelInfo>>,
    /// `thinking` flags by model id (without `models/`), for the per-request lookup.
    thinking: ArcSwapOption<HashMap<String, bool>>,
    refresh: tokio::sync::Mutex<()>,
    /// When the last fetch failed and why (cleared by a success).
    failed_at: std::sync::Mutex<Option<(Instant, Unloaded)>>,
}

impl Catalog {
    pub fn current(&self) -> Option<Arc<Vec<ModelInfo>>> {
        self.models.load_full()
    }

    /// The model list's `thinking` flag for a model, when the list says.
    pub fn thinks(&self, model: &str) -> Option<bool> {
        self.thinking.load().as_ref()?.get(model).copied()
    }

    /// Fetches the list unless one is loaded (single-flight: concurrent callers wait for one fetch).
    pub async fn ensure(&self, settings: &Settings, pool: &KeyPool, upstream: &Upstream) {
        if self.models.load().is_some() {
            return;
        }
        let _guard = self.refresh.lock().await;
        if self.models.load().is_some() || self.failed_recently() {
            return;
        }
        if let Err(e) = self.fetch_into(settings, pool, upstream).await {
            tracing::warn!(error = e.label(), "could not fetch the model list");
        }
    }

    fn failed_recently(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < RETRY_AFTER_FAILURE)
    }

    fn set_failed(&self, failed: Option<Unloaded>) {
        *self
            .failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            failed.map(|why| (Instant::now(), why));
    }

    /// The loaded list, or the 503 saying why there is none (decisions §6: never an empty
    /// list in its place).
    pub fn loaded(
        &self,
        settings: &Settings,
        pool: &KeyPool,
    ) -> Result<Arc<Vec<ModelInfo>>, GatewayError> {
        if let Some(models) = self.current() {
            return Ok(models);
        }
        let why = self
            .failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(_, why)| why.clone())
            .unwrap_or(if pool.is_empty() {
                Unloaded::NoKeys
            } else {
                Unloaded::NoUsableKey
            });
        Err(GatewayError::Unavailable {
            message: why.message(settings),
        })
    }

    /// Re-fetches the list now.
    pub async fn refresh(
        &self,
        settings: &Settings,
        pool: &KeyPool,
        upstream: &Upstream,
    ) -> Result<usize, Unloaded> {
        let _guard = self.refresh.lock().await;
        self.fetch_into(settings, pool, upstream).await
    }

    async fn fetch_into(
        &self,
        settings: &Settings,
        pool: &KeyPool,
        upstream: &Upstream,
    ) -> Result<usize, Unloaded> {
        let result = self.fetch_once(settings, pool, upstream).await;
        self.set_failed(result.as_ref().err().cloned());
        result
    }

    async fn fetch_once(
        &self,
        settings: &Settings,
        pool: &KeyPool,
        upstream: &Upstream,
    ) -> Result<usize, Unloaded> {
        if pool.is_empty() {
            return Err(Unloaded::NoKeys);
        }
        let mut tried = HashSet::new();
        let mut last = Unloaded::NoUsableKey;
        for _ in 0..3 {
            let key = match pool.pick(
                "models.list",
                &tried,
                Instant::now(),
                crate::keys::Limits::default(),
            ) {
                Pick::Key(k) => k,
                _ => break,
            };
            tried.insert(key.id);
            match fetch_all(settings, upstream, key.secret()).await {
                Ok(models) => {
                    // Listing models is not a generation call: it does not count toward API_KEY_DAILY_LIMIT.
                    let n = models.len();
                    tracing::info!(models = n, key = %key.id, "model list loaded");
                    let thinking: HashMap<String, bool> = models
                        .iter()
                        .filter_map(|m| Some((strip_model_prefix(&m.name).to_owned(), m.thinking?)))
                        .collect();
                    self.thinking.store(Some(Arc::new(thinking)));
                    crate::metrics::set_known_models(
                        models
                            .iter()
                            .map(|m| strip_model_prefix(&m.name).to_owned())
                            .chain(settings.extra_models.iter().cloned()),
                    );
                    self.models.store(Some(Arc::new(models)));
                    return Ok(n);
                }
                Err(f) => {
                    key.settle(&f, "models.list", Instant::now());
                    last = Unloaded::Failed(f);
                }
            }
        }
        Err(last)
    }
}

async fn fetch_all(
    settings: &Settings,
    upstream: &Upstream,
    key: &str,
) -> Result<Vec<ModelInfo>, Failure> {
    let idle = settings.upstream_timeout.min(Duration::from_secs(30));
    let mut models = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("pageSize", "1000")];
        if let Some(t) = &token {
            query.push(("pageToken", t.as_str()));
        }
        let target = crate::upstream::Target::ai_studio(settings);
        let url = target
            .model_list(crate::upstream::endpoint::Version::V1beta, &query)
            .map_err(|_| Failure::Connection)?;
        let auth = target.authorize(key).await?;
        let response = upstream.get(&url, &auth, idle).await?;
        let body = read_body(response, idle, 16 * 1024 * 1024).await?;
        let page: ModelPage = serde_json::from_slice(&body).map_err(|e| Failure::Garbage {
            detail: format!("unreadable model list: {e}"),
        })?;
        models.extend(page.models);
        match page.next_page_token.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(models),
        }
    }
    Ok(models)
}

/// The model ids clients see: every listed model (without `models/`), then `EXTRA_MODELS`,
/// minus `BLOCKED_MODELS`, or only `WHITELIST_MODELS` when that is set.
pub fn visible_ids(settings: &Settings, models: Option<&[ModelInfo]>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |id: String, ids: &mut Vec<String>| {
        if !id.is_empty() && seen.insert(id.clone()) {
            ids.push(id);
        }
    };
    for m in models.unwrap_or_default() {
        let id = strip_model_prefix(&m.name).to_owned();
        // With SEARCH_MODE, every Gemini 2.x+ model that generates gets a `-search` twin,
        // listed right after it (HAJIMI's behaviour, extended to 3.x).
        let search_twin = settings.search_mode
            && gemini_version(&id).is_some_and(|(major, _)| major >= 2)
            && (m.supported_generation_methods.is_empty()
                || m.supported_generation_methods
                    .iter()
                    .any(|g| g == "generateContent"));
        let twin = search_twin.then(|| format!("{id}-search"));
        push(id, &mut ids);
        if let Some(t) = twin {
            push(t, &mut ids);
        }
    }
    for id in &settings.extra_models {
        push(id.clone(), &mut ids);
    }
    ids.retain(|id| model_allowed(settings, id));
    ids
}

/// Whether the white/block lists admit a model.
pub fn model_allowed(settings: &Settings, id: &str) -> bool {
    if !settings.whitelist_models.is_empty() {
        return settings.whitelist_models.iter().any(|w| w == id);
    }
    !settings.blocked_models.iter().any(|b| b == id)
}

pub fn openai_model(id: String) -> Model {
    Model {
        id,
        object: "model",
        created: CREATED,
        owned_by: "google",
    }
}

pub fn openai_list(ids: Vec<String>) -> ModelList {
    ModelList {
        object: "list",
        data: ids.into_iter().map(openai_model).collect(),
    }
}
