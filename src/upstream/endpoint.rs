//! Every URL hajimi sends to Google is built here, and only here: the base URL, an API
//! version from a fixed list, `models`, then `{model}:{action}` with a model id that matches
//! Google's grammar and an action from a fixed list, each appended with `url`'s path-segment
//! API (which percent-encodes it), and query parameters through `url`'s query serialiser.
//! A client's text never becomes part of an upstream URL any other way, so an encoded `/`,
//! `?`, `#` or `%` in a path or a model name cannot reach another Google endpoint.
//! [`UpstreamUrl`] can only be made by these functions, and [`super::Upstream`] only accepts it.

use url::Url;

use crate::error::GatewayError;

/// The longest model id accepted (Google's ids are under 64 characters).
pub const MODEL_ID_MAX_LEN: usize = 128;

/// Google's model id grammar, the one place it is written down: 1 to [`MODEL_ID_MAX_LEN`]
/// ASCII letters, digits, `-`, `.` and `_`, starting with a letter or digit (so never `.`
/// or `..`). The `models/` prefix is removed before the check.
pub fn valid_model_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.len() <= MODEL_ID_MAX_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// A client's model id (without `models/`), or a 400 saying what a model id may contain.
pub fn require_model_id(id: &str) -> Result<(), GatewayError> {
    if valid_model_id(id) {
        return Ok(());
    }
    if id.is_empty() {
        return Err(GatewayError::bad_param(
            "缺少模型名 / `model` must not be empty",
            "model",
        ));
    }
    // Echo a bounded, printable prefix only.
    let shown: String = id
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let more = if id.chars().count() > 64 { "…" } else { "" };
    Err(GatewayError::bad_param(
        format!(
            "无效的模型名 `{shown}{more}`：只能包含字母、数字、`-`、`.` 和 `_`，最长 {MODEL_ID_MAX_LEN} 个字符 / \
             Invalid model name `{shown}{more}`: a model id has only letters, digits, `-`, `.` and `_`, \
             at most {MODEL_ID_MAX_LEN} characters"
        ),
        "model",
    ))
}

/// The API versions Google serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1beta,
    V1alpha,
    V1,
}

impl Version {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "v1beta" => Some(Self::V1beta),
            "v1alpha" => Some(Self::V1alpha),
            "v1" => Some(Self::V1),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1beta => "v1beta",
            Self::V1alpha => "v1alpha",
            Self::V1 => "v1",
        }
    }
}

/// The model methods a client may call through the proxy (`POST models/{m}:{action}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    GenerateContent,
    StreamGenerateContent,
    CountTokens,
    EmbedContent,
    BatchEmbedContents,
}

impl Action {
    /// Exactly Google's method names (case-sensitive, as Google's are).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "generateContent" => Some(Self::GenerateContent),
            "streamGenerateContent" => Some(Self::StreamGenerateContent),
            "countTokens" => Some(Self::CountTokens),
            "embedContent" => Some(Self::EmbedContent),
            "batchEmbedContents" => Some(Self::BatchEmbedContents),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerateContent => "generateContent",
            Self::StreamGenerateContent => "streamGenerateContent",
            Self::CountTokens => "countTokens",
            Self::EmbedContent => "embedContent",
            Self::BatchEmbedContents => "batchEmbedContents",
        }
    }
}

/// A URL of Google's API, made only by the builders of this module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUrl(Url);

impl UpstreamUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// For the HTTP client.
    pub(super) fn to_url(&self) -> Url {
        self.0.clone()
    }

    /// The host, for messages (never carries a key: keys travel in a header).
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

impl std::fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// `{base}/{version}/models/{model}:{action}?{query}`; a 400 when `model` is not a model id.
pub fn model_action(
    base: &str,
    version: Version,
    model: &str,
    action: Action,
    query: &[(&str, &str)],
) -> Result<UpstreamUrl, GatewayError> {
    require_model_id(model)?;
    build(
        base,
        version,
        Some(&format!("{model}:{}", action.as_str())),
        query,
    )
}

