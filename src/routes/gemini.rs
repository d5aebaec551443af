//! Google's native routes (`/gemini/{ver}/…`, `/v1beta/…`, `/v1alpha/…`, `POST
//! /v1/models/{m}:{a}`): Google's own SDKs work by changing only the base URL. The route
//! checks the path — the API version, one of the fixed actions, a model id of Google's
//! grammar — before anything else, so nothing a client puts in a path or query reaches
//! another Google API; the pipeline (`pipeline::native`) forwards the rest.

use axum::extract::{Path, State};
use axum::response::Response;

use crate::error::{Flavored, GatewayError};
use crate::pipeline::native::{self, NativeCall};
use crate::routes::body::{ItemLimits, Shape, check_items, read_limited};
use crate::routes::{ClientCall, GeminiRoutes, NoBody, Unread};
use crate::state::AppState;
use crate::upstream::endpoint::{self, Action, Version};

type Call<T> = ClientCall<T, GeminiRoutes>;
type Answer = Result<Response, Flavored>;

fn fail(e: GatewayError) -> Flavored {
    Call::<NoBody>::fail(e)
}

/// The query parameters of a model listing that go upstream (Google accepts both spellings).
/// Nothing else a client puts in a query ever goes upstream: not `key`, not a credential of
/// its own (`access_token`, `oauth_token`), not parameters that change what Google does
/// (`$alt`, `fields`, `upload_protocol`). A stream's `alt=sse` is decided by us from the
/// client's `alt` (see [`wants_sse`]).
const LIST_PARAMS: [&str; 4] = ["pageSize", "pageToken", "page_size", "page_token"];

/// `/v1beta/…` → `v1beta`, `/v1alpha/…` → `v1alpha`, `/v1/…` → `v1`.
fn version_of(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("v1beta")
        .to_owned()
}

fn check_version(ver: &str) -> Result<Version, GatewayError> {
    Version::parse(ver).ok_or_else(|| {
        let shown: String = ver.chars().take(16).collect();
        GatewayError::NotFound {
            message: format!(
                "未知的 API 版本 {shown} / Unknown API version {shown}: use v1beta, v1alpha or v1"
            ),
            code: "unknown_url",
        }
    })
}

/// `{model}:{action}` of a native POST: one of the fixed actions (else 404) on a model id of
/// Google's grammar, `models/` removed (else 400). Anything else never reaches the upstream.
fn target(model_action: &str) -> Result<(String, Action), GatewayError> {
    let Some((model, action)) = model_action.split_once(':') else {
        return Err(GatewayError::bad_request(
            "无效的请求路径：缺少 :action / Invalid request path: expected models/{model}:{action}",
        ));
    };
    let Some(action) = Action::parse(action) else {
        return Err(GatewayError::NotFound {
            message: "未知的方法 / Unknown method: use generateContent, streamGenerateContent, \
                      countTokens, embedContent or batchEmbedContents"
                .to_owned(),
            code: "unknown_url",
        });
    };
    let model = crate::translate::model_name::strip_model_prefix(model);
    endpoint::require_model_id(model)?;
    Ok((model.to_owned(), action))
}

/// The model a path's model stands for (`MODEL_ALIASES`), checked as the path's was.
fn alias(snap: &crate::config::Settings, model: String) -> Result<String, GatewayError> {
    let resolved = snap.model_aliases.resolve(&model);
    if resolved == model {
        return Ok(model);
    }
    let resolved = crate::translate::model_name::strip_model_prefix(resolved).to_owned();
    endpoint::require_model_id(&resolved)?;
    Ok(resolved)
}

/// The client's query parameters whose name is in `allowed`, names and values
/// percent-decoded once (as authentication reads them: `%6Bey` is `key`).
fn forwarded_query(query: Option<&str>, allowed: &[&str]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| allowed.contains(&name.as_ref()))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// Whether the client asked for server-sent events (`alt=sse`, the name decoded once).
fn wants_sse(query: Option<&str>) -> bool {
    forwarded_query(query, &["alt"])
        .iter()
        .any(|(_, value)| value == "sse")
}

/// `GET /gemini/{ver}/models`.
pub async fn list_models(
    State(state): State<AppState>,
    Path(ver): Path<String>,
    call: Call<NoBody>,
) -> Answer {
    list(&state, &ver, &call).await.map_err(fail)
}

/// `GET /v1beta/models`, `/v1alpha/models`.
pub async fn list_models_v1beta(State(state): State<AppState>, call: Call<NoBody>) -> Answer {
    let ver = version_of(call.parts.uri.path());
    list(&state, &ver, &call).await.map_err(fail)
}

/// `GET /gemini/{ver}/models/{model}`.
pub async fn get_model(
    State(state): State<AppState>,
    Path((ver, model)): Path<(String, String)>,
    call: Call<NoBody>,
) -> Answer {
    get(&state, &ver, &model, &call).await.map_err(fail)
}

/// `GET /v1beta/models/{model}`, `/v1alpha/…`.
pub async fn get_model_v1beta(
    State(state): State<AppState>,
    Path(model): Path<String>,
    call: Call<NoBody>,
) -> Answer {
    let ver = version_of(call.parts.uri.path());
    get(&state, &ver, &model, &call).await.map_err(fail)
}

