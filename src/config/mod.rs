//! Configuration: HAJIMI's environment variables (unprefixed, HAJIMI's parsing) plus ours,
//! layered default < `.env` < process environment < CLI flag (decisions §1), validated into
//! one [`Settings`] value. Settings live in the per-request snapshot (`live.rs`); this module
//! only builds them and never reads the environment anywhere else.

pub mod editable;
pub mod keys;
pub mod parse;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::mask::Secret;
use crate::translate::history::RANDOM_STRING_LENGTH_MAX;
use crate::translate::model_name::strip_model_prefix;
use parse::Values;
pub use parse::{ConfigError, Source};

/// HAJIMI's default search prompt.
pub const DEFAULT_SEARCH_PROMPT: &str = "（使用搜索工具联网搜索，需要在content中结合搜索内容）";
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
const DEFAULT_VERTEX_MODELS_CONFIG_URL: &str =
    "https://raw.githubusercontent.com/gzzhongqi/vertex2openai/refs/heads/main/vertexModels.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Peers whose `X-Forwarded-For`/`X-Real-IP` we believe.
#[derive(Clone, Debug, Default)]
pub enum TrustedProxies {
    #[default]
    None,
    Any,
    Nets(Vec<IpNet>),
}

impl TrustedProxies {
    pub fn trusts(&self, peer: IpAddr) -> bool {
        match self {
            Self::None => false,
            Self::Any => true,
            Self::Nets(nets) => nets.iter().any(|n| n.contains(&peer)),
        }
    }
}

/// Outbound proxy variables as found in `.env` or the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https: Option<String>,
    pub http: Option<String>,
    pub all: Option<String>,
    pub no_proxy: Option<String>,
}

/// Where the store lives (decisions §1): explicit or the default directory.
#[derive(Clone, Debug)]
pub struct StorageDir {
    pub path: PathBuf,
    pub explicit: bool,
}

/// Allowed range of the keep-alive intervals (`FAKE_STREAMING_INTERVAL`,
/// `NONSTREAM_KEEPALIVE_INTERVAL`), from the environment and from the dashboard alike.
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(3600));

/// Every setting, validated. Cloned into a new snapshot when the dashboard changes one.
#[derive(Clone, Debug)]
pub struct Settings {
    // --- server (read at start-up) ---
    pub host: String,
    pub port: u16,
    /// Time a client has to send a request's head: from connecting, and (HTTP/1) from the end
    /// of the previous response.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub keepalive_timeout: Duration,
    /// Open connections per client address (IPv6: per /64); 0: no cap.
    pub max_connections_per_ip: u32,
    /// Loopback peers are exempt from `max_connections_per_ip`. Not a variable: tests turn it
    /// off to exercise the cap from 127.0.0.1.
    pub connection_cap_exempts_loopback: bool,
    pub max_body_size: usize,
    /// Most messages (native: `contents`) in one request, counted while the body is parsed.
    pub max_messages: usize,
    /// Most content parts (and tool calls) in one request, all messages together.
    pub max_content_parts: usize,
    /// Most bytes fetched for one request's remote `image_url`s, all images together.
    pub max_fetched_bytes: usize,
    pub trusted_proxies: TrustedProxies,
    pub log_format: LogFormat,
    pub log_level: String,
    pub dashboard_url: Option<String>,
    pub allowed_origins: Vec<String>,
    pub storage_dir: StorageDir,
    pub enable_storage: bool,
    pub stats_reset_timezone: String,
    pub redis_url: Option<Secret>,
    pub metrics_password: Option<Secret>,
    // --- access ---
    pub password: Secret,
    pub password_is_default: bool,
    pub web_password: Secret,
    /// Lower-cased entries; a User-Agent equal to one or starting with one is admitted.
    pub whitelist_user_agent: Vec<String>,
    // --- upstream ---
    pub gemini_base_url: String,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub request_deadline: Duration,
    /// Outbound proxies (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, either case).
    pub proxies: ProxyEnv,
    /// Test-only: let `image_url` fetching reach loopback (the test servers). Never in production.
    pub image_fetch_allow_loopback: bool,
    // --- delivery ---
    pub fake_streaming: bool,
    pub fake_streaming_interval: Duration,
    pub fake_streaming_chunk_size: usize,
    pub fake_streaming_delay_per_chunk: Duration,
    pub nonstream_keepalive_enabled: bool,
    pub nonstream_keepalive_interval: Duration,
    pub concurrent_requests: u32,
    pub increase_concurrent_on_failure: u32,
    pub max_concurrent_requests: u32,
    pub max_retry_num: u32,
    pub max_empty_responses: u32,
    /// Cancel the other attempts of a race once one succeeded (HAJIMI keeps them for the cache).
    pub race_cancel_losers: bool,
    /// Most attempts in flight per key (0: unlimited).
    pub key_max_concurrency: u32,
    /// How often invalid and suspended keys are checked again.
    pub key_recheck_interval: Duration,
    pub cache_expiry_time: Duration,
    pub max_cache_entries: usize,
    pub calculate_cache_entries: usize,
    pub precise_cache: bool,
    pub search_mode: bool,
    pub search_prompt: String,
    pub random_string: bool,
    pub random_string_length: usize,
    pub enable_thinking: bool,
    pub max_requests_per_minute: u32,
    pub max_requests_per_day_per_ip: u32,
    pub api_key_daily_limit: u32,
    pub blocked_models: Vec<String>,
    pub whitelist_models: Vec<String>,
    pub extra_models: Vec<String>,
    pub public_mode: bool,
    pub inband_errors: bool,
    pub skip_check_api_key: bool,
    pub invalid_api_keys: Vec<String>,
    // --- Vertex (read and kept; the Vertex backend comes later) ---
    pub enable_vertex: bool,
    pub enable_vertex_express: bool,
    pub google_credentials_json: Option<Secret>,
    pub vertex_express_api_key: Vec<Secret>,
    pub vertex_project_id: Option<String>,
    pub vertex_location: String,
    pub vertex_models_config_url: String,
}

