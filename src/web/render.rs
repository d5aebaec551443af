//! Rendering a page: the minijinja templates compiled into the binary (autoescaped), with
//! what every page gets — the labels of the viewer's language (`T`), the CSRF token, asset
//! URLs and the version.

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde_json::{Value, json};

use super::assets;
use super::auth::Viewer;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("status.html", include_str!("templates/status.html")),
    ("login.html", include_str!("templates/login.html")),
    ("login_form.html", include_str!("templates/login_form.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("keys.html", include_str!("templates/keys.html")),
    ("settings.html", include_str!("templates/settings.html")),
    ("logs.html", include_str!("templates/logs.html")),
    ("models.html", include_str!("templates/models.html")),
    ("export.html", include_str!("templates/export.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_formatter(formatter);
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "dashboard template does not compile");
            }
        }
        env
    })
}

/// HTML escaping of `& < > " '` only (minijinja's default also escapes `/`, which makes every
/// URL in the page unreadable); safe strings, numbers and JSON contexts as minijinja does.
fn formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    let Some(text) = value
        .as_str()
        .filter(|_| !value.is_safe() && *state.auto_escape() == minijinja::AutoEscape::Html)
    else {
        return minijinja::escape_formatter(out, state, value);
    };
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    std::fmt::Write::write_str(out, &escaped).map_err(minijinja::Error::from)
}

/// Where the status card is: `/` or `/{DASHBOARD_URL}`.
pub fn home(snap: &crate::config::Settings) -> String {
    match &snap.dashboard_url {
        Some(p) => super::usable_index(&format!("/{p}")).to_owned(),
        None => "/".to_owned(),
    }
}

/// Renders `name` for `viewer` with the page's own values in `page`.
pub fn page(viewer: &Viewer, name: &str, page: Value) -> Response {
    page_with_status(viewer, name, page, StatusCode::OK)
}

pub fn page_with_status(viewer: &Viewer, name: &str, page: Value, status: StatusCode) -> Response {
    let lang = viewer.lang;
    let path = viewer.parts.uri.path();
    let ctx = json!({
        "T": lang.labels(),
        "lang": lang.code(),
        "lang_tag": lang.tag(),
        "other_lang": lang.other().code(),
        "path": path,
        "home": home(&viewer.snap),
        "csrf": viewer.csrf.as_deref(),
        "version": env!("CARGO_PKG_VERSION"),
        "css": assets::url("app.css"),
        "js": assets::url("app.js"),
        "htmx": assets::url("vendor/htmx.min.js"),
        "uplot_js": assets::url("vendor/uPlot.iife.min.js"),
        "uplot_css": assets::url("vendor/uPlot.min.css"),
        "p": page,
    });
    let html = env()
        .get_template(name)
        .and_then(|t| t.render(minijinja::value::Value::from(minijinja::value::Serde(&ctx))));
    match html {
        Ok(html) => {
            let mut r = (status, Html(html)).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::VARY,
                HeaderValue::from_static("Cookie, Accept-Language"),
            );
            // Framed only by itself and by Hugging Face's Space page (which shows the app in
            // an iframe); nothing else can overlay the dashboard's buttons.
            h.insert(
                "content-security-policy",
                HeaderValue::from_static(
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self' https://huggingface.co",
                ),
            );
            r
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "dashboard page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "500 template error\n").into_response()
        }
    }
}
