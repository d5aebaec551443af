//! Every setting, once. Order: by group, then as people look for them. Bounds apply to the
//! environment (clamped with a warning) and the dashboard (refused) alike.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::{Checked, Entry, Field, Group, Kind, Mask, TextDefault};
use crate::config::parse::Expected;
use crate::config::{
    DEFAULT_GEMINI_BASE_URL, DEFAULT_SEARCH_PROMPT, DEFAULT_VERTEX_MODELS_CONFIG_URL,
    INTERVAL_RANGE, LogFormat, RANDOM_STRING_LENGTH_MAX, Settings, StorageDir, TrustedProxies,
    Zone, model_names, normalise_base_url,
};
use crate::mask::Secret;

/// Counts held in a `u32`.
const U32: i64 = u32::MAX as i64;
/// Counts held in a `usize` (no upper bound beyond the type's).
const USIZE: i64 = if usize::BITS >= 64 {
    i64::MAX
} else {
    usize::MAX as i64
};
const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
const fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}
const MIB: usize = 1024 * 1024;

/// A field copied as is (`bool`, `Duration`, `usize` sizes).
macro_rules! plain {
    ($f:ident) => {
        Field {
            get: |s| s.$f,
            set: |s, v| s.$f = v,
        }
    };
}

/// An integer field of any width; the table's bounds keep values within it.
macro_rules! int {
    ($f:ident) => {
        Field {
            get: |s| i64::try_from(s.$f).unwrap_or(i64::MAX),
            set: |s, v| s.$f = v.try_into().unwrap_or_default(),
        }
    };
}

/// A `String` field (always has a value: its default when unset).
macro_rules! text {
    ($f:ident) => {
        Checked {
            get: |s| Some(s.$f.clone()),
            set: |s, v| {
                s.$f = v.unwrap_or_default();
                Ok(())
            },
        }
    };
}

/// An `Option<Secret>` field.
macro_rules! opt_secret {
    ($f:ident) => {
        Checked {
            get: |s| s.$f.as_ref().map(|x| x.expose().to_owned()),
            set: |s, v| {
                s.$f = v.map(Secret::new);
                Ok(())
            },
        }
    };
}

/// A `Vec<String>` field, each entry passed through `$map`.
macro_rules! list {
    ($f:ident, $map:expr) => {
        Checked {
            get: |s| s.$f.clone(),
            set: |s, v| {
                s.$f = $map(v);
                Ok(())
            },
        }
    };
}

/// An optional `String` of the proxy variables.
macro_rules! proxy {
    ($f:ident) => {
        Checked {
            get: |s| s.proxies.$f.clone(),
            set: |s, v| {
                s.proxies.$f = v;
                Ok(())
            },
        }
    };
}

const fn flag(default: bool, field: Field<bool>) -> Kind {
    Kind::Bool { default, field }
}

const fn int(default: i64, min: i64, max: i64, field: Field<i64>) -> Kind {
    Kind::Int {
        default,
        min,
        max,
        field,
    }
}

const fn duration(default: Duration, min: Duration, max: Duration, f: Field<Duration>) -> Kind {
    Kind::Duration {
        default,
        min,
        max,
        whole: false,
        field: f,
    }
}

const fn size(default: usize, min: usize, field: Field<usize>) -> Kind {
    Kind::Size {
        default,
        min,
        max: usize::MAX,
        field,
    }
}

const fn text(default: TextDefault, form: &'static str, field: Checked<Option<String>>) -> Kind {
    Kind::Text {
        default,
        form,
        field,
    }
}

const fn list(form: &'static str, field: Checked<Vec<String>>) -> Kind {
    Kind::List {
        form,
        count: false,
        field,
    }
}

const COMMA_LIST: &str = "comma-separated list";
const MODEL_LIST: &str = "comma-separated model ids (`models/` optional)";
const URL: &str = "http(s) URL";

use Group::{
    Basic, Cache, Delivery, Keys, Limits, Models, Retries, Search, Server, Upstream, Vertex,
};
use TextDefault::{Computed, Unset, Value};