/// A loaded configuration: the settings, the upstream keys, and how they were obtained.
#[derive(Debug)]
pub struct Config {
    pub settings: Settings,
    pub keys: Vec<String>,
    pub provenance: BTreeMap<String, Source>,
    /// The value in effect for every variable read, masked for display (`hajimi config`).
    pub effective: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    /// The raw values behind the settings (for the dashboard precedence rule).
    pub env: RawEnv,
    /// For each key from the environment, the variable that holds it.
    pub key_vars: Vec<(String, String)>,
}

/// Raw configuration values by variable name. Holds secrets: `Debug` prints names only.
#[derive(Clone, Default)]
pub struct RawEnv(pub BTreeMap<String, String>);

impl RawEnv {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A short stable fingerprint of a variable's value (what a key tombstone remembers).
    pub fn fingerprint(&self, name: &str) -> String {
        let value = self.get(name).unwrap_or_default();
        format!(
            "{name}:{:016x}",
            xxhash_rust::xxh64::xxh64(value.as_bytes(), 7)
        )
    }
}

impl std::fmt::Debug for RawEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Values given on the command line; they win over everything but the dashboard.
#[derive(Clone, Debug, Default)]
pub struct CliOverrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub env_file: Option<PathBuf>,
}

impl Config {
    /// Loads `.env` (or `--env-file`), the process environment and CLI flags.
    pub fn load(cli: &CliOverrides) -> Result<Self, ConfigError> {
        let dotenv = match &cli.env_file {
            Some(path) => read_env_file(path, true)?,
            None => read_env_file(Path::new(".env"), false)?,
        };
        Self::from_sources(dotenv, std::env::vars().collect(), cli)
    }

    /// Builds a configuration from explicit sources (tests use this directly).
    pub fn from_sources(
        dotenv: Vec<(String, String)>,
        env: Vec<(String, String)>,
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        let mut v = Values::default();
        v.layer(dotenv, Source::DotEnv);
        v.layer(env, Source::Env);
        let mut cli_pairs = Vec::new();
        if let Some(host) = &cli.host {
            cli_pairs.push(("HOST".to_owned(), host.clone()));
        }
        if let Some(port) = cli.port {
            cli_pairs.push(("PORT".to_owned(), port.to_string()));
        }
        v.layer(cli_pairs, Source::Cli);
        build(v)
    }
}

