//! The dashboard's two languages, zh-CN and English: every label and message of the pages,
//! chosen from the `hajimi_lang` cookie (set by the language switch) or else from
//! `Accept-Language` (Chinese when nothing says otherwise: most users read Chinese).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::HeaderMap;

/// The language cookie's name.
pub const COOKIE: &str = "hajimi_lang";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "zh" | "zh-CN" => Some(Self::Zh),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Zh => "zh",
            Self::En => "en",
        }
    }

    /// The `lang` attribute of the page.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Zh => "zh-CN",
            Self::En => "en",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::Zh => Self::En,
            Self::En => Self::Zh,
        }
    }

    /// From the cookie, else the first of `zh`/`en` in `Accept-Language` (by weight).
    pub fn of(headers: &HeaderMap) -> Self {
        if let Some(lang) = super::auth::cookie(headers, COOKIE).and_then(Self::parse) {
            return lang;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut best: Option<(f32, Self)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                .unwrap_or(1.0_f32);
            let lang = if tag.starts_with("zh") {
                Self::Zh
            } else if tag.starts_with("en") {
                Self::En
            } else {
                continue;
            };
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Self::Zh, |(_, l)| l)
    }

    /// One label.
    pub fn t(self, key: &str) -> &'static str {
        LABELS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, zh, en)| if self == Self::Zh { zh } else { en })
    }

    /// Every label in this language (the templates' `T`).
    pub fn labels(self) -> &'static BTreeMap<&'static str, &'static str> {
        static ZH: OnceLock<BTreeMap<&str, &str>> = OnceLock::new();
        static EN: OnceLock<BTreeMap<&str, &str>> = OnceLock::new();
        let cell = if self == Self::Zh { &ZH } else { &EN };
        cell.get_or_init(|| LABELS.iter().map(|(k, _, _)| (*k, self.t(k))).collect())
    }
}

