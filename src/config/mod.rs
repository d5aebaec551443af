//! Configuration: HAJIMI's environment variables (unprefixed, HAJIMI's parsing) plus ours,
//! layered default < `.env` < process environment < CLI flag (decisions §1), validated into
//! one [`Settings`] value. Every setting is described once, in the settings table
//! ([`table`]): its variable, dashboard key, kind, default, bounds, group and help; parsing,
//! dashboard editing, `hajimi config` and the README's tables all come from it. Settings live
//! in the per-request snapshot (`live.rs`); this module only builds them and never reads the
//! environment anywhere else.

pub mod credentials;
pub mod keys;
pub mod parse;
pub mod table;
pub mod vertex;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::mask::Secret;
use crate::translate::aliases::ModelAliases;
use crate::translate::history::RANDOM_STRING_LENGTH_MAX;
use crate::translate::model_name::strip_model_prefix;
use parse::Values;
pub use parse::{ConfigError, Source};

/// HAJIMI's default search prompt.
pub const DEFAULT_SEARCH_PROMPT: &str = "（使用搜索工具联网搜索，需要在content中结合搜索内容）";
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
pub const DEFAULT_VERTEX_MODELS_CONFIG_URL: &str =
    "https://raw.githubusercontent.com/gzzhongqi/vertex2openai/refs/heads/main/vertexModels.json";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// An IANA time zone, parsed once at start-up (an unknown name stops start-up), so code that
/// needs the zone gets it, never a name to look up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// The zone named `name` (IANA), if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        jiff::tz::TimeZone::get(name).ok().map(Self)
    }

    pub fn tz(&self) -> &jiff::tz::TimeZone {
        &self.0
    }

    /// Its IANA name.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }
}

/// UTC: only the placeholder of a `Settings` before the table fills it.
impl Default for Zone {
    fn default() -> Self {
        Self(jiff::tz::TimeZone::UTC)
    }
}

/// Shown (and serialised for the dashboard) as its name.
impl serde::Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
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
#[derive(Clone, Debug, Default)]
pub struct StorageDir {
    pub path: PathBuf,
    pub explicit: bool,
}

/// Allowed range of the keep-alive intervals (`FAKE_STREAMING_INTERVAL`,
/// `NONSTREAM_KEEPALIVE_INTERVAL`), from the environment and from the dashboard alike.
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(3600));

/// Every setting, validated. Cloned into a new snapshot when the dashboard changes one.
/// Built by [`Config::from_sources`] through the settings table; `Default` only gives the
/// placeholder the table starts from (zeros, empty texts), not the settings' defaults.
#[derive(Clone, Debug, Default)]
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
    /// The zone whose midnight resets the daily counters (`STATS_RESET_TIMEZONE`).
    pub stats_reset_timezone: Zone,
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
    /// `MODEL_ALIASES`: client model names mapped to Gemini models (parsed; not wired yet).
    pub model_aliases: ModelAliases,
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
    /// Where Vertex calls go: `VERTEX_BASE_URL`, else the default host of `vertex_location`.
    pub vertex_base_url: String,
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
                    expected: "valid KEY=VALUE lines".into(),
                    expected_zh: "有效的 KEY=VALUE 行".into(),
                });
            }
        }
    }
    Ok(pairs)
}

fn build(mut v: Values) -> Result<Config, ConfigError> {
    let mut settings = Settings {
        connection_cap_exempts_loopback: true,
        ..Settings::default()
    };
    for entry in table::TABLE {
        entry.load(&mut v, &mut settings)?;
    }
    settings.password_is_default = !v.is_set("PASSWORD");
    if settings.password_is_default {
        v.effective
            .insert("PASSWORD".into(), "123 (HAJIMI's public default)".into());
    }

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
    let vertex_configured =
        settings.google_credentials_json.is_some() || !settings.vertex_express_api_key.is_empty();
    if keys.is_empty() && !(settings.enable_vertex && vertex_configured) {
        warnings.push(
            "未配置任何 Gemini API 密钥（GEMINI_API_KEYS），请求将失败，直到在面板中添加密钥 / no Gemini API keys configured (GEMINI_API_KEYS): requests fail until keys are added from the dashboard"
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