fn read_env_file(path: &Path, required: bool) -> Result<Vec<(String, String)>, ConfigError> {
    if !path.exists() {
        if required {
            return Err(Values::error(
                "--env-file",
                &path.display().to_string(),
                "an existing file",
                "存在的文件",
            ));
        }
        return Ok(Vec::new());
    }
    let iter = dotenvy::from_path_iter(path).map_err(|_| {
        Values::error(
            "--env-file",
            &path.display().to_string(),
            "a readable .env file",
            "可读的 .env 文件",
        )
    })?;
    let mut pairs = Vec::new();
    for item in iter {
        match item {
            Ok(pair) => pairs.push(pair),
            Err(e) => {
                return Err(ConfigError {
                    name: path.display().to_string(),
                    value: e.to_string(),
                    expected: "valid KEY=VALUE lines",
                    expected_zh: "有效的 KEY=VALUE 行",
                });
            }
        }
    }
    Ok(pairs)
}

fn build(mut v: Values) -> Result<Config, ConfigError> {
    let secs = Duration::from_secs;
    let millis = Duration::from_millis;
    let day = secs(86_400);

    let host = v.string("HOST", "0.0.0.0");
    if host.parse::<IpAddr>().is_err() && host != "localhost" {
        return Err(Values::error(
            "HOST",
            &host,
            "an IP address such as 0.0.0.0",
            "IP 地址（如 0.0.0.0）",
        ));
    }
    let port = u16::try_from(v.int("PORT", 7860, 0, 65_535)?).unwrap_or(7860);

    let password_raw = v.opt_string("PASSWORD");
    let password_is_default = password_raw.is_none();
    if password_is_default {
        v.effective
            .insert("PASSWORD".into(), "123 (HAJIMI's public default)".into());
    }
    let password = Secret::new(password_raw.unwrap_or_else(|| "123".to_owned()));
    let web_password = v.opt_string("WEB_PASSWORD").map_or_else(
        || {
            v.effective
                .insert("WEB_PASSWORD".into(), "(same as PASSWORD)".into());
            password.clone()
        },
        Secret::new,
    );

    let trusted_proxies = parse_trusted(&mut v)?;
    let log_format = match v.string("LOG_FORMAT", "text").to_ascii_lowercase().as_str() {
        "text" | "pretty" | "plain" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(Values::error(
                "LOG_FORMAT",
                other,
                "text or json",
                "text 或 json",
            ));
        }
    };
    let log_level = v.string("LOG_LEVEL", "info").to_ascii_lowercase();
    if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
        return Err(Values::error(
            "LOG_LEVEL",
            &log_level,
            "error, warn, info, debug or trace (RUST_LOG takes filter directives)",
            "error、warn、info、debug 或 trace 之一（过滤规则请用 RUST_LOG）",
        ));
    }

    let stats_reset_timezone = v.string("STATS_RESET_TIMEZONE", "America/Los_Angeles");
    if jiff::tz::TimeZone::get(&stats_reset_timezone).is_err() {
        return Err(Values::error(
            "STATS_RESET_TIMEZONE",
            &stats_reset_timezone,
            "an IANA time zone such as America/Los_Angeles",
            "IANA 时区名（如 America/Los_Angeles）",
        ));
    }

    let gemini_base_url = normalise_base_url(&v.string("GEMINI_BASE_URL", DEFAULT_GEMINI_BASE_URL));
    v.show("GEMINI_BASE_URL", &gemini_base_url);
    if !(gemini_base_url.starts_with("http://") || gemini_base_url.starts_with("https://")) {
        return Err(Values::error(
            "GEMINI_BASE_URL",
            &gemini_base_url,
            "an http(s) URL",
            "http(s) 地址",
        ));
    }

    let storage_dir = match v.opt_string("STORAGE_DIR") {
        Some(dir) => StorageDir {
            path: PathBuf::from(dir),
            explicit: true,
        },
        None => {
            let hajimi_volume = Path::new("/hajimi/settings");
            let path = if hajimi_volume.is_dir() {
                hajimi_volume.to_path_buf()
            } else {
                PathBuf::from("./data")
            };
            StorageDir {
                path,
                explicit: false,
            }
        }
    };
    v.show("STORAGE_DIR", &storage_dir.path.display().to_string());

    let mut either = |upper: &str, lower: &str| v.opt_string(upper).or_else(|| v.opt_string(lower));
    let proxies = ProxyEnv {
        https: either("HTTPS_PROXY", "https_proxy"),
        http: either("HTTP_PROXY", "http_proxy"),
        all: either("ALL_PROXY", "all_proxy"),
        no_proxy: either("NO_PROXY", "no_proxy"),
    };

    let search_mode = v.bool("SEARCH_MODE", false);
    let search_prompt = v.string("SEARCH_PROMPT", DEFAULT_SEARCH_PROMPT);

    let settings = Settings {
        host,
        port,
        header_read_timeout: v.duration(
            "HEADER_READ_TIMEOUT",
            secs(30),
            millis(100),
            secs(3600),
        )?,
        keepalive_timeout: v.duration("KEEPALIVE_TIMEOUT", secs(30), millis(100), secs(3600))?,
        max_connections_per_ip: v.uint("MAX_CONNECTIONS_PER_IP", 4096, 0)?,
        connection_cap_exempts_loopback: true,
        max_body_size: v.size("MAX_BODY_SIZE", 64 * 1024 * 1024, 1024)?,
        max_messages: v.usize("MAX_MESSAGES", 20_000, 1)?,
        max_content_parts: v.usize("MAX_CONTENT_PARTS", 50_000, 1)?,
        max_fetched_bytes: v.size("MAX_FETCHED_BYTES", 20 * 1024 * 1024, 1024)?,
        trusted_proxies,
        log_format,
        log_level,
        dashboard_url: v
            .opt_string("DASHBOARD_URL")
            .map(|s| s.trim_matches('/').to_owned())
            .filter(|s| !s.is_empty()),
        allowed_origins: v.list("ALLOWED_ORIGINS"),
        storage_dir,
        enable_storage: v.bool("ENABLE_STORAGE", true),
        stats_reset_timezone,
        redis_url: v.opt_string("REDIS_URL").map(Secret::new),
        metrics_password: v.opt_string("METRICS_PASSWORD").map(Secret::new),
        password,
        password_is_default,
        web_password,
        whitelist_user_agent: v
            .list("WHITELIST_USER_AGENT")
            .into_iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        gemini_base_url,
        upstream_connect_timeout: v.duration(
            "UPSTREAM_CONNECT_TIMEOUT",
            secs(10),
            millis(100),
            secs(300),
        )?,
        upstream_timeout: v.duration("UPSTREAM_TIMEOUT", secs(600), millis(100), day)?,
        request_deadline: v.duration("REQUEST_DEADLINE", secs(900), millis(100), day)?,
        proxies,
        image_fetch_allow_loopback: v.bool("IMAGE_FETCH_ALLOW_LOOPBACK", false),
        fake_streaming: v.bool("FAKE_STREAMING", true),
        fake_streaming_interval: v.duration(
            "FAKE_STREAMING_INTERVAL",
            secs(1),
            INTERVAL_RANGE.0,
            INTERVAL_RANGE.1,
        )?,
        fake_streaming_chunk_size: v.usize("FAKE_STREAMING_CHUNK_SIZE", 10, 1)?,
        fake_streaming_delay_per_chunk: v.duration(
            "FAKE_STREAMING_DELAY_PER_CHUNK",
            millis(100),
            Duration::ZERO,
            secs(60),
        )?,
        nonstream_keepalive_enabled: v.bool("NONSTREAM_KEEPALIVE_ENABLED", true),
        nonstream_keepalive_interval: v.duration(
            "NONSTREAM_KEEPALIVE_INTERVAL",
            secs(5),
            INTERVAL_RANGE.0,
            INTERVAL_RANGE.1,
        )?,
        concurrent_requests: v.uint("CONCURRENT_REQUESTS", 1, 1)?,
        increase_concurrent_on_failure: v.uint("INCREASE_CONCURRENT_ON_FAILURE", 0, 0)?,
        max_concurrent_requests: v.uint("MAX_CONCURRENT_REQUESTS", 3, 1)?,
        max_retry_num: v.uint("MAX_RETRY_NUM", 15, 1)?,
        // HAJIMI accepts 0 and then refuses every request; 1 is the nearest sane value.
        max_empty_responses: v.uint("MAX_EMPTY_RESPONSES", 5, 1)?,
        race_cancel_losers: v.bool("RACE_CANCEL_LOSERS", false),
        key_max_concurrency: v.uint("KEY_MAX_CONCURRENCY", 0, 0)?,
        key_recheck_interval: v.duration("KEY_RECHECK_INTERVAL", secs(1800), secs(1), day * 7)?,
        cache_expiry_time: v.duration(
            "CACHE_EXPIRY_TIME",
            secs(21_600),
            Duration::ZERO,
            secs(365 * 86_400),
        )?,
        max_cache_entries: v.usize("MAX_CACHE_ENTRIES", 500, 0)?,
        calculate_cache_entries: v.usize("CALCULATE_CACHE_ENTRIES", 6, 0)?,
        precise_cache: v.bool("PRECISE_CACHE", false),
        search_mode,
        search_prompt,
        random_string: v.bool("RANDOM_STRING", true),
        random_string_length: usize::try_from(v.int(
            "RANDOM_STRING_LENGTH",
            5,
            1,
            RANDOM_STRING_LENGTH_MAX as i64,
        )?)
        .unwrap_or(5),
        enable_thinking: v.bool("ENABLE_THINKING", true),
        // 0: no limit (decisions §6).
        max_requests_per_minute: v.uint("MAX_REQUESTS_PER_MINUTE", 30, 0)?,
        max_requests_per_day_per_ip: v.uint("MAX_REQUESTS_PER_DAY_PER_IP", 600, 0)?,
        api_key_daily_limit: v.uint("API_KEY_DAILY_LIMIT", 100, 0)?,
        blocked_models: model_names(v.list("BLOCKED_MODELS")),
        whitelist_models: model_names(v.list("WHITELIST_MODELS")),
        extra_models: model_names(v.list("EXTRA_MODELS")),
        public_mode: v.bool("PUBLIC_MODE", false),
        inband_errors: v.bool("INBAND_ERRORS", false),
        skip_check_api_key: v.bool("SKIP_CHECK_API_KEY", false),
        invalid_api_keys: v.list("INVALID_API_KEYS"),
        enable_vertex: v.bool("ENABLE_VERTEX", false),
        enable_vertex_express: v.bool("ENABLE_VERTEX_EXPRESS", false),
        google_credentials_json: v
            .opt_string("GOOGLE_CREDENTIALS_JSON")
            .filter(|s| s != "''" && s != "\"\"")
            .map(Secret::new),
        vertex_express_api_key: v
            .list("VERTEX_EXPRESS_API_KEY")
            .into_iter()
            .map(Secret::new)
            .collect(),
        vertex_project_id: v.opt_string("VERTEX_PROJECT_ID"),
        vertex_location: v.string("VERTEX_LOCATION", "us-central1"),
        vertex_models_config_url: v
            .string("VERTEX_MODELS_CONFIG_URL", DEFAULT_VERTEX_MODELS_CONFIG_URL),
    };

    let (keys, key_vars) = collect_keys(&mut v);
    if let Some(e) = v.take_error() {
        return Err(e);
    }
    let env = RawEnv(v.raw_values());

    let mut warnings = std::mem::take(&mut v.warnings);
    if settings.password_is_default {
        warnings.push(
            "未设置 PASSWORD，使用默认密码 123，任何人都能使用本代理 / PASSWORD is not set: the default password 123 is in use and anyone can use this proxy"
                .to_owned(),
        );
    }
    if keys.is_empty() {
        warnings.push(
            "未配置任何 Gemini API 密钥（GEMINI_API_KEYS），请求将失败，直到在面板中添加密钥 / no Gemini API keys configured (GEMINI_API_KEYS): requests fail until keys are added from the dashboard"
                .to_owned(),
        );
    }
    if settings.enable_vertex
        || settings.google_credentials_json.is_some()
        || !settings.vertex_express_api_key.is_empty()
    {
        warnings.push(
            "Vertex 模式尚未实现，Vertex 相关配置已读取但暂不生效 / Vertex mode is not available yet: the Vertex settings were read but have no effect"
                .to_owned(),
        );
    }

    Ok(Config {
        settings,
        keys,
        provenance: std::mem::take(&mut v.provenance),
        effective: std::mem::take(&mut v.effective),
        warnings,
        env,
        key_vars,
    })
}

