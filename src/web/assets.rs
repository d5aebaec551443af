//! The dashboard's static files, compiled into the binary: our stylesheet and script, and
//! htmx and uPlot vendored under `assets/vendor/` with their licences (pinned versions, no
//! CDN, no Node at build time). Served with a strong ETag (a hash of the bytes) and a
//! year-long `Cache-Control`; pages link them with `?v=<hash>`, so a new binary's files are
//! fetched again.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        mime: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "vendor/htmx.min.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/htmx-2.0.11/htmx.min.js"),
    },
    Asset {
        name: "vendor/uPlot.iife.min.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uplot-1.6.32/uPlot.iife.min.js"),
    },
    Asset {
        name: "vendor/uPlot.min.css",
        mime: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uplot-1.6.32/uPlot.min.css"),
    },
    Asset {
        name: "vendor/htmx.LICENSE.txt",
        mime: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/htmx-2.0.11/LICENSE"),
    },
    Asset {
        name: "vendor/uPlot.LICENSE.txt",
        mime: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uplot-1.6.32/LICENSE"),
    },
];

fn find(name: &str) -> Option<(usize, &'static Asset)> {
    ASSETS.iter().enumerate().find(|(_, a)| a.name == name)
}

/// The ETag of every asset, in `ASSETS` order (a hash of its bytes).
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("{:016x}", xxhash_rust::xxh64::xxh64(a.bytes, 0)))
            .collect()
    })
}

/// The URL of an asset, with its hash for cache busting.
pub fn url(name: &str) -> String {
    match find(name) {
        Some((i, _)) => format!("/assets/{name}?v={}", &etags()[i][..10]),
        None => format!("/assets/{name}"),
    }
}

/// The size in bytes of an asset (for the first-page budget).
pub fn size(name: &str) -> usize {
    find(name).map_or(0, |(_, a)| a.bytes.len())
}

pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((i, asset)) = find(&file) else {
        return (StatusCode::NOT_FOUND, "404 Not Found\n").into_response();
    };
    let etag = format!("\"{}\"", etags()[i]);
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    let tag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, tag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.mime)),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, cache),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}