/// Every setting.
pub static TABLE: &[Entry] = &[
    // ---- basic ----
    Entry::new(
        "PASSWORD",
        Basic,
        text(Value("123"), "text", Checked {
            get: |s| Some(s.password.expose().to_owned()),
            set: |s, v| {
                s.password = Secret::new(v.unwrap_or_default());
                Ok(())
            },
        }),
    )
        .secret(Mask::Password)
        .help(
            "Client password for every API route (a loud warning at start-up while it is the default).",
            "所有 API 路由的客户端密码（仍为默认值时启动会警告）。",
        ),
    Entry::new(
        "WEB_PASSWORD",
        Basic,
        text(Computed("same as PASSWORD"), "text", Checked {
            get: |s| Some(s.web_password.expose().to_owned()),
            set: |s, v| {
                s.web_password = v.map_or_else(|| s.password.clone(), Secret::new);
                Ok(())
            },
        }),
    )
    .secret(Mask::Password)
    .help(
        "Dashboard password: the login form of the web pages and the `/api/...` calls.",
        "面板密码：网页登录表单与 `/api/...` 接口使用。",
    ),
    Entry::new(
        "MAX_REQUESTS_PER_MINUTE",
        Basic,
        int(30, 0, U32, int!(max_requests_per_minute)),
    )
    .key("max_requests_per_minute")
    .help(
        "Requests per minute per client address (fixed UTC windows) on chat, native generation and embeddings; `0`: no limit. HAJIMI's limit was global; per address is looser for public proxies with many users.",
        "每个客户端地址每分钟的请求数（按 UTC 固定窗口，计对话、原生生成与向量请求）；`0` 为不限。HAJIMI 为全局限制。",
    ),
    Entry::new(
        "MAX_REQUESTS_PER_DAY_PER_IP",
        Basic,
        int(600, 0, U32, int!(max_requests_per_day_per_ip)),
    )
    .key("max_requests_per_day_per_ip")
    .help(
        "Requests per day per client address (fixed UTC days), counted like the per-minute limit; `0`: no limit.",
        "每个客户端地址每天的请求数（按 UTC 自然日），计法同每分钟限制；`0` 为不限。",
    ),
    Entry::new(
        "WHITELIST_USER_AGENT",
        Basic,
        list(
            COMMA_LIST,
            list!(whitelist_user_agent, |v: Vec<String>| v
                .into_iter()
                .map(|x| x.to_ascii_lowercase())
                .collect()),
        ),
    )
    .help(
        "If set, only clients whose User-Agent equals or starts with an entry (case-insensitive) are admitted; others get 403.",
        "设置后，只接受 User-Agent 等于或以某一项开头（不区分大小写）的客户端，其他返回 403。",
    ),
    // ---- keys ----
    Entry::new("GEMINI_API_KEYS", Keys, Kind::Keys { numbered: false })
        .masked(Mask::Keys)
        .restart()
        .help(
            "Upstream AI Studio keys. `AIzaSy…` keys are found anywhere in the text (any separator, newlines, junk); a value without such keys is split on commas and whitespace. Duplicates removed, order kept. An entry that looks like a key but is not one (too short, too long) is reported at start-up by position, masked. The dashboard adds keys with `gemini_api_keys`.",
            "上游 AI Studio 密钥。文本中任何位置的 `AIzaSy…` 密钥都会被识别（任意分隔符、换行）；不含此类密钥时按逗号和空白拆分。去重并保持顺序；形似密钥但格式不对的项在启动时按位置报告（打码）。面板用 `gemini_api_keys` 添加密钥。",
        ),
    Entry::new("GEMINI_API_KEYS_1", Keys, Kind::Keys { numbered: true })
        .masked(Mask::Keys)
        .restart()
        .help(
            "More key lists, read in order until the first missing one.",
            "更多密钥列表，按编号依次读取，遇到第一个缺失的编号即停止。",
        ),
    Entry::new(
        "INVALID_API_KEYS",
        Keys,
        Kind::List {
            form: COMMA_LIST,
            count: true,
            field: list!(invalid_api_keys, |v| v),
        },
    )
    .key("invalid_api_keys")
    .masked(Mask::Keys)
    .help(
        "HAJIMI's record of invalid keys (kept in step with key checks; the dashboard sees how many).",
        "HAJIMI 记录的失效密钥（随密钥检测更新；面板只显示数量）。",
    ),
    Entry::new(
        "SKIP_CHECK_API_KEY",
        Keys,
        flag(false, plain!(skip_check_api_key)),
    )
    .help(
        "Skip the background key check at start-up.",
        "跳过启动时的后台密钥检测。",
    ),
    Entry::new(
        "KEY_RECHECK_INTERVAL",
        Keys,
        duration(secs(1800), secs(1), secs(7 * 86_400), plain!(key_recheck_interval)),
    )
    .help(
        "How often invalid and suspended keys (and Vertex credentials) are checked again.",
        "失效与被停用的密钥（及 Vertex 凭据）多久重新检测一次。",
    ),
    Entry::new(
        "API_KEY_DAILY_LIMIT",
        Keys,
        int(100, 0, U32, int!(api_key_daily_limit)),
    )
    .key("api_key_daily_limit")
    .help(
        "Soft per-key daily cap: keys over it are skipped while another is under it (`0`: none).",
        "每个密钥每日的软上限：超过的密钥在有其他密钥未超时被跳过（`0` 为不限）。",
    ),
    Entry::new(
        "KEY_MAX_CONCURRENCY",
        Keys,
        int(0, 0, U32, int!(key_max_concurrency)),
    )
    .key("key_max_concurrency")
    .help(
        "Most upstream attempts in flight per key (`0`: unlimited).",
        "每个密钥同时进行的上游请求数上限（`0` 为不限）。",
    ),
    // ---- delivery ----
    Entry::new("FAKE_STREAMING", Delivery, flag(true, plain!(fake_streaming)))
        .key("fake_streaming")
        .help(
            "Serve `stream: true` with a complete upstream answer and keep-alive chunks while waiting (native Gemini streams too). `false`: real streaming.",
            "假流式：向上游请求完整回答，等待期间发送保活块（原生 Gemini 流式请求同样适用）。`false` 为真流式。",
        ),
    Entry::new(
        "FAKE_STREAMING_INTERVAL",
        Delivery,
        duration(secs(1), INTERVAL_RANGE.0, INTERVAL_RANGE.1, plain!(fake_streaming_interval)),
    )
    .key("fake_streaming_interval")
    .help(
        "Keep-alive interval of fake streaming.",
        "假流式的保活间隔。",
    ),
    Entry::new(
        "FAKE_STREAMING_CHUNK_SIZE",
        Delivery,
        int(10, 1, USIZE, int!(fake_streaming_chunk_size)),
    )
    .help(
        "HAJIMI's Vertex fake-streaming chunk size; read and kept.",
        "HAJIMI Vertex 假流式的分块大小；已读取并保留。",
    ),
    Entry::new(
        "FAKE_STREAMING_DELAY_PER_CHUNK",
        Delivery,
        duration(millis(100), Duration::ZERO, secs(60), plain!(fake_streaming_delay_per_chunk)),
    )
    .help(
        "HAJIMI's Vertex fake-streaming delay between chunks; read and kept.",
        "HAJIMI Vertex 假流式的分块间隔；已读取并保留。",
    ),
    Entry::new(
        "NONSTREAM_KEEPALIVE_ENABLED",
        Delivery,
        flag(true, plain!(nonstream_keepalive_enabled)),
    )
    .key("nonstream_keepalive_enabled")
    .help(
        "Whitespace keep-alives before a slow non-stream answer.",
        "非流式回答较慢时先发送空白字符保活。",
    ),
    Entry::new(
        "NONSTREAM_KEEPALIVE_INTERVAL",
        Delivery,
        duration(secs(5), INTERVAL_RANGE.0, INTERVAL_RANGE.1, plain!(nonstream_keepalive_interval)),
    )
    .key("nonstream_keepalive_interval")
    .help(
        "Interval of the non-stream keep-alives.",
        "非流式保活的间隔。",
    ),
    Entry::new("ENABLE_THINKING", Delivery, flag(true, plain!(enable_thinking)))
        .key("enable_thinking")
        .help(
            "Ask thinking models for their thoughts (`reasoning_content`).",
            "向思考模型请求思考内容（`reasoning_content`）。",
        ),
    Entry::new("RANDOM_STRING", Delivery, flag(true, plain!(random_string)))
        .key("random_string")
        .help(
            "HAJIMI's random-string disguise (two random user turns).",
            "HAJIMI 的伪装信息（两条随机用户消息）。",
        ),
    Entry::new(
        "RANDOM_STRING_LENGTH",
        Delivery,
        int(5, 1, RANDOM_STRING_LENGTH_MAX as i64, int!(random_string_length)),
    )
    .key("random_string_length")
    .help("Length of the random strings.", "伪装信息的长度。"),
    Entry::new("INBAND_ERRORS", Delivery, flag(false, plain!(inband_errors)))
        .key("inband_errors")
        .help(
            "HAJIMI's `role: \"error\"` in-band error completions (for SillyTavern).",
            "HAJIMI 的带内错误回答（`role: \"error\"`，供 SillyTavern 使用）。",
        ),
    // ---- retries and racing ----
    Entry::new("MAX_RETRY_NUM", Retries, int(15, 1, U32, int!(max_retry_num)))
        .key("max_retry_num")
        .help(
            "Most upstream attempts per request.",
            "每个请求最多尝试上游的次数。",
        ),
    Entry::new(
        "MAX_EMPTY_RESPONSES",
        Retries,
        int(5, 1, U32, int!(max_empty_responses)),
    )
    .key("max_empty_responses")
    .help(
        "Empty answers tolerated per request before a 502 (HAJIMI accepted 0, which refused every request).",
        "每个请求容忍的空回答次数，超过返回 502（HAJIMI 允许 0，会拒绝所有请求）。",
    ),
    Entry::new(
        "CONCURRENT_REQUESTS",
        Retries,
        int(1, 1, U32, int!(concurrent_requests)),
    )
    .key("concurrent_requests")
    .help(
        "HAJIMI's racing: keys tried at once for one request.",
        "HAJIMI 的并发请求：一个请求同时尝试的密钥数。",
    ),
    Entry::new(
        "INCREASE_CONCURRENT_ON_FAILURE",
        Retries,
        int(0, 0, U32, int!(increase_concurrent_on_failure)),
    )
    .key("increase_concurrent_on_failure")
    .help(
        "Keys added to the race after a failed batch.",
        "一批请求失败后增加的并发数。",
    ),
    Entry::new(
        "MAX_CONCURRENT_REQUESTS",
        Retries,
        int(3, 1, U32, int!(max_concurrent_requests)),
    )
    .key("max_concurrent_requests")
    .help("The cap of the race's growth.", "并发数的上限。"),
    Entry::new(
        "RACE_CANCEL_LOSERS",
        Retries,
        flag(false, plain!(race_cancel_losers)),
    )
    .key("race_cancel_losers")
    .help(
        "Cancel the other attempts of a race instead of caching their answers.",
        "一个请求成功后取消其他并发请求，而不是缓存它们的回答。",
    ),
    // ---- cache ----
    Entry::new(
        "CACHE_EXPIRY_TIME",
        Cache,
        Kind::Duration {
            default: secs(21_600),
            min: Duration::ZERO,
            max: secs(365 * 86_400),
            whole: true,
            field: plain!(cache_expiry_time),
        },
    )
    .key("cache_expiry_time")
    .help(
        "Lifetime of a cached answer (the dashboard uses whole seconds).",
        "缓存回答的有效期（面板以整秒设置）。",
    ),
    Entry::new(
        "MAX_CACHE_ENTRIES",
        Cache,
        int(500, 0, U32, int!(max_cache_entries)),
    )
    .key("max_cache_entries")
    .help("Most cached answers.", "最多缓存的回答数。"),
    Entry::new(
        "CALCULATE_CACHE_ENTRIES",
        Cache,
        int(6, 0, U32, int!(calculate_cache_entries)),
    )
    .key("calculate_cache_entries")
    .help(
        "Trailing messages that make up the cache key.",
        "计算缓存键时使用的最后几条消息数。",
    ),
    Entry::new("PRECISE_CACHE", Cache, flag(false, plain!(precise_cache)))
        .key("precise_cache")
        .help(
            "Use all messages in the cache key.",
            "缓存键使用全部消息。",
        ),
    Entry::new("PUBLIC_MODE", Cache, flag(false, plain!(public_mode)))
        .key("public_mode")
        .help(
            "Do not share one answer between identical requests in flight.",
            "不在同时进行的相同请求之间共享回答。",
        ),
    // ---- search ----
    Entry::new("SEARCH_MODE", Search, flag(false, plain!(search_mode)))
        .key("search_mode")
        .help(
            "`-search` model variants with Google Search grounding.",
            "提供带 Google 搜索的 `-search` 模型。",
        ),
    Entry::new(
        "SEARCH_PROMPT",
        Search,
        text(Value(DEFAULT_SEARCH_PROMPT), "text", text!(search_prompt)),
    )
    .key("search_prompt")
    .help(
        "Prompt added to `-search` requests (HAJIMI's by default).",
        "`-search` 请求附加的提示词（默认为 HAJIMI 的）。",
    ),
    // ---- models ----
    Entry::new(
        "BLOCKED_MODELS",
        Models,
        list(MODEL_LIST, list!(blocked_models, model_names)),
    )
    .key("blocked_models")
    .help("Hide and refuse these models.", "隐藏并拒绝这些模型。"),
    Entry::new(
        "WHITELIST_MODELS",
        Models,
        list(MODEL_LIST, list!(whitelist_models, model_names)),
    )
    .key("whitelist_models")
    .help(
        "When set, only these models are listed and served (the whitelist wins over the blocklist).",
        "设置后只列出并提供这些模型（白名单优先于黑名单）。",
    ),
    Entry::new(
        "EXTRA_MODELS",
        Models,
        list(MODEL_LIST, list!(extra_models, model_names)),
    )
    .key("extra_models")
    .help(
        "Extra model ids appended to the list.",
        "追加到模型列表的模型。",
    ),
    Entry::new(
        "MODEL_ALIASES",
        Models,
        text(Unset, "`alias=model` entries, comma- or newline-separated", Checked {
            get: |s| (!s.model_aliases.is_empty()).then(|| s.model_aliases.to_string()),
            set: set_model_aliases,
        }),
    )
    .help(
        "Client model names mapped to Gemini models on every route (chat, Messages, Responses, native, embeddings), e.g. `claude-sonnet-4-5=gemini-2.5-pro, claude-haiku-*=gemini-2.5-flash` (a trailing `*` matches a prefix).",
        "客户端模型名到 Gemini 模型的映射，适用于所有接口（chat、Messages、Responses、原生、embeddings），如 `claude-sonnet-4-5=gemini-2.5-pro, claude-haiku-*=gemini-2.5-flash`（结尾的 `*` 匹配前缀）。",
    ),
    // ---- request limits ----
    Entry::new(
        "MAX_BODY_SIZE",
        Limits,
        size(64 * MIB, 1024, plain!(max_body_size)),
    )
    .help(
        "Largest request body; larger → 413.",
        "请求体的最大字节数；超过返回 413。",
    ),
    Entry::new("MAX_MESSAGES", Limits, int(20_000, 1, USIZE, int!(max_messages)))
        .help(
            "Most messages in one request (native routes: `contents`), counted while the body is read; more → 400 naming the limit. 20,000 short turns (~50 tokens each) already fill a 1M-token context, so long SillyTavern chats and agent sessions stay well below it.",
            "单个请求的最多消息数（原生接口为 `contents`），读取请求体时计数；超过返回 400。两万条短消息已能填满 1M token 的上下文。",
        ),
    Entry::new(
        "MAX_CONTENT_PARTS",
        Limits,
        int(50_000, 1, USIZE, int!(max_content_parts)),
    )
    .help(
        "Most content parts (texts, images, audio, files, tool calls) in one request, all messages together, counted while the body is read; more → 400. Room for agents that send every message as a list of parts (Gemini itself takes at most 3,600 images), while a body of tiny parts expands to at most ~40 MB in memory.",
        "单个请求所有消息合计的最多内容块数（文本、图片、音频、文件、工具调用），读取请求体时计数；超过返回 400。",
    ),
    Entry::new(
        "MAX_FETCHED_BYTES",
        Limits,
        size(20 * MIB, 1024, plain!(max_fetched_bytes)),
    )
    .help(
        "Most bytes downloaded for one request's remote `image_url`s, all images together, counted as they arrive; more → 400 and nothing goes upstream. 20 MB was Gemini's inline request limit until 2026 and is the per-image limit here; Google now takes up to 100 MB of base64 inline (~75 MB of files): raise it that far if you need, at ~2.5× its size in memory per request.",
        "单个请求下载远程 `image_url` 的总字节数上限，边下载边计数；超过返回 400，不发往上游。",
    ),
    Entry::new(
        "MAX_CONNECTIONS_PER_IP",
        Limits,
        int(4096, 0, U32, int!(max_connections_per_ip)),
    )
    .help(
        "Open connections per client address (IPv6: per /64); more are closed at once. Loopback peers and `TRUSTED_PROXIES` are exempt (so `TRUSTED_PROXIES=*` turns it off); `0`: no cap.",
        "每个客户端地址（IPv6 按 /64）的最多连接数，超出的连接立即关闭；回环地址与 `TRUSTED_PROXIES` 不受限；`0` 为不限。",
    ),
    Entry::new(
        "HEADER_READ_TIMEOUT",
        Limits,
        duration(secs(30), millis(100), secs(3600), plain!(header_read_timeout)),
    )
    .restart()
    .help(
        "Time a client has to send a request's head: from connecting, and on HTTP/1 from the end of the previous response. A connection that sends nothing is closed.",
        "客户端发送请求头的时限：从连接建立起算，HTTP/1 从上一个响应结束起算。",
    ),
    Entry::new(
        "KEEPALIVE_TIMEOUT",
        Limits,
        duration(secs(30), millis(100), secs(3600), plain!(keepalive_timeout)),
    )
    .restart()
    .help(
        "A connection (HTTP/1 or HTTP/2) with no request in progress is closed this long after its last response. Neither timeout cuts an answer being sent: long streams and slow answers last as long as they need.",
        "没有进行中请求的连接在最后一个响应后经过此时长关闭；不会中断正在发送的回答。",
    ),
    // ---- upstream ----
    Entry::new(
        "GEMINI_BASE_URL",
        Upstream,
        text(Value(DEFAULT_GEMINI_BASE_URL), URL, Checked {
            get: |s| Some(s.gemini_base_url.clone()),
            set: |s, v| {
                s.gemini_base_url = base_url(v.as_deref().unwrap_or_default())?;
                Ok(())
            },
        }),
    )
    .help(
        "Where every AI Studio call goes (a trailing `/` or `/v1beta` is stripped).",
        "所有 AI Studio 请求的地址（去掉结尾的 `/` 或 `/v1beta`）。",
    ),
    Entry::new("HTTPS_PROXY", Upstream, text(Unset, URL, proxy!(https)))
        .alias("https_proxy")
        .restart()
        .help(
            "Outbound proxy for upstream calls (`http://`, `socks5://`); loopback is never proxied.",
            "上游请求的出站代理（`http://`、`socks5://`）；回环地址不走代理。",
        ),
    Entry::new("HTTP_PROXY", Upstream, text(Unset, URL, proxy!(http)))
        .alias("http_proxy")
        .restart()
        .help(
            "Outbound proxy for plain-http upstreams.",
            "http 上游的出站代理。",
        ),
    Entry::new("ALL_PROXY", Upstream, text(Unset, URL, proxy!(all)))
        .alias("all_proxy")
        .restart()
        .help(
            "Outbound proxy when `HTTPS_PROXY` is not set.",
            "未设置 `HTTPS_PROXY` 时使用的出站代理。",
        ),
    Entry::new("NO_PROXY", Upstream, text(Unset, "comma-separated hosts", proxy!(no_proxy)))
        .alias("no_proxy")
        .restart()
        .help("Hosts reached without the proxy.", "不走代理的主机。"),
    Entry::new(
        "UPSTREAM_CONNECT_TIMEOUT",
        Upstream,
        duration(secs(10), millis(100), secs(300), plain!(upstream_connect_timeout)),
    )
    .restart()
    .help("TCP/TLS connect timeout.", "TCP/TLS 连接超时。"),
    Entry::new(
        "UPSTREAM_TIMEOUT",
        Upstream,
        duration(secs(600), millis(100), secs(86_400), plain!(upstream_timeout)),
    )
    .restart()
    .help(
        "Longest wait for response headers or between two bytes of an answer (an idle timeout, not a total).",
        "等待响应头或回答中两个字节之间的最长时间（空闲超时，不是总时长）。",
    ),
    Entry::new(
        "REQUEST_DEADLINE",
        Upstream,
        duration(secs(900), millis(100), secs(86_400), plain!(request_deadline)),
    )
    .help(
        "Bound on all attempts of one request until its first byte reaches the client.",
        "一个请求的所有尝试在第一个字节送达客户端前的总时限。",
    ),
    Entry::new(
        "IMAGE_FETCH_ALLOW_LOOPBACK",
        Upstream,
        flag(false, plain!(image_fetch_allow_loopback)),
    )
    .restart()
    .help(
        "Test only: let `image_url` fetching reach loopback.",
        "仅供测试：允许下载回环地址的 `image_url`。",
    ),
    // ---- server ----
    Entry::new(
        "HOST",
        Server,
        text(Value("0.0.0.0"), "IP address or `localhost`", Checked {
            get: |s| Some(s.host.clone()),
            set: set_host,
        }),
    )
    .restart()
    .help("Listen address (`--host`).", "监听地址（`--host`）。"),
    Entry::new("PORT", Server, int(7860, 0, 65_535, int!(port)))
        .restart()
        .help(
            "Listen port (`--port`; `0` picks a free port).",
            "监听端口（`--port`；`0` 自动选择空闲端口）。",
        ),
    Entry::new(
        "TRUSTED_PROXIES",
        Server,
        list("comma-separated CIDRs, or `*`", Checked {
            get: |s| match &s.trusted_proxies {
                TrustedProxies::None => Vec::new(),
                TrustedProxies::Any => vec!["*".to_owned()],
                TrustedProxies::Nets(nets) => nets.iter().map(ToString::to_string).collect(),
            },
            set: set_trusted_proxies,
        }),
    )
    .help(
        "CIDRs of reverse proxies whose `X-Forwarded-For` is believed (`*`: the one proxy in front).",
        "可信反向代理的 CIDR，其 `X-Forwarded-For` 会被采信（`*`：前面只有一个代理）。",
    ),
    Entry::new(
        "ALLOWED_ORIGINS",
        Server,
        list("comma-separated origins, or `*`", list!(allowed_origins, |v| v)),
    )
    .restart()
    .help(
        "CORS allow-list; unset = no CORS. Listed origins may send credentials; `*` answers `Access-Control-Allow-Origin: *` without credentials.",
        "CORS 允许的来源；未设置则不启用 CORS。`*` 允许任意来源但不带凭据。",
    ),
    Entry::new(
        "DASHBOARD_URL",
        Server,
        text(Unset, "a path", Checked {
            get: |s| s.dashboard_url.clone(),
            set: |s, v| {
                s.dashboard_url = v
                    .map(|x| x.trim_matches('/').to_owned())
                    .filter(|x| !x.is_empty());
                Ok(())
            },
        }),
    )
    .restart()
    .help(
        "Serve the page at `/{DASHBOARD_URL}` instead of `/`.",
        "在 `/{DASHBOARD_URL}` 而不是 `/` 提供页面。",
    ),
    Entry::new("ENABLE_STORAGE", Server, flag(true, plain!(enable_storage)))
        .restart()
        .help(
            "Persist settings, keys, key states and statistics in SQLite.",
            "在 SQLite 中保存设置、密钥、密钥状态和统计。",
        ),
    Entry::new(
        "STORAGE_DIR",
        Server,
        text(
            Computed("`/hajimi/settings` if it exists, else `./data`"),
            "a directory",
            Checked {
                get: |s| Some(s.storage_dir.path.display().to_string()),
                set: set_storage_dir,
            },
        ),
    )
    .restart()
    .help(
        "Where the database lives (HAJIMI's `settings.json` there is imported once).",
        "数据库所在目录（其中 HAJIMI 的 `settings.json` 会被导入一次）。",
    ),
    Entry::new(
        "STATS_RESET_TIMEZONE",
        Server,
        text(Value("America/Los_Angeles"), "IANA time zone", Checked {
            get: |s| Some(s.stats_reset_timezone.name().to_owned()),
            set: |s, v| {
                s.stats_reset_timezone = Zone::parse(v.as_deref().unwrap_or_default())
                    .ok_or(Expected::new(
                        "an IANA time zone such as America/Los_Angeles",
                        "IANA 时区名（如 America/Los_Angeles）",
                    ))?;
                Ok(())
            },
        }),
    )
    .restart()
    .help(
        "Time zone whose midnight resets daily counters (Google's quota reset).",
        "每日计数在该时区的午夜重置（Google 配额的重置时间）。",
    ),
    Entry::new(
        "LOG_FORMAT",
        Server,
        text(Value("text"), "`text` or `json`", Checked {
            get: |s| {
                Some(match s.log_format {
                    LogFormat::Text => "text".to_owned(),
                    LogFormat::Json => "json".to_owned(),
                })
            },
            set: |s, v| {
                s.log_format = match v.unwrap_or_default().to_ascii_lowercase().as_str() {
                    "text" | "pretty" | "plain" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(Expected::new("text or json", "text 或 json")),
                };
                Ok(())
            },
        }),
    )
    .restart()
    .help(
        "`text`, or `json` (one JSON object per line).",
        "`text`，或 `json`（每行一个 JSON 对象）。",
    ),
    Entry::new(
        "LOG_LEVEL",
        Server,
        text(Value("info"), "`error`, `warn`, `info`, `debug` or `trace`", Checked {
            get: |s| Some(s.log_level.clone()),
            set: |s, v| {
                let level = v.unwrap_or_default().to_ascii_lowercase();
                if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
                    return Err(Expected::new(
                        "error, warn, info, debug or trace (RUST_LOG takes filter directives)",
                        "error、warn、info、debug 或 trace 之一（过滤规则请用 RUST_LOG）",
                    ));
                }
                s.log_level = level;
                Ok(())
            },
        }),
    )
    .restart()
    .help(
        "Anything else stops start-up. Filter directives go in `RUST_LOG`.",
        "其他值会停止启动；过滤规则请用 `RUST_LOG`。",
    ),
    Entry::new(
        "METRICS_PASSWORD",
        Server,
        text(Unset, "text", opt_secret!(metrics_password)),
    )
    .secret(Mask::Password)
    .help(
        "Require `Authorization: Bearer` for `/metrics`.",
        "访问 `/metrics` 需要 `Authorization: Bearer`。",
    ),
    Entry::new("REDIS_URL", Server, text(Unset, URL, opt_secret!(redis_url)))
        .secret(Mask::Plain)
        .restart()
        .help(
            "Shared state across instances (later).",
            "多实例共享状态（以后支持）。",
        ),
    // ---- Vertex ----
    Entry::new("ENABLE_VERTEX", Vertex, flag(false, plain!(enable_vertex)))
        .key("enable_vertex")
        .help(
            "Vertex AI mode (live): `/v1/chat/completions`, `/chat/completions`, `/v1/models`, `/models`, `/v1/messages` and `/v1/responses` go to Vertex AI through the same credential pool, retries and statistics; native Gemini routes and `/aistudio/*` stay on AI Studio. `/vertex/*` always uses Vertex. Without any Vertex credential, Vertex requests answer 503.",
            "Vertex AI 模式（即时生效）：`/v1/chat/completions`、`/chat/completions`、`/v1/models`、`/models`、`/v1/messages`、`/v1/responses` 走 Vertex AI，使用同一凭据池、重试与统计；原生 Gemini 路径和 `/aistudio/*` 仍走 AI Studio。`/vertex/*` 始终走 Vertex。没有任何 Vertex 凭据时，Vertex 请求返回 503。",
        ),
    Entry::new(
        "ENABLE_VERTEX_EXPRESS",
        Vertex,
        flag(false, plain!(enable_vertex_express)),
    )
    .key("enable_vertex_express")
    .help(
        "HAJIMI's express-mode switch; read and kept (as in HAJIMI, express keys are used whenever `VERTEX_EXPRESS_API_KEY` is set).",
        "HAJIMI 的快速模式开关；已读取并保留（与 HAJIMI 相同，只要设置了 `VERTEX_EXPRESS_API_KEY` 就会使用快速模式密钥）。",
    ),
    Entry::new(
        "GOOGLE_CREDENTIALS_JSON",
        Vertex,
        text(Unset, "service-account JSON", Checked {
            get: |s| s.google_credentials_json.as_ref().map(|x| x.expose().to_owned()),
            set: set_credentials,
        }),
    )
    .key("google_credentials_json")
    .secret(Mask::Whole)
    .help(
        "Service-account key JSON for Vertex AI: one object, a JSON array, or several objects one after another (more: `*.json` files in `STORAGE_DIR/credentials`); each account is a credential of the pool. Set but without a usable account, start-up stops (exit 2).",
        "Vertex AI 的服务账号密钥 JSON：单个对象、JSON 数组或多个连续对象（也可把 `*.json` 文件放在 `STORAGE_DIR/credentials`）；每个账号都是凭据池中的一个凭据。已设置但没有可用账号时停止启动（退出码 2）。",
    ),
    Entry::new(
        "VERTEX_EXPRESS_API_KEY",
        Vertex,
        list(
            COMMA_LIST,
            Checked {
                get: |s| {
                    s.vertex_express_api_key
                        .iter()
                        .map(|k| k.expose().to_owned())
                        .collect()
                },
                set: |s, v| {
                    s.vertex_express_api_key = v.into_iter().map(Secret::new).collect();
                    Ok(())
                },
            },
        ),
    )
    .key("vertex_express_api_key")
    .secret(Mask::Keys)
    .help(
        "Vertex AI express API keys (`x-goog-api-key`, no project); models named `[EXPRESS] …` use only these.",
        "Vertex AI 快速模式 API 密钥（`x-goog-api-key`，无需项目）；名为 `[EXPRESS] …` 的模型只使用这些密钥。",
    ),
    Entry::new(
        "VERTEX_PROJECT_ID",
        Vertex,
        text(Unset, "project id", Checked {
            get: |s| s.vertex_project_id.clone(),
            set: |s, v| {
                if v
                    .as_deref()
                    .is_some_and(|p| !crate::config::vertex::valid_project_id(p))
                {
                    return Err(Expected::new(
                        "a Google Cloud project id",
                        "Google Cloud 项目 ID",
                    ));
                }
                s.vertex_project_id = v;
                Ok(())
            },
        }),
    )
    .help(
        "Replaces the service account's `project_id` in Vertex paths.",
        "替换 Vertex 路径中服务账号的 `project_id`。",
    ),
    Entry::new(
        "VERTEX_LOCATION",
        Vertex,
        text(Value("global"), "`global` or a region such as `us-central1`", Checked {
            get: |s| Some(s.vertex_location.clone()),
            set: |s, v| {
                let location = v.unwrap_or_default();
                if !crate::config::vertex::valid_vertex_location(&location) {
                    return Err(Expected::new(
                        "global or a Google Cloud region such as us-central1",
                        "global 或 Google Cloud 区域（如 us-central1）",
                    ));
                }
                s.vertex_location = location;
                Ok(())
            },
        }),
    )
    .help(
        "Vertex AI location of the service accounts' calls (`projects/{project}/locations/{location}`).",
        "服务账号请求使用的 Vertex AI 区域（`projects/{project}/locations/{location}`）。",
    ),
    Entry::new(
        "VERTEX_BASE_URL",
        Vertex,
        text(
            Computed(
                "`https://aiplatform.googleapis.com` for `global`, else `https://{VERTEX_LOCATION}-aiplatform.googleapis.com`",
            ),
            URL,
            Checked {
                get: |s| Some(s.vertex_base_url.clone()),
                set: |s, v| {
                    s.vertex_base_url = match v {
                        Some(url) => base_url(&url)?,
                        None => crate::config::vertex::vertex_default_base(&s.vertex_location)
                            .unwrap_or_default(),
                    };
                    Ok(())
                },
            },
        ),
    )
    .help(
        "Where Vertex AI calls go (tests point it at a mock).",
        "Vertex AI 请求的地址（测试时指向模拟服务）。",
    ),
    Entry::new(
        "VERTEX_MODELS_CONFIG_URL",
        Vertex,
        text(
            Value(DEFAULT_VERTEX_MODELS_CONFIG_URL),
            URL,
            text!(vertex_models_config_url),
        ),
    )
    .help(
        "HAJIMI's remote Vertex model list; read and kept (the model list comes from Vertex's publisher models, else a built-in list).",
        "HAJIMI 的远程 Vertex 模型列表；已读取并保留（模型列表取自 Vertex 的 publisher models，取不到时用内置列表）。",
    ),
];