/// `GEMINI_API_KEYS` then `GEMINI_API_KEYS_1..98` until the first missing one; also which
/// variable holds each key.
fn collect_keys(v: &mut Values) -> (Vec<String>, Vec<(String, String)>) {
    let mut all = Vec::new();
    let mut vars = Vec::new();
    let mut seen = HashSet::new();
    let mut take = |v: &mut Values,
                    name: &str,
                    all: &mut Vec<String>,
                    seen: &mut HashSet<String>| {
        let Some((text, _)) = v.get(name) else {
            return;
        };
        let before = all.len();
        let found = keys::extract_keys(&text);
        let masked: Vec<String> = found.iter().map(|k| crate::mask::mask(k)).collect();
        v.effective.insert(
            name.to_owned(),
            format!("{} key(s): {}", found.len(), masked.join(", ")),
        );
        keys::dedup_into(all, seen, found);
        for k in &all[before..] {
            vars.push((k.clone(), name.to_owned()));
        }
        for (position, token, truncated) in keys::malformed(&text) {
            let masked = crate::mask::mask(&token);
            v.warnings.push(if truncated {
                format!(
                    "{name} 第 {position} 项（{masked}）比密钥长，只使用了前 39 个字符 / {name} entry {position} ({masked}) is longer than a key (AIzaSy + 33 characters): only its first 39 characters are used"
                )
            } else {
                format!(
                    "{name} 第 {position} 项（{masked}）不是 Gemini 密钥格式（AIzaSy 加 33 个字符），已忽略 / {name} entry {position} ({masked}) is not key-shaped (AIzaSy + 33 characters) and was ignored"
                )
            });
        }
    };
    take(v, "GEMINI_API_KEYS", &mut all, &mut seen);
    for i in 1..=98 {
        let name = format!("GEMINI_API_KEYS_{i}");
        if !v.is_set(&name) {
            break;
        }
        take(v, &name, &mut all, &mut seen);
    }
    (all, vars)
}

