//! The pooled upstream HTTP client: rustls, HTTP/2 where the server offers it, keep-alive,
//! `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` with `NO_PROXY` honoured, loopback never proxied,
//! redirects never followed (they would carry `x-goog-api-key` to wherever they point).
//! The only place a `reqwest::Client` is built.

use std::time::Duration;

use reqwest::{NoProxy, Proxy};

use crate::config::{ProxyEnv, Settings};

/// Hosts that never go through a proxy, whatever `NO_PROXY` says.
const ALWAYS_DIRECT: &str = "localhost,127.0.0.0/8,::1";

pub fn build_client(settings: &Settings) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.upstream_connect_timeout)
        .read_timeout(settings.upstream_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_while_idle(true)
        .user_agent(concat!("hajimi/", env!("CARGO_PKG_VERSION")))
        // Google's API never redirects; a redirect is answered as a failed attempt.
        .redirect(reqwest::redirect::Policy::none())
        // The system resolver, unless the system has none (Android/Termux has no
        // /etc/resolv.conf, so musl's resolver fails): then hickory with public DNS.
        .hickory_dns(!system_resolver_present())
        .no_proxy();
    for proxy in proxies(&settings.proxies)? {
        builder = builder.proxy(proxy);
    }
    if !system_roots_present() {
        // A `FROM scratch` image or Termux: no system trust store, use the bundled Mozilla roots.
        tracing::info!("no system CA bundle found; using the bundled root certificates");
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok());
        builder = builder.tls_certs_only(roots);
    }
    Ok(builder.build()?)
}

/// Whether the libc resolver has a configuration to work with.
fn system_resolver_present() -> bool {
    !cfg!(unix) || std::path::Path::new("/etc/resolv.conf").exists()
}

/// Whether the platform has a CA bundle the system verifier can load.
fn system_roots_present() -> bool {
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return true;
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/tls/cacert.pem",
        "/etc/ssl/cert.pem",
        "/usr/local/share/certs/ca-root-nss.crt",
        "/etc/ssl/certs",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

fn proxies(env: &ProxyEnv) -> anyhow::Result<Vec<Proxy>> {
    let direct = match env.no_proxy.as_deref() {
        Some(list) if !list.trim().is_empty() => format!("{list},{ALWAYS_DIRECT}"),
        _ => ALWAYS_DIRECT.to_owned(),
    };
    let mut out = Vec::new();
    if let Some(url) = &env.https {
        out.push(Proxy::https(url.as_str())?.no_proxy(NoProxy::from_string(&direct)));
    }
    if let Some(url) = &env.http {
        out.push(Proxy::http(url.as_str())?.no_proxy(NoProxy::from_string(&direct)));
    }
    if let Some(url) = &env.all {
        out.push(Proxy::all(url.as_str())?.no_proxy(NoProxy::from_string(&direct)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_are_built_from_env_values() {
        let env = ProxyEnv {
            https: Some("http://127.0.0.1:3128".into()),
            all: Some("socks5://127.0.0.1:1080".into()),
            ..ProxyEnv::default()
        };
        assert_eq!(proxies(&env).map(|p| p.len()).ok(), Some(2));
        let bad = ProxyEnv {
            https: Some("::not a url::".into()),
            ..ProxyEnv::default()
        };
        assert!(proxies(&bad).is_err());
    }
}
