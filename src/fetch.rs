//! Fetching `image_url` http(s) URLs for the model (decisions §5): at most 3 redirects, each
//! hop checked after DNS resolution against loopback, private, link-local, carrier-grade NAT,
//! multicast and cloud-metadata addresses (refused), 20 MiB and 10 s limits, no outbound
//! proxy (a proxy would resolve names where we cannot check them). The connection goes to
//! the very address that was checked: resolution happens in our resolver, so a DNS answer
//! cannot change between the check and the connect. All images of one request together may
//! fetch at most `MAX_FETCHED_BYTES`, counted as bytes arrive; each becomes one data URL
//! string, written once (no intermediate base64 copy).

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::write::EncoderStringWriter;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;

use crate::error::GatewayError;

pub const MAX_BYTES: usize = 20 * 1024 * 1024;
pub const TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_REDIRECTS: usize = 3;

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    allow_loopback: bool,
}

/// Resolves names and keeps only addresses we may connect to.
struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| address_allowed(a.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Blocked(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to refused addresses")]
struct Blocked(String);

/// Whether an address is on the public internet (or loopback, when allowed for tests).
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, allow_loopback),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_allowed(v4, allow_loopback);
            }
            if v6.is_loopback() {
                return allow_loopback;
            }
            let seg = v6.segments();
            let seg0 = seg[0];
            // `::a.b.c.d` (IPv4-compatible, ::/96) and 6to4 (2002::/16) embed an IPv4
            // address that a relay or the kernel may route to; neither is used by public
            // image hosts, so both are refused whole.
            if seg[..6].iter().all(|s| *s == 0) || seg0 == 0x2002 {
                return false;
            }
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254, AWS metadata)
                || (seg0 & 0xffc0) == 0xfe80 // link-local
                || seg0 == 0x2001 && seg[1] == 0x0db8 // documentation
                || seg0 == 0x0064 && seg[1] == 0xff9b) // NAT64 can reach v4 private space
        }
    }
}

fn v4_allowed(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_link_local() // 169.254/16, incl. the 169.254.169.254 metadata service
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 carrier-grade NAT (Alibaba metadata 100.100.100.200)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240)
}

fn refused(url: &str, why: &str) -> GatewayError {
    GatewayError::bad_param(
        format!("拒绝获取图片 {url}：{why} / Refused to fetch image_url {url}: {why}"),
        "messages",
    )
}

fn failed(url: &str, why: &str) -> GatewayError {
    GatewayError::bad_param(
        format!("无法获取图片 {url}：{why} / Could not fetch image_url {url}: {why}"),
        "messages",
    )
}

impl Fetcher {
    pub fn new(allow_loopback: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback }))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("hajimi/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_loopback,
        })
    }

    /// Downloads a URL into a `data:` URL, following at most [`MAX_REDIRECTS`] checked hops;
    /// the bytes count against the request's `budget`.
    pub async fn fetch(&self, url: &str, budget: &FetchBudget) -> Result<String, GatewayError> {
        match tokio::time::timeout(TIMEOUT, self.fetch_inner(url, budget)).await {
            Ok(result) => result,
            Err(_) => Err(failed(url, "timed out after 10 s")),
        }
    }

    async fn fetch_inner(
        &self,
        original: &str,
        budget: &FetchBudget,
    ) -> Result<String, GatewayError> {
        let mut url =
            reqwest::Url::parse(original).map_err(|_| failed(original, "not a valid URL"))?;
        for hop in 0..=MAX_REDIRECTS {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(refused(original, "only http and https URLs are fetched"));
            }
            // IP literals never reach the resolver: check them here.
            match url.host() {
                Some(url::Host::Ipv4(ip))
                    if !address_allowed(IpAddr::V4(ip), self.allow_loopback) =>
                {
                    return Err(refused(
                        original,
                        "the address is private, loopback or reserved",
                    ));
                }
                Some(url::Host::Ipv6(ip))
                    if !address_allowed(IpAddr::V6(ip), self.allow_loopback) =>
                {
                    return Err(refused(
                        original,
                        "the address is private, loopback or reserved",
                    ));
                }
                None => return Err(failed(original, "the URL has no host")),
                _ => {}
            }
            let response = match self.client.get(url.clone()).send().await {
                Ok(r) => r,
                Err(e) if is_blocked(&e) => {
                    return Err(refused(
                        original,
                        "the host resolves to a private, loopback or reserved address",
                    ));
                }
                Err(e) if e.is_timeout() => return Err(failed(original, "timed out")),
                Err(_) => return Err(failed(original, "connection failed")),
            };
            if response.status().is_redirection() {
                if hop == MAX_REDIRECTS {
                    return Err(failed(original, "more than 3 redirects"));
                }
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| failed(original, "a redirect without Location"))?;
                url = url
                    .join(location)
                    .map_err(|_| failed(original, "an invalid redirect"))?;
                continue;
            }
            if !response.status().is_success() {
                return Err(failed(
                    original,
                    &format!("HTTP {}", response.status().as_u16()),
                ));
            }
            return read_data_url(original, &url, response, budget).await;
        }
        Err(failed(original, "more than 3 redirects"))
    }
}