fn parse_trusted(v: &mut Values) -> Result<TrustedProxies, ConfigError> {
    let entries = v.list("TRUSTED_PROXIES");
    if entries.is_empty() {
        return Ok(TrustedProxies::None);
    }
    if entries.iter().any(|e| e == "*") {
        return Ok(TrustedProxies::Any);
    }
    let mut nets = Vec::new();
    for entry in entries {
        let net = entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                Values::error(
                    "TRUSTED_PROXIES",
                    &entry,
                    "CIDRs such as 10.0.0.0/8, or *",
                    "CIDR 列表（如 10.0.0.0/8）或 *",
                )
            })?;
        nets.push(net);
    }
    Ok(TrustedProxies::Nets(nets))
}

/// Strips a trailing `/` and a trailing version path (`/v1beta`, `/v1`, `/v1alpha`).
pub fn normalise_base_url(url: &str) -> String {
    let mut u = url.trim().trim_end_matches('/').to_owned();
    for suffix in ["/v1beta", "/v1alpha", "/v1"] {
        if let Some(stripped) = u.strip_suffix(suffix) {
            u = stripped.trim_end_matches('/').to_owned();
            break;
        }
    }
    u
}

/// The host (and port, when given) of an upstream base URL, as messages name it.
pub fn base_url_host(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| url.to_owned())
}

