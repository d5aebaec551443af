//! The web dashboard over real HTTP (the server in-process, a mock Gemini): the public status
//! card, login and sessions, every page rendered for an empty and a busy gateway, a session
//! required on every page and fragment, the CSRF token on every form, no secret in any page,
//! the assets' caching and the first page's weight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use mock_gemini::{Reply, Rule};
use serde_json::json;

const WEB: &str = "web-dashboard-secret";
const PAGES: [&str; 5] = [
    "/ui/overview",
    "/ui/keys",
    "/ui/settings",
    "/ui/logs",
    "/ui/models",
];
/// Every form the dashboard posts to (the login excepted: it has no session yet).
const FORMS: [&str; 10] = [
    "/ui/stats/reset",
    "/logout",
    "/ui/keys/add",
    "/ui/keys/test",
    "/ui/keys/reset",
    "/ui/keys/remove",
    "/ui/keys/clear-invalid",
    "/ui/keys/export",
    "/ui/settings",
    "/ui/models",
];

/// An urlencoded form body, as a browser sends it.
trait Urlencoded {
    fn urlencoded<K: AsRef<str>, V: AsRef<str>>(self, fields: &[(K, V)]) -> Self;
}

impl Urlencoded for reqwest::RequestBuilder {
    fn urlencoded<K: AsRef<str>, V: AsRef<str>>(self, fields: &[(K, V)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn dashboard(extra: &[(&str, &str)]) -> Harness {
    let mut env = vec![("WEB_PASSWORD", WEB)];
    env.extend_from_slice(extra);
    start(&env).await
}

/// A logged-in browser session: its cookie header and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn login(h: &Harness) -> Session {
    let r = browser()
        .post(h.url("/login"))
        .urlencoded(&[("password", WEB)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/overview");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = get_page(h, &cookie, "/ui/keys").await.1;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    Session { cookie, csrf }
}

async fn get_page(h: &Harness, cookie: &str, path: &str) -> (u16, String) {
    let r = browser()
        .get(h.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post_form(h: &Harness, s: &Session, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let mut fields: Vec<(&str, &str)> = vec![("csrf", &s.csrf)];
    fields.extend_from_slice(form);
    let r = browser()
        .post(h.url(path))
        .header("cookie", &s.cookie)
        .urlencoded(&fields)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The JSON API's view (the same services), read with the web password.
async fn api(h: &Harness, path: &str) -> serde_json::Value {
    json(
        browser()
            .get(h.url(path))
            .bearer_auth(WEB)
            .send()
            .await
            .unwrap(),
    )
    .await
    .1
}

async fn key_count(h: &Harness) -> usize {
    api(h, "/api/keys").await["keys"].as_array().unwrap().len()
}

async fn setting(h: &Harness, key: &str) -> serde_json::Value {
    let all = api(h, "/api/config").await;
    all["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap()["value"]
        .clone()
}

/// No full key and no password in `html`.
fn assert_no_secret(what: &str, html: &str) {
    for secret in KEYS.iter().copied().chain([PASSWORD, WEB]) {
        assert!(!html.contains(secret), "{what} shows a secret: {secret}");
    }
}

fn text_of(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[start..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find('<').unwrap()].trim().to_owned()
}

#[tokio::test]
async fn the_status_card_is_public_and_shows_no_secret() {
    let h = dashboard(&[]).await;
    let r = browser().get(h.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'self' https://huggingface.co"),
        "{csp}"
    );
    assert!(csp.contains("default-src 'self'"), "no inline script");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let port = h.server.url().rsplit(':').next().unwrap().to_owned();
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("v{}", env!("CARGO_PKG_VERSION"))));
    assert_eq!(text_of(&html, "calls-today"), "0");
    assert!(
        html.contains(&format!("value=\"http://127.0.0.1:{port}/v1\"")),
        "the base URL from the Host header"
    );
    assert!(html.contains("id=\"key-counts\""));
    assert!(html.contains("action=\"/login\""), "the login form");
    assert!(html.contains("/assets/app.css?v="), "styles are a file");
    assert!(!html.contains("/ui/keys"), "no links into the dashboard");
    assert_no_secret("/", &html);
    let head = browser().head(h.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200, "uptime monitors may probe with HEAD");
}

#[tokio::test]
async fn the_base_url_follows_forwarded_headers_only_from_trusted_proxies() {
    let trusted = dashboard(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let plain = dashboard(&[]).await;
    let get = |h: &Harness| {
        browser()
            .get(h.url("/"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "hajimi.example.org")
            .send()
    };
    let html = get(&trusted).await.unwrap().text().await.unwrap();
    assert!(
        html.contains("value=\"https://hajimi.example.org/v1\""),
        "behind a trusted proxy"
    );
    let html = get(&plain).await.unwrap().text().await.unwrap();
    assert!(
        !html.contains("hajimi.example.org") && html.contains("value=\"http://127.0.0.1:"),
        "forwarded headers of an untrusted peer are ignored"
    );
}

#[tokio::test]
async fn every_page_and_fragment_needs_a_session() {
    let h = dashboard(&[]).await;
    for path in PAGES
        .iter()
        .chain(&["/ui/logs/stream", "/ui/keys?state=invalid"])
    {
        let r = browser().get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login", "{path}");
        let r = browser()
            .get(h.url(path))
            .header("hx-request", "true")
            .header("cookie", "hajimi_session=forged")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "htmx fragment {path}");
        assert_eq!(r.headers()["hx-redirect"], "/login");
    }
    for path in FORMS {
        let r = browser()
            .post(h.url(path))
            .urlencoded(&[("csrf", "x"), ("keys", KEYS[0])])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
    }
    let (s, html) = get_page(&h, "", "/login").await;
    assert_eq!(s, 200);
    assert!(html.contains("type=\"password\""));
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_logout_ends_the_session() {
    let h = dashboard(&[]).await;
    let r = browser()
        .post(h.url("/login"))
        .urlencoded(&[("password", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"login-error\""));
    let s = login(&h).await;
    assert_eq!(get_page(&h, &s.cookie, "/ui/overview").await.0, 200);
    assert_eq!(get_page(&h, &s.cookie, "/login").await.0, 303, "already in");
    assert_eq!(post_form(&h, &s, "/logout", &[]).await.0, 303);
    assert_eq!(get_page(&h, &s.cookie, "/ui/overview").await.0, 303);
}

#[tokio::test]
async fn every_form_needs_the_sessions_csrf_token() {
    let h = dashboard(&[("FAKE_STREAMING", "true")]).await;
    let s = login(&h).await;
    let before = key_count(&h).await;
    for path in FORMS {
        for csrf in [None, Some("0".repeat(64))] {
            let mut form = vec![
                ("keys", "AIzaSyTESTKEY00000000000000000000000009".to_owned()),
                ("key", "fake_streaming".to_owned()),
                ("value", "false".to_owned()),
                ("all", "1".to_owned()),
                ("confirm", "yes".to_owned()),
            ];
            if let Some(c) = &csrf {
                form.push(("csrf", c.clone()));
            }
            let r = browser()
                .post(h.url(path))
                .header("cookie", &s.cookie)
                .urlencoded(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{path} with csrf {csrf:?}");
            let body = r.text().await.unwrap();
            assert_no_secret(path, &body);
        }
    }
    assert_eq!(key_count(&h).await, before, "nothing was added");
    assert_eq!(
        setting(&h, "fake_streaming").await,
        json!(true),
        "unchanged"
    );
    // The header htmx sends works as well as the field.
    let r = browser()
        .post(h.url("/ui/settings"))
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .urlencoded(&[("key", "max_retry_num"), ("value", "7")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(setting(&h, "max_retry_num").await, json!(7));
}

#[tokio::test]
async fn every_page_renders_for_an_empty_gateway() {
    let h = dashboard(&[("GEMINI_API_KEYS", "")]).await;
    let s = login(&h).await;
    for path in PAGES {
        let (status, html) = get_page(&h, &s.cookie, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains("</html>"), "{path} complete");
        assert_no_secret(path, &html);
    }
    let html = get_page(&h, &s.cookie, "/ui/keys").await.1;
    assert!(html.contains("id=\"no-keys\""));
    let html = get_page(&h, &s.cookie, "/ui/logs").await.1;
    assert!(html.contains("id=\"no-logs\""));
    let html = get_page(&h, &s.cookie, "/ui/overview").await.1;
    assert_eq!(text_of(&html, "calls-day"), "0");
    assert!(html.contains("16:00"), "the daily reset explained");
}

#[tokio::test]
async fn every_page_renders_for_a_busy_gateway_without_secrets() {
    let h = dashboard(&[
        ("SKIP_CHECK_API_KEY", "true"),
        ("API_KEY_DAILY_LIMIT", "50"),
    ])
    .await;
    h.mock.add_rule(
        Rule::new(Reply::preset("api_key_invalid"))
            .key(KEYS[0])
            .action("generateContent"),
    );
    for _ in 0..6 {
        let r = h.chat(&hello(FLASH, false)).await;
        assert_eq!(r.status(), 200);
    }
    let s = login(&h).await;
    let html = eventually("the overview to count the calls", || async {
        let html = get_page(&h, &s.cookie, "/ui/overview").await.1;
        if text_of(&html, "calls-day") == "0" {
            Err(text_of(&html, "calls-day"))
        } else {
            Ok(html)
        }
    })
    .await;
    assert!(text_of(&html, "calls-day").parse::<u64>().unwrap() >= 6);
    assert!(html.contains("id=\"per-model\"") && html.contains(FLASH));
    assert!(html.contains("id=\"per-key\""));
    assert!(html.contains("id=\"chart-data\""));
    for path in PAGES {
        let (status, html) = get_page(&h, &s.cookie, path).await;
        assert_eq!(status, 200, "{path}");
        assert_no_secret(path, &html);
    }
    let keys = get_page(&h, &s.cookie, "/ui/keys").await.1;
    assert!(keys.contains("data-status=\"invalid\""), "the invalid key");
    assert!(keys.contains("API_KEY_INVALID"), "with its reason");
    assert!(
        keys.contains(" / 50"),
        "today's calls against the daily limit"
    );
    assert!(
        keys.contains("<summary>"),
        "today's calls per model of a key"
    );
    let only_invalid = get_page(&h, &s.cookie, "/ui/keys?state=invalid").await.1;
    assert_eq!(only_invalid.matches("data-status=").count(), 1);
    let logs = get_page(&h, &s.cookie, "/ui/logs").await.1;
    assert!(logs.contains("/v1/chat/completions"));
    let errors = get_page(&h, &s.cookie, "/ui/logs?level=ERROR").await.1;
    assert!(
        errors.contains("id=\"no-logs\""),
        "every call succeeded in the end"
    );
    let info = get_page(&h, &s.cookie, "/ui/logs?level=INFO&model=gemini-2.5-flash")
        .await
        .1;
    assert!(info.matches("<tr class=\"lv-info\">").count() >= 6);
    assert_no_secret("logs", &logs);
    let status = get_page(&h, "", "/").await.1;
    assert!(text_of(&status, "calls-today").parse::<u64>().unwrap() >= 6);
    assert_no_secret("/", &status);
    let (_, html) = post_form(&h, &s, "/ui/stats/reset", &[]).await;
    assert!(html.contains("id=\"stats-reset\""));
    assert_eq!(text_of(&html, "calls-day"), "0", "statistics reset");
}

#[tokio::test]
async fn pasted_keys_are_reported_as_new_duplicate_or_not_key_shaped() {
    let h = dashboard(&[("SKIP_CHECK_API_KEY", "true")]).await;
    let s = login(&h).await;
    let paste = format!(
        "{}\n AIzaSyNEWKEY000000000000000000000000001;AIzaSyNEWKEY000000000000000000000000002 AIzaSyTooShort",
        KEYS[1]
    );
    let (status, html) = post_form(&h, &s, "/ui/keys/add", &[("keys", &paste)]).await;
    assert_eq!(status, 200);
    assert_eq!(text_of(&html, "added-new"), "2");
    assert_eq!(text_of(&html, "added-dup"), "1");
    assert_eq!(text_of(&html, "added-bad"), "1");
    assert!(
        !html.contains("AIzaSyNEWKEY000000000000000000000000001"),
        "masked"
    );
    assert_eq!(key_count(&h).await, 5);
}

#[tokio::test]
async fn key_actions_test_reset_remove_and_export_with_confirmation() {
    let h = dashboard(&[("SKIP_CHECK_API_KEY", "true")]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("api_key_invalid"))
            .key(KEYS[2])
            .action("list"),
    );
    let s = login(&h).await;
    let (status, html) = post_form(&h, &s, "/ui/keys/test", &[("all", "1")]).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"progress\""));
    let html = eventually("the key test to finish", || async {
        let html = get_page(&h, &s.cookie, "/ui/keys").await.1;
        if html.contains("data-status=\"invalid\"") && !html.contains("hx-trigger=\"every 1s\"") {
            Ok(html)
        } else {
            Err("running".to_owned())
        }
    })
    .await;
    assert_eq!(text_of(&html, "progress-count"), "3/3");
    let listed = api(&h, "/api/keys").await;
    let id = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "invalid")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, html) = post_form(&h, &s, "/ui/keys/test", &[("ids", &id)]).await;
    assert!(
        text_of(&html, "progress-count").ends_with("/1"),
        "only the selected key"
    );
    eventually("the selected key's test to finish", || async {
        let html = get_page(&h, &s.cookie, "/ui/keys").await.1;
        if html.contains("hx-trigger=\"every 1s\"") {
            Err("running".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    let (_, html) = post_form(&h, &s, "/ui/keys/reset", &[("ids", &id)]).await;
    assert!(!html.contains("data-status=\"invalid\""), "reset");
    let (status, html) = post_form(&h, &s, "/ui/keys/export", &[]).await;
    assert_eq!(status, 200);
    assert_no_secret("export without confirmation", &html);
    let r = browser()
        .post(h.url("/ui/keys/export"))
        .header("cookie", &s.cookie)
        .urlencoded(&[("csrf", s.csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(
        KEYS.iter().all(|k| html.contains(k)),
        "the export shows the keys"
    );
    let (_, html) = post_form(&h, &s, "/ui/keys/remove", &[("ids", &id)]).await;
    assert_eq!(html.matches("data-status=").count(), 2);
    assert_eq!(key_count(&h).await, 2);
}

#[tokio::test]
async fn a_setting_saved_on_the_page_applies_and_a_bad_value_is_shown_inline() {
    const EXPRESS: &str = "AQ.express-secret-value-0123456789";
    let h = dashboard(&[
        ("FAKE_STREAMING", "false"),
        ("VERTEX_EXPRESS_API_KEY", EXPRESS),
    ])
    .await;
    let s = login(&h).await;
    let html = get_page(&h, &s.cookie, "/ui/settings").await.1;
    assert!(
        !html.contains(EXPRESS),
        "a secret setting shows only that it is set"
    );
    let (_, after) = post_form(
        &h,
        &s,
        "/ui/settings",
        &[("key", "vertex_express_api_key"), ("value", "")],
    )
    .await;
    assert!(!after.contains("class=\"ok applied\"") && !after.contains(EXPRESS));
    assert_eq!(
        setting(&h, "vertex_express_api_key").await,
        json!(true),
        "kept"
    );
    // Every live setting of the one settings table, in its group.
    let listing = api(&h, "/api/config").await;
    let all = listing["settings"].as_array().unwrap();
    assert!(all.len() > 20);
    for entry in all {
        let (key, group) = (
            entry["key"].as_str().unwrap(),
            entry["group"].as_str().unwrap(),
        );
        assert!(html.contains(&format!("id=\"s-{key}\"")), "{key}");
        assert!(html.contains(&format!("id=\"g-{group}\"")), "{group}");
    }
    // The settings only the environment sets are listed too, read-only, secrets hidden.
    for env in ["HOST", "PORT", "PASSWORD", "GEMINI_API_KEYS"] {
        assert!(html.contains(&format!("id=\"f-{env}\"")), "{env}");
    }
    let password_row = html.split("id=\"f-PASSWORD\"").nth(1).unwrap();
    let password_row = &password_row[..password_row.find("</div>").unwrap()];
    assert!(password_row.contains("(set)"), "{password_row}");
    assert_no_secret("settings", &html);
    for group in ["g-basic", "g-delivery", "g-cache", "g-search", "g-vertex"] {
        assert!(html.contains(&format!("id=\"{group}\"")), "{group}");
    }
    assert!(
        html.contains("FAKE_STREAMING")
            && html.contains("需重启生效") == html.contains("badge warn")
    );
    let (status, html) = post_form(
        &h,
        &s,
        "/ui/settings",
        &[("key", "fake_streaming"), ("value", "true")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("class=\"ok applied\""));
    assert_eq!(setting(&h, "fake_streaming").await, json!(true));
    let (_, html) = post_form(
        &h,
        &s,
        "/ui/settings",
        &[("key", "max_retry_num"), ("value", "-5")],
    )
    .await;
    assert!(html.contains("role=\"alert\""), "inline error");
    assert!(html.contains("aria-invalid=\"true\""));
    let (_, html) = post_form(
        &h,
        &s,
        "/ui/models",
        &[
            ("whitelist_models", ""),
            ("blocked_models", "gemini-1.0-pro\ngemini-x"),
            ("extra_models", ""),
        ],
    )
    .await;
    assert!(html.contains("class=\"ok applied\""), "{html}");
    assert_eq!(
        setting(&h, "blocked_models").await,
        json!(["gemini-1.0-pro", "gemini-x"])
    );
}

#[tokio::test]
async fn the_language_comes_from_accept_language_and_the_cookie() {
    let h = dashboard(&[]).await;
    let get = |lang: &'static str, cookie: &'static str| {
        browser()
            .get(h.url("/"))
            .header("accept-language", lang)
            .header("cookie", cookie)
            .send()
    };
    let html = get("en-US,en;q=0.9", "")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("lang=\"en\"") && html.contains("hajimi is running"));
    let html = get("zh-CN,zh;q=0.9,en;q=0.8", "")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("lang=\"zh-CN\"") && html.contains("正在运行"));
    let html = get("en", "hajimi_lang=zh")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("正在运行"), "the cookie wins");
    let r = browser()
        .get(h.url("/lang/en?next=/ui/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/keys");
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("hajimi_lang=en")
    );
    let r = browser()
        .get(h.url("/lang/en?next=//evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/", "no open redirect");
    for sneaky in [
        "/%09/evil.example",
        "/%5Cevil.example",
        "https://evil.example",
    ] {
        let r = browser()
            .get(h.url(&format!("/lang/zh?next={sneaky}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], "/", "{sneaky}");
    }
}

/// Assets: a strong ETag, a year of cache, 304 on revalidation. The first page (status card,
/// logged out) and the heaviest (the overview with htmx and uPlot) stay under 250 KB.
#[tokio::test]
async fn assets_are_cached_and_pages_stay_under_250_kb() {
    let h = dashboard(&[]).await;
    let s = login(&h).await;
    let mut totals = Vec::new();
    for (path, cookie) in [("/", ""), ("/ui/overview", s.cookie.as_str())] {
        let html = get_page(&h, cookie, path).await.1;
        let mut total = html.len();
        let assets: Vec<String> = html
            .split("=\"/assets/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_owned())
            .collect();
        assert!(!assets.is_empty(), "{path} links its assets");
        for asset in assets {
            let r = browser()
                .get(h.url(&format!("/assets/{asset}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{asset}");
            assert_eq!(
                r.headers()["cache-control"],
                "public, max-age=31536000, immutable"
            );
            let etag = r.headers()["etag"].to_str().unwrap().to_owned();
            total += r.bytes().await.unwrap().len();
            let again = browser()
                .get(h.url(&format!("/assets/{asset}")))
                .header("if-none-match", &etag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{asset}");
        }
        assert!(total < 250 * 1024, "{path}: {total} bytes");
        totals.push((path, total));
    }
    eprintln!("first-page transfer (uncompressed): {totals:?}");
    let r = browser()
        .get(h.url("/assets/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn with_dashboard_url_the_status_card_moves_there() {
    let h = dashboard(&[("DASHBOARD_URL", "/panel/")]).await;
    let (status, html) = get_page(&h, "", "/panel").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"status-card\""));
    assert_eq!(get_page(&h, "", "/").await.0, 404, "not at / any more");
    let s = login(&h).await;
    let r = browser()
        .post(h.url("/logout"))
        .header("cookie", &s.cookie)
        .urlencoded(&[("csrf", s.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "/panel",
        "logging out goes back to the card"
    );
}

#[tokio::test]
async fn cooling_and_exhausted_keys_show_until_when() {
    let h = dashboard(&[("SKIP_CHECK_API_KEY", "true")]).await;
    h.mock.add_rule(
        Rule::new(Reply::preset("quota_429"))
            .key(KEYS[1])
            .action("generateContent"),
    );
    h.mock.add_rule(
        Rule::new(Reply::preset("quota_429_daily"))
            .key(KEYS[2])
            .action("generateContent"),
    );
    for _ in 0..6 {
        assert_eq!(h.chat(&hello(FLASH, false)).await.status(), 200);
    }
    let s = login(&h).await;
    let html = get_page(&h, &s.cookie, "/ui/keys").await.1;
    for (status, key) in [("cooling", KEYS[1]), ("exhausted", KEYS[2])] {
        let masked = format!("{}…{}", &key[..4], &key[key.len() - 4..]);
        let row = html
            .split("<tr data-status=")
            .find(|r| r.contains(&masked))
            .unwrap_or_else(|| panic!("{masked}"));
        assert!(row.starts_with(&format!("\"{status}\"")), "{masked}: {row}");
        assert!(row.contains("<time data-unix="), "{masked} says until when");
    }
    let status = get_page(&h, "", "/").await.1;
    assert!(status.contains("<li class=\"s-cooling\"><b>1</b>"));
    assert!(status.contains("<li class=\"s-exhausted\"><b>1</b>"));
}

#[tokio::test]
async fn a_dashboard_url_that_names_a_page_leaves_the_card_at_the_root() {
    let h = dashboard(&[("DASHBOARD_URL", "ui")]).await;
    let (status, html) = get_page(&h, "", "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"status-card\""));
    assert_eq!(
        get_page(&h, "", "/ui").await.0,
        303,
        "the pages keep their paths"
    );
}

#[tokio::test]
async fn many_keys_are_shown_fifty_to_a_page() {
    let many: Vec<String> = (0..120).map(|i| format!("AIzaSyPAGEKEY{i:026}")).collect();
    let h = dashboard(&[
        ("SKIP_CHECK_API_KEY", "true"),
        ("GEMINI_API_KEYS", &many.join(",")),
    ])
    .await;
    let s = login(&h).await;
    let first = get_page(&h, &s.cookie, "/ui/keys").await.1;
    assert_eq!(first.matches("data-status=").count(), 50);
    assert!(first.contains("1 / 3 (120)") && first.contains("rel=\"next\""));
    let last = get_page(&h, &s.cookie, "/ui/keys?page=3").await.1;
    assert_eq!(last.matches("data-status=").count(), 20);
    let beyond = get_page(&h, &s.cookie, "/ui/keys?page=99").await.1;
    assert_eq!(beyond.matches("data-status=").count(), 20, "the last page");
}

/// The overview's 24 h charts per model and per key come back from the store after a restart.
#[tokio::test]
async fn the_charts_per_model_and_key_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().display().to_string();
    let env = [
        ("ENABLE_STORAGE", "true"),
        ("STORAGE_DIR", storage.as_str()),
        ("SKIP_CHECK_API_KEY", "true"),
    ];
    let h = dashboard(&env).await;
    for _ in 0..5 {
        assert_eq!(h.chat(&hello(FLASH, false)).await.status(), 200);
    }
    let chart = |html: &str| -> serde_json::Value {
        let start = html.find("id=\"chart-data\">").unwrap() + "id=\"chart-data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        serde_json::from_str(&html[start..end]).unwrap()
    };
    let sum = |series: &serde_json::Value| -> u64 {
        series
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["values"].as_array().unwrap().iter())
            .map(|v| v.as_u64().unwrap())
            .sum()
    };
    let s = login(&h).await;
    let before = chart(&get_page(&h, &s.cookie, "/ui/overview").await.1);
    assert_eq!(sum(&before["models"]), 5);
    assert_eq!(sum(&before["keys"]), 5);
    let Harness { mock, server, .. } = h;
    server.shutdown().await.unwrap();

    let mut env = env.to_vec();
    env.push(("WEB_PASSWORD", WEB));
    let h = start_with_mock(mock, &env).await;
    let s = login(&h).await;
    let after = chart(&get_page(&h, &s.cookie, "/ui/overview").await.1);
    assert_eq!(
        after["models"], before["models"],
        "per model, from the store"
    );
    assert_eq!(sum(&after["keys"]), 5, "per key, from the store");
}

#[tokio::test]
async fn the_overview_counts_todays_requests_per_client_dialect() {
    let h = dashboard(&[]).await;
    let (status, _) = json(h.chat(&hello("gemini-2.5-flash", false)).await).await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        let r = h
            .http
            .post(h.url("/v1/messages"))
            .header("x-api-key", PASSWORD)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "gemini-2.5-flash", "max_tokens": 64,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let s = login(&h).await;
    let (status, html) = get_page(&h, &s.cookie, "/ui/overview").await;
    assert_eq!(status, 200);
    assert_eq!(text_of(&html, "dialect-anthropic"), "2", "{html}");
    assert_eq!(text_of(&html, "dialect-openai"), "1");
    assert!(
        !html.contains("id=\"dialect-responses\""),
        "only dialects used today"
    );
}

#[tokio::test]
async fn pages_and_assets_are_gzipped_for_browsers_that_accept_it_but_the_log_tail_is_not() {
    let h = dashboard(&[]).await;
    let s = login(&h).await;
    let html = get_page(&h, &s.cookie, "/ui/overview").await.1;
    let assets: Vec<String> = html
        .split("=\"/assets/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    let (mut plain, mut gzipped) = (html.len(), 0);
    let page = browser()
        .get(h.url("/ui/overview"))
        .header("cookie", &s.cookie)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-encoding"], "gzip");
    gzipped += page.bytes().await.unwrap().len();
    for asset in assets {
        let url = h.url(&format!("/assets/{asset}"));
        let r = browser().get(&url).send().await.unwrap();
        assert!(r.headers().get("content-encoding").is_none(), "{asset}");
        plain += r.bytes().await.unwrap().len();
        let z = browser()
            .get(&url)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(z.status(), 200, "{asset}");
        assert_eq!(z.headers()["content-encoding"], "gzip", "{asset}");
        gzipped += z.bytes().await.unwrap().len();
    }
    eprintln!("overview transfer: {plain} bytes plain, {gzipped} bytes gzipped");
    assert!(gzipped * 2 < plain, "{gzipped} vs {plain}");
    // The live log tail is an event stream: never compressed (it would be held back).
    let tail = browser()
        .get(h.url("/ui/logs/stream"))
        .header("cookie", &s.cookie)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 200);
    assert!(tail.headers().get("content-encoding").is_none());
    // The client API is never compressed by the dashboard's layer.
    let r = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(PASSWORD)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
}