fn is_blocked(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<Blocked>() || s.to_string().contains("resolves only to refused addresses") {
            return true;
        }
        source = s.source();
    }
    false
}

/// Bytes fetched for one request's images so far, against `MAX_FETCHED_BYTES`.
pub struct FetchBudget {
    used: AtomicUsize,
    max: usize,
}

impl FetchBudget {
    pub fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Counts `n` more bytes; an error once the request's images exceed the budget.
    fn take(&self, n: usize) -> Result<(), GatewayError> {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.max {
            return Err(self.exceeded());
        }
        Ok(())
    }

    fn left(&self) -> usize {
        self.max.saturating_sub(self.used.load(Ordering::Relaxed))
    }

    fn exceeded(&self) -> GatewayError {
        GatewayError::bad_param(
            format!(
                "远程图片合计超过 {max} 字节上限（MAX_FETCHED_BYTES）/ The remote image_urls of this request exceed {max} bytes in all: the limit is set by MAX_FETCHED_BYTES",
                max = self.max
            ),
            "messages",
        )
    }
}

async fn read_data_url(
    original: &str,
    url: &reqwest::Url,
    response: reqwest::Response,
    budget: &FetchBudget,
) -> Result<String, GatewayError> {
    let declared = response.content_length();
    if declared.is_some_and(|n| n > MAX_BYTES as u64) {
        return Err(failed(original, "larger than 20 MiB"));
    }
    if declared.is_some_and(|n| n > budget.left() as u64) {
        return Err(budget.exceeded());
    }
    let declared_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty() && v != "application/octet-stream");
    let mime = declared_type
        .or_else(|| mime_from_path(url.path()).map(str::to_owned))
        .unwrap_or_default();
    if !(mime.starts_with("image/")
        || mime.starts_with("audio/")
        || mime.starts_with("video/")
        || mime == "application/pdf"
        || mime == "text/plain")
    {
        return Err(failed(
            original,
            &format!("unsupported content type {mime:?}"),
        ));
    }
    // The data URL is written as the bytes arrive: the download is never held twice (raw
    // and encoded), and with a declared length the string is allocated once, at its size.
    let encoded = declared
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| base64::encoded_len(n, true))
        .unwrap_or(0);
    let mut out = String::with_capacity(DATA_URL_OVERHEAD + mime.len() + encoded);
    out.push_str("data:");
    out.push_str(&mime);
    out.push_str(";base64,");
    let mut writer = EncoderStringWriter::from_consumer(out, &STANDARD);
    let mut body = response.bytes_stream();
    let mut received = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| failed(original, "the download broke"))?;
        budget.take(chunk.len())?;
        received += chunk.len();
        if received > MAX_BYTES {
            return Err(failed(original, "larger than 20 MiB"));
        }
        writer
            .write_all(&chunk)
            .map_err(|_| failed(original, "could not encode the download"))?;
    }
    Ok(writer.into_inner())
}

const DATA_URL_OVERHEAD: usize = "data:;base64,".len();

fn mime_from_path(path: &str) -> Option<&'static str> {
    let ext = path.rsplit('.').next()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        _ => return None,
    })
}

/// How many remote images one request may carry.
pub const MAX_REMOTE_IMAGES: usize = 16;