/// `{base}/{version}/models/{model}`; a 400 when `model` is not a model id.
pub fn model_get(base: &str, version: Version, model: &str) -> Result<UpstreamUrl, GatewayError> {
    require_model_id(model)?;
    build(base, version, Some(model), &[])
}

/// `{base}/{version}/models?{query}`.
pub fn model_list(
    base: &str,
    version: Version,
    query: &[(&str, &str)],
) -> Result<UpstreamUrl, GatewayError> {
    build(base, version, None, query)
}

/// `v1beta` `generateContent` of a model (OpenAI chat).
pub fn generate(base: &str, model: &str) -> Result<UpstreamUrl, GatewayError> {
    model_action(base, Version::V1beta, model, Action::GenerateContent, &[])
}

/// `v1beta` `streamGenerateContent?alt=sse` of a model (OpenAI chat streams).
pub fn stream_sse(base: &str, model: &str) -> Result<UpstreamUrl, GatewayError> {
    model_action(
        base,
        Version::V1beta,
        model,
        Action::StreamGenerateContent,
        &[("alt", "sse")],
    )
}

/// `v1beta` `batchEmbedContents` of a model (OpenAI embeddings).
pub fn batch_embed(base: &str, model: &str) -> Result<UpstreamUrl, GatewayError> {
    model_action(
        base,
        Version::V1beta,
        model,
        Action::BatchEmbedContents,
        &[],
    )
}

