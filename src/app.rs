//! Router assembly. HTTP layer order, outermost first:
//! 0. `collapse_slashes` — `/v1//models` is `/v1/models` (a client base URL ending in `/`),
//!    done before routing;
//! 1. `log_requests` — request id, one log line per request when its body ends;
//! 2. `CatchPanicLayer` — a panic becomes a 500 in OpenAI shape, never a dropped connection;
//! 3. `CorsLayer` — only when `ALLOWED_ORIGINS` is set (preflights answered here);
//! 4. the routes, each a thin handler calling the pipeline.
//!
//! Unknown paths get 404 and wrong methods 405, in the shape of the route family.

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Settings;
use crate::error::{Flavor, GatewayError};
use crate::routes::{admin, anthropic, gemini as native, openai, ops, responses, vector};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let settings = state.live.current();
    let stats = Arc::clone(&state.stats);
    let api = Router::new()
        .route("/v1/chat/completions", post(openai::chat))
        .route("/chat/completions", post(openai::chat))
        .route("/aistudio/chat/completions", post(openai::aistudio_chat))
        .route("/vertex/chat/completions", post(openai::vertex_chat))
        .route("/v1/responses", post(responses::create))
        .route("/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route(
            "/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route("/v1/messages", post(anthropic::messages))
        .route("/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/models", get(openai::v1_list_models))
        .route("/models", get(openai::list_models))
        .route("/aistudio/models", get(openai::aistudio_list_models))
        .route(
            "/v1/models/{id}",
            get(openai::v1_get_model).post(native::action_v1beta),
        )
        .route("/models/{id}", get(openai::get_model))
        .route("/aistudio/models/{id}", get(openai::aistudio_get_model))
        .route("/vertex/models", get(openai::vertex_list_models))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/embeddings", post(openai::embeddings))
        .route("/api/vector/query", post(vector::query))
        .route("/api/vector/insert", post(vector::insert))
        .route("/gemini/{ver}/models", get(native::list_models))
        .route(
            "/gemini/{ver}/models/{model}",
            get(native::get_model).post(native::action),
        )
        .route("/v1beta/models", get(native::list_models_v1beta))
        .route("/v1alpha/models", get(native::list_models_v1beta))
        .route(
            "/v1beta/models/{model}",
            get(native::get_model_v1beta).post(native::action_v1beta),
        )
        .route(
            "/v1alpha/models/{model}",
            get(native::get_model_v1beta).post(native::action_v1beta),
        )
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/api/dashboard-data", get(admin::dashboard_data))
        .route("/api/update-config", post(admin::update_config))
        .route("/api/reset-stats", post(admin::reset_stats))
        .route("/api/test-api-keys", post(admin::test_keys))
        .route(
            "/api/test-api-keys/progress",
            get(admin::test_keys_progress),
        )
        .route(
            "/api/clear-invalid-api-keys",
            post(admin::clear_invalid_keys),
        )
        .route("/api/export-valid-api-keys", post(admin::export_valid_keys))
        .route("/api/login", post(admin::login))
        .route("/api/logout", post(admin::logout))
        .route("/api/session", get(admin::session))
        .route("/api/keys", get(admin::keys))
        .route("/api/keys/add", post(admin::keys_add))
        .route("/api/keys/remove", post(admin::keys_remove))
        .route("/api/keys/reset", post(admin::keys_reset))
        .route("/api/config", get(admin::config))
        .route("/api/usage", get(admin::usage))
        .route("/api/logs", get(admin::logs));
    let index_path = match &settings.dashboard_url {
        Some(p) => format!("/{p}"),
        None => "/".to_owned(),
    };
    let router = api
        .merge(crate::web::routes(&index_path))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    let router = match cors(&settings) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    let router = router.layer(CatchPanicLayer::custom(panic_response)).layer(
        axum::middleware::from_fn_with_state(stats, crate::telemetry::log_requests),
    );
    // A Router's layers run after its routing: the path is made canonical by an outer Router
    // whose only route is the fallback.
    Router::new().fallback_service(tower::util::MapRequest::new(
        router,
        collapse_slashes as fn(Request) -> Request,
    ))
}

/// Collapses repeated slashes in the request path (the query is left alone).
fn collapse_slashes(mut request: Request) -> Request {
    if let Some(uri) = collapsed_uri(request.uri()) {
        *request.uri_mut() = uri;
    }
    request
}

fn collapsed_uri(uri: &axum::http::Uri) -> Option<axum::http::Uri> {
    let path = uri.path();
    if !path.contains("//") {
        return None;
    }
    let mut collapsed = String::with_capacity(uri.path_and_query()?.as_str().len());
    for c in path.chars() {
        if c == '/' && collapsed.ends_with('/') {
            continue;
        }
        collapsed.push(c);
    }
    if let Some(query) = uri.query() {
        collapsed.push('?');
        collapsed.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(collapsed.parse().ok()?);
    axum::http::Uri::from_parts(parts).ok()
}

fn cors(settings: &Settings) -> Option<CorsLayer> {
    if settings.allowed_origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS, Method::HEAD])
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(600));
    // Any origin: the literal `*` and never credentials (echoing every origin with
    // `Allow-Credentials: true` would let any web page call the API as the browser's user).
    if settings.allowed_origins.iter().any(|o| o == "*") {
        return Some(layer.allow_origin(AllowOrigin::any()));
    }
    let origins: Vec<HeaderValue> = settings
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(layer.allow_origin(origins).allow_credentials(true))
}

/// The error flavour of a path's route family.
pub fn flavor_of(path: &str) -> Flavor {
    if path.starts_with("/gemini/") || path.starts_with("/v1beta/") || path.starts_with("/v1alpha/")
    {
        Flavor::Gemini
    } else if path.starts_with("/api/") && !path.starts_with("/api/vector/") {
        Flavor::Detail
    } else if path == "/v1/messages"
        || path == "/messages"
        || path.starts_with("/v1/messages/")
        || path.starts_with("/messages/")
    {
        Flavor::Anthropic
    } else {
        Flavor::OpenAi
    }
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    GatewayError::NotFound {
        message: format!("未知路径 {path} / Unknown route {path}"),
        code: "unknown_url",
    }
    .render(flavor_of(&path))
}

async fn method_not_allowed(request: Request) -> Response {
    GatewayError::MethodNotAllowed.render(flavor_of(request.uri().path()))
}

fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    tracing::error!(panic = %crate::mask::scrub_keys(detail), "handler panicked");
    GatewayError::internal(anyhow::anyhow!("handler panicked"))
        .render(Flavor::OpenAi)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collapsed(uri: &str) -> Option<String> {
        let uri: axum::http::Uri = uri.parse().ok()?;
        collapsed_uri(&uri).map(|u| u.to_string())
    }

    #[test]
    fn repeated_slashes_collapse_and_the_query_stays() {
        assert_eq!(collapsed("/v1//models").as_deref(), Some("/v1/models"));
        assert_eq!(
            collapsed("//v1///chat/completions").as_deref(),
            Some("/v1/chat/completions")
        );
        assert_eq!(
            collapsed("/v1beta//models?key=a//b").as_deref(),
            Some("/v1beta/models?key=a//b")
        );
        assert_eq!(
            collapsed("http://h:1//v1//models").as_deref(),
            Some("http://h:1/v1/models"),
            "HTTP/2 requests carry the authority"
        );
        assert_eq!(collapsed("/v1/models"), None, "nothing to do");
        assert_eq!(
            collapsed("/v1/models/a%2F%2Fb"),
            None,
            "encoded slashes are not path separators"
        );
    }
}