/// Where a translated request holds remote media to fetch: `fileData` parts whose URI is
/// http(s) and that have no MIME type (how every dialect's translation marks image and
/// document URLs), as `(content index, part index, url)`.
pub fn remote_file_data(
    request: &crate::wire::gemini::GenerateContentRequest,
) -> Vec<(usize, usize, String)> {
    let mut wanted = Vec::new();
    for (i, content) in request.contents.iter().enumerate() {
        for (j, part) in content.parts.iter().enumerate() {
            if let Some(file) = &part.file_data
                && file.mime_type.is_none()
                && (file.file_uri.starts_with("http://") || file.file_uri.starts_with("https://"))
            {
                wanted.push((i, j, file.file_uri.clone()));
            }
        }
    }
    wanted
}

/// Replaces the remote media of a translated request ([`remote_file_data`]) by the fetched
/// bytes (inline data), fetching up to four at a time, at most [`MAX_REMOTE_IMAGES`].
pub async fn inline_remote_file_data(
    request: &mut crate::wire::gemini::GenerateContentRequest,
    fetcher: &Fetcher,
    max_bytes: usize,
) -> Result<(), GatewayError> {
    let wanted = remote_file_data(request);
    if wanted.is_empty() {
        return Ok(());
    }
    if wanted.len() > MAX_REMOTE_IMAGES {
        return Err(GatewayError::bad_request(format!(
            "远程图片或文件最多 {MAX_REMOTE_IMAGES} 个 / At most {MAX_REMOTE_IMAGES} remote images or documents per request"
        )));
    }
    let budget = FetchBudget::new(max_bytes);
    let budget = &budget;
    let fetched: Vec<(usize, usize, String)> = futures_util::stream::iter(wanted)
        .map(|(i, j, url)| async move {
            let data = fetcher.fetch(&url, budget).await?;
            Ok::<_, GatewayError>((i, j, data))
        })
        .buffer_unordered(4)
        .try_collect()
        .await?;
    for (i, j, data) in fetched {
        let Some(blob) = crate::translate::media::parse_data_url(&data) else {
            continue;
        };
        if let Some(part) = request.contents.get_mut(i).and_then(|c| c.parts.get_mut(j)) {
            part.file_data = None;
            part.inline_data = Some(blob);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!address_allowed(ip(bad), false), "{bad}");
        }
        for good in [
            "8.8.8.8",
            "142.250.72.14",
            "2607:f8b0:4005:80a::200e",
            "1.1.1.1",
        ] {
            assert!(address_allowed(ip(good), false), "{good}");
        }
    }

    #[test]
    fn the_test_switch_admits_loopback_only() {
        assert!(address_allowed(ip("127.0.0.1"), true));
        assert!(address_allowed(ip("::1"), true));
        assert!(!address_allowed(ip("10.0.0.1"), true));
        assert!(!address_allowed(ip("169.254.169.254"), true));
    }

    #[test]
    fn ipv4_compatible_and_6to4_addresses_never_reach_private_space() {
        for bad in [
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "::8.8.8.8",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:808:808::1",
        ] {
            assert!(!address_allowed(ip(bad), false), "{bad}");
            assert!(!address_allowed(ip(bad), true), "{bad} (test switch)");
        }
    }

    #[test]
    fn remote_media_marked_by_the_translations_is_found() {
        use crate::wire::gemini::{Content, FileData, GenerateContentRequest, Part};
        let file = |uri: &str, mime: Option<&str>| Part {
            file_data: Some(FileData {
                mime_type: mime.map(str::to_owned),
                file_uri: uri.to_owned(),
            }),
            ..Part::default()
        };
        let request = GenerateContentRequest {
            contents: vec![Content {
                role: Some("user".into()),
                parts: vec![
                    Part::text("look"),
                    file("https://example.com/a.png", None),
                    file("gs://bucket/b.pdf", None),
                    file("https://example.com/c.pdf", Some("application/pdf")),
                ],
            }],
            ..GenerateContentRequest::default()
        };
        assert_eq!(
            remote_file_data(&request),
            vec![(0, 1, "https://example.com/a.png".to_owned())]
        );
    }

    #[test]
    fn the_budget_counts_every_image_of_a_request() {
        let budget = FetchBudget::new(10);
        assert!(budget.take(6).is_ok());
        assert_eq!(budget.left(), 4);
        let e = budget.take(5).map_err(|e| e.to_string());
        assert!(e.is_err_and(|m| m.contains("MAX_FETCHED_BYTES")));
    }

    #[test]
    fn mime_types_are_guessed_from_the_path() {
        assert_eq!(mime_from_path("/a/b.JPG"), Some("image/jpeg"));
        assert_eq!(mime_from_path("/x"), None);
    }
}