/// An http(s) base URL without a trailing `/` or version path.
fn base_url(raw: &str) -> Result<String, Expected> {
    let url = normalise_base_url(raw);
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err(Expected::new("an http(s) URL", "http(s) 地址"))
    }
}

fn set_host(s: &mut Settings, v: Option<String>) -> Result<(), Expected> {
    let host = v.unwrap_or_default();
    if host.parse::<IpAddr>().is_err() && host != "localhost" {
        return Err(Expected::new(
            "an IP address such as 0.0.0.0",
            "IP 地址（如 0.0.0.0）",
        ));
    }
    s.host = host;
    Ok(())
}

fn set_trusted_proxies(s: &mut Settings, entries: Vec<String>) -> Result<(), Expected> {
    s.trusted_proxies = if entries.is_empty() {
        TrustedProxies::None
    } else if entries.iter().any(|e| e == "*") {
        TrustedProxies::Any
    } else {
        let nets = entries
            .iter()
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                Expected::new(
                    "CIDRs such as 10.0.0.0/8, or *",
                    "CIDR 列表（如 10.0.0.0/8）或 *",
                )
            })?;
        TrustedProxies::Nets(nets)
    };
    Ok(())
}

/// An explicit directory, else HAJIMI's Docker volume when it exists, else `./data`.
fn set_storage_dir(s: &mut Settings, v: Option<String>) -> Result<(), Expected> {
    s.storage_dir = match v {
        Some(dir) => StorageDir {
            path: PathBuf::from(dir),
            explicit: true,
        },
        None => {
            let volume = Path::new("/hajimi/settings");
            StorageDir {
                path: if volume.is_dir() {
                    volume.to_path_buf()
                } else {
                    PathBuf::from("./data")
                },
                explicit: false,
            }
        }
    };
    Ok(())
}

