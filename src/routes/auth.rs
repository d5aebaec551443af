//! Who may call: the client password on API routes (from `x-goog-api-key`, `?key=` or
//! `Authorization: Bearer`, and on Anthropic routes `x-api-key` too; any presented one that
//! matches is accepted, compared in constant time) and the User-Agent whitelist
//! (decisions §2).

use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::config::Settings;
use crate::error::GatewayError;

/// Checks the client password and the User-Agent whitelist of an API route (`x_api_key`:
/// the route family also reads Anthropic's `x-api-key` header).
pub fn authenticate(
    settings: &Settings,
    parts: &Parts,
    x_api_key: bool,
) -> Result<(), GatewayError> {
    let mut presented = presented_credentials(&parts.headers, parts.uri.query());
    if x_api_key && let Some(v) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        presented.push(v.trim().to_owned());
    }
    if !presented
        .iter()
        .any(|p| settings.password.matches(p.as_bytes()))
    {
        return Err(GatewayError::Unauthorized);
    }
    admit_user_agent(settings, &parts.headers)
}

/// Every credential the request presents, in HAJIMI's order.
pub fn presented_credentials(headers: &HeaderMap, query: Option<&str>) -> Vec<String> {
    let mut out = Vec::with_capacity(3);
    if let Some(v) = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) {
        out.push(v.trim().to_owned());
    }
    if let Some(q) = query {
        out.extend(
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(name, _)| name == "key")
                .map(|(_, value)| value.into_owned()),
        );
    }
    out.extend(bearer_tokens(headers).map(str::to_owned));
    out
}

/// The tokens of every `Authorization: Bearer …` header (scheme case-insensitive).
pub fn bearer_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// `WHITELIST_USER_AGENT`: case-insensitive, equal to or starting with an entry.
pub fn admit_user_agent(settings: &Settings, headers: &HeaderMap) -> Result<(), GatewayError> {
    if settings.whitelist_user_agent.is_empty() {
        return Ok(());
    }
    let ua = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if settings
        .whitelist_user_agent
        .iter()
        .any(|w| ua.starts_with(w.as_str()))
    {
        Ok(())
    } else {
        Err(GatewayError::ForbiddenClient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn all_three_sources_are_collected() {
        let mut h = HeaderMap::new();
        h.insert("x-goog-api-key", HeaderValue::from_static("a"));
        h.insert("authorization", HeaderValue::from_static("bearer c"));
        assert_eq!(
            presented_credentials(&h, Some("alt=sse&key=b%21")),
            vec!["a", "b!", "c"]
        );
    }

    #[test]
    fn query_keys_are_form_decoded() {
        let h = HeaderMap::new();
        assert_eq!(presented_credentials(&h, Some("key=a%2")), vec!["a%2"]);
        assert_eq!(presented_credentials(&h, Some("key=%41%zz")), vec!["A%zz"]);
        assert_eq!(presented_credentials(&h, Some("x=1&key=a+b")), vec!["a b"]);
        assert!(
            presented_credentials(&h, Some("KEY=x")).is_empty(),
            "Google's name only"
        );
    }
}