/// A list of model names as the lists compare them: without Google's `models/` prefix.
pub fn model_names(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|m| strip_model_prefix(&m).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        Config::from_sources(Vec::new(), env, &CliOverrides::default())
    }

    /// Fake keys of the AI Studio shape (`AIzaSy` + 33 characters).
    fn fake_keys() -> [String; 3] {
        [1, 2, 3].map(|n| format!("AIzaSy{n:0>33}"))
    }

    #[test]
    fn defaults_match_hajimi_and_the_contract() {
        let c = load(&[]).map_err(|e| e.to_string());
        let Ok(c) = c else {
            return assert!(c.is_ok(), "{c:?}");
        };
        let s = &c.settings;
        assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 7860));
        assert_eq!(s.password.expose(), "123");
        assert!(s.password_is_default);
        assert_eq!(s.web_password.expose(), "123");
        assert!(s.fake_streaming && s.random_string && s.enable_thinking && s.enable_storage);
        assert_eq!(s.max_retry_num, 15);
        assert_eq!(s.max_body_size, 64 * 1024 * 1024);
        assert_eq!(
            (s.max_messages, s.max_content_parts, s.max_fetched_bytes),
            (20_000, 50_000, 20 * 1024 * 1024)
        );
        assert_eq!(s.upstream_timeout, Duration::from_secs(600));
        assert_eq!(s.request_deadline, Duration::from_secs(900));
        assert_eq!(s.gemini_base_url, DEFAULT_GEMINI_BASE_URL);
        assert_eq!(s.calculate_cache_entries, 6);
        assert!(c.warnings.iter().any(|w| w.contains("PASSWORD")));
        assert_eq!(c.provenance.get("PORT"), Some(&Source::Default));
    }

    #[test]
    fn keys_come_from_all_variables_in_order_without_duplicates() {
        let [k1, k2, k3] = fake_keys();
        let joined = format!("{k1}\n{k2}");
        let c = load(&[
            ("GEMINI_API_KEYS", &joined),
            ("GEMINI_API_KEYS_1", &k3),
            ("GEMINI_API_KEYS_2", &k1),
        ]);
        assert_eq!(c.map(|c| c.keys).ok(), Some(vec![k1, k2, k3]));
    }

    #[test]
    fn numbered_key_variables_stop_at_the_first_gap() {
        let [k1, _, k3] = fake_keys();
        let c = load(&[("GEMINI_API_KEYS_1", &k1), ("GEMINI_API_KEYS_3", &k3)]);
        assert_eq!(c.map(|c| c.keys).ok(), Some(vec![k1]));
    }

    #[test]
    fn web_password_defaults_to_password() {
        let c = load(&[("PASSWORD", "\"s3cret\"")]);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        assert_eq!(c.settings.password.expose(), "s3cret");
        assert_eq!(c.settings.web_password.expose(), "s3cret");
        assert!(!c.settings.password_is_default);
    }

    #[test]
    fn cli_beats_env_beats_dotenv() {
        let dotenv = vec![
            ("PORT".to_owned(), "1000".to_owned()),
            ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ];
        let env = vec![("PORT".to_owned(), "2000".to_owned())];
        let cli = CliOverrides {
            port: Some(3000),
            ..CliOverrides::default()
        };
        let c = Config::from_sources(dotenv.clone(), env.clone(), &cli);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        assert_eq!(c.settings.port, 3000);
        assert_eq!(c.provenance.get("PORT"), Some(&Source::Cli));
        assert_eq!(c.settings.host, "127.0.0.1");
        assert_eq!(c.provenance.get("HOST"), Some(&Source::DotEnv));
        let c = Config::from_sources(dotenv, env, &CliOverrides::default());
        assert_eq!(c.map(|c| c.settings.port).ok(), Some(2000));
    }

    #[test]
    fn unparsable_values_fail_and_name_the_variable() {
        for (name, value) in [
            ("PORT", "abc"),
            ("MAX_RETRY_NUM", "many"),
            ("FAKE_STREAMING_INTERVAL", "soon"),
            ("LOG_FORMAT", "xml"),
            ("TRUSTED_PROXIES", "nope"),
            ("STATS_RESET_TIMEZONE", "Mars/Base"),
        ] {
            let err = load(&[(name, value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn out_of_range_values_are_clamped_with_warnings() {
        let c = load(&[
            ("CONCURRENT_REQUESTS", "-1"),
            ("MAX_EMPTY_RESPONSES", "0"),
            ("PORT", "70000"),
        ]);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        assert_eq!(c.settings.concurrent_requests, 1);
        assert_eq!(c.settings.max_empty_responses, 1);
        assert_eq!(c.settings.port, 65_535);
        assert_eq!(
            c.warnings
                .iter()
                .filter(|w| w.contains("out of range"))
                .count(),
            3
        );
    }

    /// decisions §6: 0 is "no limit", not raised to 1.
    #[test]
    fn zero_request_limits_mean_no_limit() {
        let c = load(&[
            ("MAX_REQUESTS_PER_MINUTE", "0"),
            ("MAX_REQUESTS_PER_DAY_PER_IP", "0"),
        ]);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        assert_eq!(c.settings.max_requests_per_minute, 0);
        assert_eq!(c.settings.max_requests_per_day_per_ip, 0);
        assert!(
            !c.warnings.iter().any(|w| w.contains("MAX_REQUESTS")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn connection_settings_have_defaults_and_parse() {
        let c = load(&[]);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        let s = &c.settings;
        assert_eq!(s.header_read_timeout, Duration::from_secs(30));
        assert_eq!(s.keepalive_timeout, Duration::from_secs(30));
        assert_eq!(s.max_connections_per_ip, 4096);
        assert!(s.connection_cap_exempts_loopback);
        let c = load(&[
            ("HEADER_READ_TIMEOUT", "500ms"),
            ("KEEPALIVE_TIMEOUT", "2m"),
            ("MAX_CONNECTIONS_PER_IP", "0"),
        ]);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        let s = &c.settings;
        assert_eq!(s.header_read_timeout, Duration::from_millis(500));
        assert_eq!(s.keepalive_timeout, Duration::from_secs(120));
        assert_eq!(s.max_connections_per_ip, 0, "0 turns the cap off");
        for name in [
            "HEADER_READ_TIMEOUT",
            "KEEPALIVE_TIMEOUT",
            "MAX_CONNECTIONS_PER_IP",
        ] {
            let err = load(&[(name, "soon")])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn base_url_loses_trailing_slash_and_version() {
        assert_eq!(
            normalise_base_url("http://127.0.0.1:9/"),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            normalise_base_url("https://x.example/v1beta/"),
            "https://x.example"
        );
        assert_eq!(
            normalise_base_url("https://x.example/proxy/v1"),
            "https://x.example/proxy"
        );
    }

    #[test]
    fn the_upstream_host_is_named_with_its_port() {
        assert_eq!(
            base_url_host(DEFAULT_GEMINI_BASE_URL),
            "generativelanguage.googleapis.com"
        );
        assert_eq!(base_url_host("http://127.0.0.1:9"), "127.0.0.1:9");
        assert_eq!(
            base_url_host("https://relay.example/proxy"),
            "relay.example"
        );
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_star() {
        let c = load(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        assert!(
            c.settings
                .trusted_proxies
                .trusts("10.1.2.3".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))
        );
        assert!(
            c.settings
                .trusted_proxies
                .trusts(IpAddr::from([127, 0, 0, 1]))
        );
        assert!(
            !c.settings
                .trusted_proxies
                .trusts(IpAddr::from([192, 168, 0, 1]))
        );
        let c = load(&[("TRUSTED_PROXIES", "*")]);
        assert!(
            c.map(|c| c
                .settings
                .trusted_proxies
                .trusts(IpAddr::from([1, 2, 3, 4])))
                .unwrap_or(false)
        );
    }

    #[test]
    fn an_unknown_log_level_stops_start_up() {
        let err = load(&[("LOG_LEVEL", "verbose")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("LOG_LEVEL=\"verbose\""), "{err}");
        assert!(err.contains("error, warn, info, debug or trace"), "{err}");
        let c = load(&[("LOG_LEVEL", "DEBUG")]);
        assert_eq!(
            c.map(|c| c.settings.log_level).ok().as_deref(),
            Some("debug")
        );
    }

    #[test]
    fn a_misspelled_boolean_stops_start_up() {
        let err = load(&[("FAKE_STREAMING", "ture")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("FAKE_STREAMING"), "{err}");
        let c = load(&[("FAKE_STREAMING", "Off"), ("PRECISE_CACHE", "on")]);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        assert!(!c.settings.fake_streaming && c.settings.precise_cache);
    }

    #[test]
    fn a_token_that_is_not_key_shaped_is_reported_by_position_and_masked() {
        let [k1, k2, _] = fake_keys();
        let short = "AIzaSyTruncatedKey12345";
        let text = format!("{k1}, {short}\n{k2}");
        let c = load(&[("GEMINI_API_KEYS", &text)]);
        let Ok(c) = c else { return assert!(c.is_ok()) };
        assert_eq!(c.keys, vec![k1, k2]);
        let warning = c
            .warnings
            .iter()
            .find(|w| w.contains("GEMINI_API_KEYS"))
            .cloned()
            .unwrap_or_default();
        assert!(warning.contains("entry 2"), "{warning}");
        assert!(warning.contains(&crate::mask::mask(short)), "{warning}");
        assert!(!warning.contains(short), "masked: {warning}");
    }

    #[test]
    fn user_agent_whitelist_is_lowercased() {
        let c = load(&[("WHITELIST_USER_AGENT", "SillyTavern, CherryStudio")]);
        assert_eq!(
            c.map(|c| c.settings.whitelist_user_agent).ok(),
            Some(vec!["sillytavern".to_owned(), "cherrystudio".to_owned()])
        );
    }
}