/// `POST /gemini/{ver}/models/{model}:{action}`.
pub async fn action(
    State(state): State<AppState>,
    Path((ver, model_action)): Path<(String, String)>,
    call: Call<Unread>,
) -> Answer {
    post(&state, &ver, &model_action, call).await.map_err(fail)
}

/// `POST /v1beta/models/{model}:{action}` (and `/v1alpha/…`, `/v1/models/…`).
pub async fn action_v1beta(
    State(state): State<AppState>,
    Path(model_action): Path<String>,
    call: Call<Unread>,
) -> Answer {
    let ver = version_of(call.parts.uri.path());
    post(&state, &ver, &model_action, call).await.map_err(fail)
}

/// Google's model list (also for Google's SDKs on `/v1/models`).
pub async fn list<T, F: crate::routes::Family>(
    state: &AppState,
    ver: &str,
    call: &ClientCall<T, F>,
) -> Result<Response, GatewayError> {
    let version = check_version(ver)?;
    let query = forwarded_query(call.parts.uri.query(), &LIST_PARAMS);
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let url = endpoint::model_list(&call.snap.gemini_base_url, version, &pairs)?;
    native::model_get(state, &call.snap, url, &call.outcome).await
}

/// One model in Google's shape (also for Google's SDKs on `/v1/models/{id}`).
pub async fn get<T, F: crate::routes::Family>(
    state: &AppState,
    ver: &str,
    model: &str,
    call: &ClientCall<T, F>,
) -> Result<Response, GatewayError> {
    let version = check_version(ver)?;
    let model = crate::translate::model_name::strip_model_prefix(model);
    let url = endpoint::model_get(&call.snap.gemini_base_url, version, model)?;
    native::model_get(state, &call.snap, url, &call.outcome).await
}

async fn post(
    state: &AppState,
    ver: &str,
    model_action: &str,
    call: Call<Unread>,
) -> Result<Response, GatewayError> {
    let version = check_version(ver)?;
    let (model, action) = target(model_action)?;
    let model = alias(&call.snap, model)?;
    call.outcome.update(|o| o.model = Some(model.clone()));
    // Generation and embeddings count toward the per-IP limits (decisions §6).
    if action != Action::CountTokens {
        call.admit(state)?;
    }
    crate::pipeline::generate::require_allowed_model(&call.snap, &model)?;
    let bytes = read_limited(call.body.0, &call.parts.headers, call.snap.max_body_size).await?;
    check_items(&bytes, Shape::Gemini, ItemLimits::of(&call.snap))?;
    let sse = wants_sse(call.parts.uri.query());
    let target = NativeCall {
        version,
        model,
        action,
        sse,
    };
    native::action(state, &call.snap, target, bytes, &call.outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_paging_parameters_go_upstream_never_credentials() {
        let q = "pageSize=10&key=secret&%6Bey=secret&KEY=secret&access_token=t&oauth_token=t\
                 &%61ccess_token=t&%24alt=proto&fields=x&pageToken=abc%3D";
        assert_eq!(
            forwarded_query(Some(q), &LIST_PARAMS),
            pairs(&[("pageSize", "10"), ("pageToken", "abc=")])
        );
        assert_eq!(
            forwarded_query(Some("%70ageSize=3"), &LIST_PARAMS),
            pairs(&[("pageSize", "3")]),
            "names are decoded once"
        );
        assert!(forwarded_query(Some("%2570ageSize=3"), &LIST_PARAMS).is_empty());
        assert!(forwarded_query(None, &LIST_PARAMS).is_empty());
    }

    #[test]
    fn sse_is_read_from_the_decoded_alt() {
        assert!(wants_sse(Some("alt=sse")));
        assert!(wants_sse(Some("%61lt=sse&key=x")));
        assert!(!wants_sse(Some("alt=json")));
        assert!(!wants_sse(Some("xalt=sse")));
        assert!(!wants_sse(None));
    }

    #[test]
    fn versions_come_from_the_path() {
        assert_eq!(version_of("/v1beta/models/x:generateContent"), "v1beta");
        assert_eq!(version_of("/v1/models/x:generateContent"), "v1");
        assert!(check_version("v2").is_err());
        assert_eq!(check_version("v1alpha").ok(), Some(Version::V1alpha));
    }

    #[test]
    fn only_fixed_actions_on_model_ids_are_targets() {
        assert_eq!(
            target("models/gemini-2.5-flash:streamGenerateContent").ok(),
            Some(("gemini-2.5-flash".to_owned(), Action::StreamGenerateContent))
        );
        for (path, status) in [
            ("x:generateContent/../../files", 404),
            ("x:generateContent?key=AIzaSy", 404),
            ("x:generateContent#", 404),
            ("x:generateContent/../gemini-2.5-pro%3AgenerateContent", 404),
            ("gemini-2.5-flash%3AgenerateContent", 400),
            ("../files:generateContent", 400),
            ("a/b:generateContent", 400),
            ("x%2F:generateContent", 400),
            (":generateContent", 400),
            ("x:", 404),
        ] {
            let got = target(path).map_err(|e| e.status().as_u16());
            assert_eq!(got.err(), Some(status), "{path}");
        }
    }
}