fn build(
    base: &str,
    version: Version,
    last: Option<&str>,
    query: &[(&str, &str)],
) -> Result<UpstreamUrl, GatewayError> {
    let bad_base =
        || GatewayError::internal(anyhow::anyhow!("GEMINI_BASE_URL is not a usable base URL"));
    let mut url = Url::parse(base).map_err(|_| bad_base())?;
    url.set_fragment(None);
    {
        let mut path = url.path_segments_mut().map_err(|()| bad_base())?;
        path.pop_if_empty().push(version.as_str()).push("models");
        if let Some(segment) = last {
            path.push(segment);
        }
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(UpstreamUrl(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://generativelanguage.googleapis.com";

    #[test]
    fn model_ids_follow_googles_grammar() {
        for ok in [
            "gemini-2.5-flash",
            "gemini-2.5-flash-preview-05-20",
            "text-embedding-004",
            "gemma-3-27b-it",
            "imagen_3",
            "a",
            &"a".repeat(MODEL_ID_MAX_LEN),
        ] {
            assert!(valid_model_id(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "-x",
            "_x",
            "models/gemini-2.5-flash",
            "x:generateContent",
            "x/../files",
            "x?key=y",
            "x#y",
            "x%2F",
            "x y",
            "x\n",
            "gemini-2.5-flash\u{0}",
            "gémini",
            &"a".repeat(MODEL_ID_MAX_LEN + 1),
        ] {
            assert!(!valid_model_id(bad), "{bad:?}");
            assert!(require_model_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_rejected_model_name_is_echoed_bounded() {
        let long = format!("{}/x", "a".repeat(1_000_000));
        let Err(e) = require_model_id(&long) else {
            panic!("accepted")
        };
        assert!(e.to_string().len() < 400, "{e}");
        assert_eq!(e.status(), 400);
        let Err(e) = require_model_id("") else {
            panic!("accepted")
        };
        assert!(e.to_string().contains("must not be empty"));
    }

    #[test]
    fn urls_are_built_from_segments() {
        let u = model_action(
            BASE,
            Version::V1beta,
            "gemini-2.5-flash",
            Action::GenerateContent,
            &[],
        )
        .map(|u| u.to_string());
        assert_eq!(
            u.ok().as_deref(),
            Some(
                "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
            )
        );
        let u = stream_sse("http://127.0.0.1:9/", "m").map(|u| u.to_string());
        assert_eq!(
            u.ok().as_deref(),
            Some("http://127.0.0.1:9/v1beta/models/m:streamGenerateContent?alt=sse")
        );
        // A relay base with a path keeps it.
        let u = batch_embed("https://relay.example/proxy/gemini", "text-embedding-004")
            .map(|u| u.to_string());
        assert_eq!(
            u.ok().as_deref(),
            Some(
                "https://relay.example/proxy/gemini/v1beta/models/text-embedding-004:batchEmbedContents"
            )
        );
        let u = model_get(BASE, Version::V1, "gemini-2.5-pro").map(|u| u.to_string());
        assert_eq!(
            u.ok().as_deref(),
            Some("https://generativelanguage.googleapis.com/v1/models/gemini-2.5-pro")
        );
    }

    #[test]
    fn query_values_are_encoded() {
        let u = model_list(
            BASE,
            Version::V1beta,
            &[("pageSize", "10"), ("pageToken", "Ci0=/x&key=y#z")],
        )
        .map(|u| u.to_string());
        assert_eq!(
            u.ok().as_deref(),
            Some(
                "https://generativelanguage.googleapis.com/v1beta/models?pageSize=10&pageToken=Ci0%3D%2Fx%26key%3Dy%23z"
            )
        );
    }

    #[test]
    fn no_model_name_escapes_its_segment() {
        for bad in [
            "../../files",
            "x:generateContent?key=y",
            "x#",
            "%2E%2E",
            "models/x",
        ] {
            assert!(
                model_action(BASE, Version::V1beta, bad, Action::GenerateContent, &[]).is_err(),
                "{bad}"
            );
            assert!(model_get(BASE, Version::V1beta, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_known_actions_and_versions_parse() {
        for a in [
            Action::GenerateContent,
            Action::StreamGenerateContent,
            Action::CountTokens,
            Action::EmbedContent,
            Action::BatchEmbedContents,
        ] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        for bad in [
            "generatecontent",
            "generateContent/../../files",
            "generateContent?key=x",
            "generateContent#",
            "",
            "delete",
        ] {
            assert_eq!(Action::parse(bad), None, "{bad}");
        }
        assert_eq!(Version::parse("v1alpha"), Some(Version::V1alpha));
        assert_eq!(Version::parse("v2"), None);
    }
}

// ---------------------------------------------------------------------------------------
// Vertex AI. Same rules: the base URL, fixed words, then the project, location and model
// pushed as path segments (project and location come from the configuration and are
// checked too), query parameters through the serialiser.

/// The API version of Vertex generation calls.
const VERTEX_VERSION: &str = "v1";
/// The publisher-models list exists in `v1beta1` only.
const VERTEX_LIST_VERSION: &str = "v1beta1";

pub use crate::config::vertex::{
    VERTEX_GLOBAL_BASE, valid_project_id, valid_vertex_location, vertex_default_base,
};

/// Whose Vertex surface a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VertexTarget<'a> {
    /// A service account (`Authorization: Bearer`):
    /// `v1/projects/{project}/locations/{location}/publishers/google/models/…`. `project` is
    /// `VERTEX_PROJECT_ID` when set, else the account's `project_id`.
    Project { project: &'a str, location: &'a str },
    /// An express key (`x-goog-api-key`): `v1/publishers/google/models/…`.
    Express,
}

/// `{base}/v1/[projects/{p}/locations/{l}/]publishers/google/models/{model}:{action}?{query}`;
/// a 400 when `model` is not a model id, an internal error for a bad base, project or
/// location (configuration, checked at start-up).
pub fn vertex_model_action(
    base: &str,
    target: VertexTarget<'_>,
    model: &str,
    action: Action,
    query: &[(&str, &str)],
) -> Result<UpstreamUrl, GatewayError> {
    require_model_id(model)?;
    let mut segments: Vec<&str> = vec![VERTEX_VERSION];
    if let VertexTarget::Project { project, location } = target {
        if !valid_project_id(project) {
            return Err(GatewayError::internal(anyhow::anyhow!(
                "the Vertex project id is not a project id"
            )));
        }
        if !valid_vertex_location(location) {
            return Err(GatewayError::internal(anyhow::anyhow!(
                "VERTEX_LOCATION is not a location"
            )));
        }
        segments.extend(["projects", project, "locations", location]);
    }
    let last = format!("{model}:{}", action.as_str());
    segments.extend(["publishers", "google", "models", &last]);
    build_vertex(base, &segments, query)
}

/// `:generateContent` on Vertex.
pub fn vertex_generate(
    base: &str,
    target: VertexTarget<'_>,
    model: &str,
) -> Result<UpstreamUrl, GatewayError> {
    vertex_model_action(base, target, model, Action::GenerateContent, &[])
}

/// `:streamGenerateContent?alt=sse` on Vertex.
pub fn vertex_stream_sse(
    base: &str,
    target: VertexTarget<'_>,
    model: &str,
) -> Result<UpstreamUrl, GatewayError> {
    vertex_model_action(
        base,
        target,
        model,
        Action::StreamGenerateContent,
        &[("alt", "sse")],
    )
}

/// `:countTokens` on Vertex.
pub fn vertex_count_tokens(
    base: &str,
    target: VertexTarget<'_>,
    model: &str,
) -> Result<UpstreamUrl, GatewayError> {
    vertex_model_action(base, target, model, Action::CountTokens, &[])
}

/// The publisher-models list (`/v1/models` in Vertex mode):
/// `{base}/v1beta1/publishers/google/models?{query}` (e.g. `pageSize`, `pageToken`), with a
/// service account's Bearer token.
pub fn vertex_publisher_models(
    base: &str,
    query: &[(&str, &str)],
) -> Result<UpstreamUrl, GatewayError> {
    build_vertex(
        base,
        &[VERTEX_LIST_VERSION, "publishers", "google", "models"],
        query,
    )
}

fn build_vertex(
    base: &str,
    segments: &[&str],
    query: &[(&str, &str)],
) -> Result<UpstreamUrl, GatewayError> {
    let bad_base =
        || GatewayError::internal(anyhow::anyhow!("VERTEX_BASE_URL is not a usable base URL"));
    let mut url = Url::parse(base).map_err(|_| bad_base())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad_base());
    }
    url.set_fragment(None);
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| bad_base())?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(UpstreamUrl(url))
}

#[cfg(test)]
mod vertex_tests {
    use super::*;

    fn s(u: Result<UpstreamUrl, GatewayError>) -> Option<String> {
        u.ok().map(|u| u.to_string())
    }

    const SA: VertexTarget<'static> = VertexTarget::Project {
        project: "my-proj-123",
        location: "us-central1",
    };

    #[test]
    fn service_account_and_express_paths() {
        let base = vertex_default_base("us-central1").unwrap_or_default();
        assert_eq!(base, "https://us-central1-aiplatform.googleapis.com");
        assert_eq!(
            s(vertex_generate(&base, SA, "gemini-2.5-flash")).as_deref(),
            Some(
                "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj-123/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
            )
        );
        let global = vertex_default_base("global").unwrap_or_default();
        assert_eq!(global, VERTEX_GLOBAL_BASE);
        let g = VertexTarget::Project {
            project: "p-1",
            location: "global",
        };
        assert_eq!(
            s(vertex_stream_sse(&global, g, "gemini-2.5-pro")).as_deref(),
            Some(
                "https://aiplatform.googleapis.com/v1/projects/p-1/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
            )
        );
        assert_eq!(
            s(vertex_count_tokens(
                &global,
                VertexTarget::Express,
                "gemini-2.5-flash"
            ))
            .as_deref(),
            Some(
                "https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-2.5-flash:countTokens"
            )
        );
        // A test base with a path and a trailing slash keeps its path; its query is dropped.
        assert_eq!(
            s(vertex_generate(
                "http://127.0.0.1:9/mock/?x=1",
                VertexTarget::Express,
                "m"
            ))
            .as_deref(),
            Some("http://127.0.0.1:9/mock/v1/publishers/google/models/m:generateContent")
        );
        let legacy = VertexTarget::Project {
            project: "example.com:proj",
            location: "europe-west4",
        };
        assert_eq!(
            s(vertex_generate("http://h", legacy, "m")).as_deref(),
            Some(
                "http://h/v1/projects/example.com:proj/locations/europe-west4/publishers/google/models/m:generateContent"
            )
        );
    }

    #[test]
    fn the_publisher_model_list() {
        assert_eq!(
            s(vertex_publisher_models(
                VERTEX_GLOBAL_BASE,
                &[("pageSize", "100"), ("pageToken", "a/b&c")]
            ))
            .as_deref(),
            Some(
                "https://aiplatform.googleapis.com/v1beta1/publishers/google/models?pageSize=100&pageToken=a%2Fb%26c"
            )
        );
    }

    #[test]
    fn nothing_escapes_its_segment() {
        for bad in ["../x", "m:generateContent?key=y", "m/..", "%2E%2E", ""] {
            assert!(
                vertex_generate(VERTEX_GLOBAL_BASE, SA, bad).is_err(),
                "{bad}"
            );
        }
        for project in ["", "../p", "p/q", "p?x", "p#", "p q", "-p"] {
            let t = VertexTarget::Project {
                project,
                location: "global",
            };
            assert!(
                vertex_generate(VERTEX_GLOBAL_BASE, t, "m").is_err(),
                "{project}"
            );
        }
        for location in ["", "US", "us/central1", "us-central1.evil.com", "../x"] {
            let t = VertexTarget::Project {
                project: "p",
                location,
            };
            assert!(
                vertex_generate(VERTEX_GLOBAL_BASE, t, "m").is_err(),
                "{location}"
            );
            assert!(vertex_default_base(location).is_none(), "{location}");
        }
        for base in ["", "not a url", "mailto:x@y", "file:///etc"] {
            assert!(vertex_generate(base, SA, "m").is_err(), "{base}");
        }
    }
}

/// An express-surface URL (`{base}/v1/publishers/google/models/{model}:{action}?…`, as
/// [`vertex_model_action`] builds it with [`VertexTarget::Express`]) moved into a service
/// account's project and location: the URL a request gets once the credential is known.
pub fn vertex_in_project(
    url: &UpstreamUrl,
    project: &str,
    location: &str,
) -> Result<UpstreamUrl, GatewayError> {
    if !valid_project_id(project) {
        return Err(GatewayError::internal(anyhow::anyhow!(
            "the Vertex project id is not a project id"
        )));
    }
    if !valid_vertex_location(location) {
        return Err(GatewayError::internal(anyhow::anyhow!(
            "VERTEX_LOCATION is not a location"
        )));
    }
    let marker = format!("/{VERTEX_VERSION}/publishers/");
    let path = url.0.path();
    let Some(at) = path.rfind(&marker) else {
        return Err(GatewayError::internal(anyhow::anyhow!(
            "not a Vertex express URL"
        )));
    };
    let moved = format!(
        "{}/{VERTEX_VERSION}/projects/{project}/locations/{location}{}",
        &path[..at],
        &path[at + marker.len() - "/publishers/".len()..]
    );
    let mut out = url.0.clone();
    out.set_path(&moved);
    Ok(UpstreamUrl(out))
}

#[cfg(test)]
mod vertex_project_tests {
    use super::*;

    #[test]
    fn an_express_url_moves_into_the_project_and_keeps_its_query() {
        let express = vertex_model_action(
            "http://127.0.0.1:9/base",
            VertexTarget::Express,
            "gemini-2.5-flash",
            Action::StreamGenerateContent,
            &[("alt", "sse")],
        )
        .unwrap_or_else(|_| unreachable!());
        let moved =
            vertex_in_project(&express, "proj-a", "us-central1").unwrap_or_else(|_| unreachable!());
        let direct = vertex_model_action(
            "http://127.0.0.1:9/base",
            VertexTarget::Project {
                project: "proj-a",
                location: "us-central1",
            },
            "gemini-2.5-flash",
            Action::StreamGenerateContent,
            &[("alt", "sse")],
        )
        .unwrap_or_else(|_| unreachable!());
        assert_eq!(moved, direct);
        assert!(vertex_in_project(&express, "bad/project", "global").is_err());
    }
}