fn set_model_aliases(s: &mut Settings, v: Option<String>) -> Result<(), Expected> {
    s.model_aliases = crate::translate::aliases::ModelAliases::parse(&v.unwrap_or_default())
        .map_err(|e| Expected {
            en: format!("alias=model entries ({e})").into(),
            zh: format!("alias=model 列表（{e}）").into(),
        })?;
    Ok(())
}

/// HAJIMI's empty forms (`''`, `""`, blank) mean unset; anything else must hold at least one
/// usable service account (the same check from the environment and the dashboard).
fn set_credentials(s: &mut Settings, v: Option<String>) -> Result<(), Expected> {
    let text = v.filter(|t| {
        let t = t.trim();
        !(t.is_empty() || t == "''" || t == "\"\"")
    });
    if let Some(text) = &text {
        let loaded = crate::config::credentials::parse_credentials_json(text);
        if loaded.accounts.is_empty() {
            let problems: Vec<String> = loaded.problems.iter().map(|p| p.message()).collect();
            return Err(Expected {
                en: format!(
                    "service-account JSON holding at least one usable account ({})",
                    problems.join("; ")
                )
                .into(),
                zh: "含至少一个可用服务账号的 JSON".into(),
            });
        }
    }
    s.google_credentials_json = text.map(Secret::new);
    Ok(())
}