/// (key, zh-CN, English).
pub const LABELS: &[(&str, &str, &str)] = &[
    ("lang_name", "中文", "English"),
    ("switch_lang", "English", "中文"),
    ("theme", "切换深色/浅色", "Toggle dark/light"),
    ("skip", "跳到正文", "Skip to content"),
    ("running", "hajimi 正在运行", "hajimi is running"),
    ("version", "版本", "Version"),
    ("uptime", "运行时间", "Uptime"),
    ("keys", "密钥", "Keys"),
    ("usable", "可用", "Usable"),
    ("cooling", "冷却中", "Cooling"),
    ("exhausted", "今日额度用尽", "Exhausted"),
    ("invalid", "无效", "Invalid"),
    ("suspended", "已封禁", "Suspended"),
    ("calls_today", "今日调用", "Calls today"),
    (
        "base_url",
        "客户端地址（填入 SillyTavern 等客户端）",
        "Base URL for clients (SillyTavern, SDKs)",
    ),
    ("copy", "复制", "Copy"),
    ("copied", "已复制", "Copied"),
    ("login", "登录", "Log in"),
    ("logout", "退出登录", "Log out"),
    (
        "password",
        "面板密码（WEB_PASSWORD）",
        "Dashboard password (WEB_PASSWORD)",
    ),
    ("login_failed", "密码错误", "Wrong password"),
    ("login_title", "登录控制台", "Log in to the dashboard"),
    (
        "login_new_tab",
        "此页面嵌在其他网站中（如 Hugging Face 的 Space 页面），登录后将在新标签页中打开控制台。",
        "This page is shown inside another site (such as a Hugging Face Space page): logging in opens the dashboard in a new tab.",
    ),
    ("to_dashboard", "进入控制台", "Open the dashboard"),
    ("overview", "概览", "Overview"),
    ("settings", "设置", "Settings"),
    ("logs", "日志", "Logs"),
    ("models", "模型", "Models"),
    ("last_minute", "最近 1 分钟", "Last minute"),
    ("last_hour", "最近 1 小时", "Last hour"),
    ("last_day", "最近 24 小时", "Last 24 h"),
    ("calls", "调用", "Calls"),
    ("tokens", "Tokens", "Tokens"),
    ("success_rate", "成功率（24 小时）", "Success rate (24 h)"),
    (
        "latency",
        "延迟 p50 / p95（最近 1 小时）",
        "Latency p50 / p95 (last hour)",
    ),
    ("no_data", "暂无数据", "No data yet"),
    (
        "reset_note",
        "每日计数在洛杉矶时间 00:00（= 北京时间 16:00，夏令时 15:00）重置，与 Google 的免费额度重置时间一致。",
        "Daily counters reset at 00:00 Los Angeles time (= 16:00 Beijing, 15:00 in US summer time), when Google resets free quotas.",
    ),
    ("reset_zone", "重置时区", "Reset time zone"),
    (
        "chart_24h",
        "最近 24 小时（每小时）",
        "Last 24 hours (hourly)",
    ),
    (
        "per_model_24h",
        "各模型调用（最近 24 小时，每小时）",
        "Calls per model (last 24 h, hourly)",
    ),
    (
        "per_key_24h",
        "各密钥调用（最近 24 小时，每小时）",
        "Calls per key (last 24 h, hourly)",
    ),
    ("per_model_today", "今日各模型调用", "Calls per model today"),
    ("per_key_today", "今日各密钥调用", "Calls per key today"),
    (
        "per_dialect_today",
        "今日各接口协议请求",
        "Requests per client protocol today",
    ),
    ("dialect_openai", "OpenAI Chat", "OpenAI Chat"),
    ("dialect_gemini", "Gemini 原生", "Gemini native"),
    (
        "dialect_anthropic",
        "Anthropic Messages",
        "Anthropic Messages",
    ),
    ("dialect_responses", "OpenAI Responses", "OpenAI Responses"),
    ("failed", "失败", "failed"),
    ("reset_stats", "重置统计", "Reset statistics"),
    (
        "confirm_reset_stats",
        "确定清除所有调用统计？",
        "Clear every usage statistic?",
    ),
    ("stats_reset", "统计已重置", "Statistics reset"),
    ("search_models", "联网搜索模型", "Search models"),
    ("standard_models", "标准模型", "Standard models"),
    ("live", "每 5 秒自动刷新", "Refreshes every 5 s"),
    ("add_keys", "添加密钥", "Add keys"),
    (
        "paste_hint",
        "粘贴任意文本：每个 AIza… 密钥都会被识别（任意分隔符）",
        "Paste any text: every AIza… key in it is found (any separators)",
    ),
    ("add_and_test", "添加并检测", "Add and test"),
    ("added_new", "新增", "New"),
    ("duplicate", "重复", "Duplicate"),
    ("not_key", "不像密钥", "Not key-shaped"),
    ("test_all", "检测全部", "Test all"),
    ("test_selected", "检测所选", "Test selected"),
    ("reset_selected", "重置所选状态", "Reset selected"),
    ("remove_selected", "删除所选", "Remove selected"),
    ("clear_invalid", "清除无效密钥", "Clear invalid keys"),
    (
        "confirm_clear",
        "确定删除所有无效和被封禁的密钥？",
        "Remove every invalid and suspended key?",
    ),
    (
        "confirm_remove",
        "确定删除所选密钥？",
        "Remove the selected keys?",
    ),
    ("export", "导出可用密钥", "Export usable keys"),
    (
        "export_confirm",
        "我明白导出会显示完整密钥",
        "I understand the export shows full keys",
    ),
    (
        "export_title",
        "可用密钥（完整，请妥善保管）",
        "Usable keys (full — keep them safe)",
    ),
    ("testing", "检测中", "Testing"),
    ("test_done", "检测完成", "Test finished"),
    ("valid", "有效", "valid"),
    ("state", "状态", "State"),
    ("all", "全部", "All"),
    ("key", "密钥", "Key"),
    (
        "today_vs_limit",
        "今日调用 / 每日上限",
        "Today / daily limit",
    ),
    ("last_error", "最近错误", "Last error"),
    ("source", "来源", "Source"),
    ("until", "直到", "until"),
    ("since", "自", "since"),
    (
        "no_keys",
        "还没有密钥。在上方粘贴后添加。",
        "No keys yet. Paste some above.",
    ),
    ("sort", "排序", "Sort"),
    ("sort_state", "按状态", "By state"),
    ("sort_calls", "按今日调用", "By calls today"),
    ("sort_key", "按密钥", "By key"),
    ("pages", "分页", "Pages"),
    ("prev", "上一页", "Previous"),
    ("next", "下一页", "Next"),
    ("select_all", "全选本页", "Select the whole page"),
    ("select", "选择", "Select"),
    ("unlimited", "不限", "no limit"),
    ("done", "完成", "Done"),
    ("reset_n", "已重置", "Reset"),
    ("removed_n", "已删除", "Removed"),
    ("started", "检测已开始", "Test started"),
    ("nothing_selected", "未选择密钥", "No key selected"),
    ("environment", "环境变量", "environment"),
    ("env", "环境变量", "environment"),
    ("dot_env", ".env 文件", ".env file"),
    ("cli", "命令行", "command line"),
    ("dashboard", "面板", "dashboard"),
    ("default", "默认", "default"),
    ("save", "保存", "Save"),
    (
        "unchanged",
        "未修改（留空保留原值）",
        "Unchanged (empty keeps the value)",
    ),
    (
        "applied",
        "已生效（下一个请求起）",
        "Applied (from the next request)",
    ),
    (
        "fixed_settings",
        "仅能通过环境变量设置（重启生效）",
        "Set in the environment only (restart to change)",
    ),
    ("restart", "需重启生效", "Needs a restart"),
    ("bounds", "范围", "Range"),
    (
        "secret_set",
        "已设置（留空不修改）",
        "Set (leave empty to keep)",
    ),
    ("secret_unset", "未设置", "Not set"),
    ("error", "错误", "Error"),
    ("time", "时间", "Time"),
    ("route", "路由", "Route"),
    ("model", "模型", "Model"),
    ("status", "状态码", "Status"),
    ("kind", "类型", "Kind"),
    ("message", "信息", "Message"),
    ("level", "级别", "Level"),
    ("filter", "筛选", "Filter"),
    ("only_errors", "仅错误", "Errors only"),
    ("search_text", "包含文字", "Containing"),
    ("live_tail", "实时追加新日志", "Live tail"),
    ("no_logs", "暂无日志", "No log entries"),
    (
        "visible_models",
        "客户端可见的模型（含搜索变体）",
        "Models clients see (with search variants)",
    ),
    (
        "no_models",
        "模型列表尚未加载（需要可用密钥）",
        "The model list is not loaded yet (needs a usable key)",
    ),
    (
        "whitelist",
        "模型白名单（留空：不限制）",
        "Model whitelist (empty: all)",
    ),
    ("blacklist", "模型黑名单", "Model blacklist"),
    ("extra_models", "额外模型", "Extra models"),
    (
        "one_per_line",
        "每行一个，或用逗号分隔",
        "One per line, or comma separated",
    ),
    (
        "forbidden",
        "会话已过期或 CSRF 令牌错误，请刷新页面",
        "Session expired or wrong CSRF token; reload the page",
    ),
    ("storage", "存储", "Storage"),
    (
        "memory_only",
        "仅内存（重启后丢失）",
        "Memory only (lost on restart)",
    ),
    (
        "no_secrets",
        "此页不显示任何密钥或设置。",
        "No keys or settings are shown on this page.",
    ),
    ("group_basic", "基本配置", "Basic"),
    (
        "e_key_invalid",
        "密钥无效（API_KEY_INVALID）",
        "Key invalid (API_KEY_INVALID)",
    ),
    (
        "e_key_suspended",
        "密钥被封禁或拒绝（403）",
        "Key suspended or denied (403)",
    ),
    (
        "e_key_no_access",
        "无权限（需开通结算）",
        "No access (billing needed)",
    ),
    ("e_quota_daily", "今日额度用尽", "Daily quota exhausted"),
    ("e_quota", "额度限制（429）", "Rate limited (429)"),
    (
        "e_overloaded",
        "上游过载（503）",
        "Upstream overloaded (503)",
    ),
    ("e_timeout", "超时", "Timeout"),
    ("e_connection", "连接失败", "Connection failed"),
    ("e_server_error", "上游错误（5xx）", "Upstream error (5xx)"),
    ("state_usable", "可用", "usable"),
    ("state_cooling", "冷却中", "cooling"),
    ("state_exhausted", "今日用尽", "exhausted"),
    ("state_invalid", "无效", "invalid"),
    ("state_suspended", "已封禁", "suspended"),
    ("not_verified", "未检测", "not checked yet"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_language_comes_from_the_cookie_then_accept_language_then_chinese() {
        assert_eq!(Lang::of(&headers(&[])), Lang::Zh);
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "en-US,en;q=0.9")])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "en;q=0.5, zh-TW;q=0.8")])),
            Lang::Zh,
            "by weight"
        );
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "fr, de")])),
            Lang::Zh
        );
        assert_eq!(
            Lang::of(&headers(&[
                ("accept-language", "zh"),
                ("cookie", "a=1; hajimi_lang=en")
            ])),
            Lang::En
        );
    }

    /// Every label a template uses exists, in both languages, once.
    #[test]
    fn every_label_is_translated() {
        let mut seen = std::collections::HashSet::new();
        for (key, zh, en) in LABELS {
            assert!(seen.insert(*key), "{key} twice");
            assert!(!zh.is_empty() && !en.is_empty(), "{key}");
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/templates");
        let mut used = Vec::new();
        for file in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}")) {
            let path = file.unwrap_or_else(|e| panic!("{e}")).path();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            for part in text.split("T.").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                used.push((path.display().to_string(), name));
            }
            for part in text.split("T[\"").skip(1) {
                let name: String = part.chars().take_while(|c| *c != '"').collect();
                // `T["state_" ~ status]`: a prefix, checked below.
                if !part[name.len()..].starts_with("\" ~") {
                    used.push((path.display().to_string(), name));
                }
            }
        }
        assert!(used.len() > 50);
        for (file, name) in used {
            assert!(seen.contains(name.as_str()), "{file}: label {name} missing");
        }
        // Labels looked up by a value: key states, sources, failure kinds, dialects.
        for dialect in ["openai", "gemini", "anthropic", "responses"] {
            assert!(
                seen.contains(format!("dialect_{dialect}").as_str()),
                "{dialect}"
            );
        }
        for status in ["usable", "cooling", "exhausted", "invalid", "suspended"] {
            assert!(
                seen.contains(format!("state_{status}").as_str()),
                "{status}"
            );
        }
        for source in [
            "environment",
            "env",
            "dot_env",
            "cli",
            "dashboard",
            "default",
        ] {
            assert!(seen.contains(source), "{source}");
        }
    }
}
