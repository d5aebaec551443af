//! Waits said for people (issue 8, decisions §3): when no key can serve for a long while, the
//! client is told how long in hours and minutes and at what time the keys come back, in
//! Beijing and Los Angeles time (Google's quota resets at midnight in Los Angeles; most of
//! hajimi's users read Beijing time), never "retry in 31279s".

use std::time::Duration;

const BEIJING: &str = "Asia/Shanghai";
const LOS_ANGELES: &str = "America/Los_Angeles";

/// A span rounded to the nearest minute (at least one): `("8 小时 41 分钟", "8 h 41 min")`.
pub fn span(d: Duration) -> (String, String) {
    let minutes = ((d.as_secs() + 30) / 60).max(1);
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, m) => (format!("{m} 分钟"), format!("{m} min")),
        (h, 0) => (format!("{h} 小时"), format!("{h} h")),
        (h, m) => (format!("{h} 小时 {m} 分钟"), format!("{h} h {m} min")),
    }
}

/// The wall-clock time `after` from `now` in `zone`, rounded to the nearest minute (`16:00`).
fn clock(now: jiff::Timestamp, after: Duration, zone: &str) -> String {
    let secs = i64::try_from(after.as_secs()).unwrap_or(i64::MAX / 2);
    let at = now.as_second().saturating_add(secs);
    let rounded = at + 30 - (at + 30).rem_euclid(60);
    jiff::Timestamp::from_second(rounded)
        .ok()
        .and_then(|t| t.in_tz(zone).ok())
        .map(|z| z.strftime("%H:%M").to_string())
        .unwrap_or_else(|| "--:--".to_owned())
}

/// Every key is out of quota (or cooling) for `model` for `wait`: when they come back.
/// `daily` says the wait ends at the daily quota reset.
pub fn quota_message(model: &str, wait: Duration, daily: bool, now: jiff::Timestamp) -> String {
    let (zh, en) = span(wait);
    let beijing = clock(now, wait, BEIJING);
    let los_angeles = clock(now, wait, LOS_ANGELES);
    if daily {
        format!(
            "模型 {model} 的所有 API 密钥今日配额均已用尽，约 {zh}后（北京时间 {beijing}，洛杉矶时间 {los_angeles}）恢复 / Every API key has used up today's quota for model {model}; it resets in about {en}, at {beijing} Beijing time ({los_angeles} Los Angeles)"
        )
    } else {
        format!(
            "模型 {model} 的所有 API 密钥都在冷却中（配额用尽），约 {zh}后（北京时间 {beijing}，洛杉矶时间 {los_angeles}）可再次使用 / Every API key is cooling down for model {model} (quota exhausted); they can be used again in about {en}, at {beijing} Beijing time ({los_angeles} Los Angeles)"
        )
    }
}

/// Every one of `count` keys is invalid or suspended; they are checked again every `recheck`.
pub fn retired_message(count: usize, recheck: Duration) -> String {
    let (zh, en) = span(recheck);
    format!(
        "没有可用的 API 密钥：全部 {count} 个密钥均无效或已被停用（每 {zh}重新检查一次），请在 GEMINI_API_KEYS 或面板中添加有效密钥 / No usable API key: all {count} keys are invalid or suspended (they are checked again every {en}); add valid keys to GEMINI_API_KEYS or from the dashboard"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn spans_are_hours_and_minutes() {
        assert_eq!(
            span(Duration::from_secs(31_279)),
            ("8 小时 41 分钟".to_owned(), "8 h 41 min".to_owned())
        );
        assert_eq!(span(Duration::from_secs(61)).1, "1 min");
        assert_eq!(span(Duration::from_secs(5)).1, "1 min");
        assert_eq!(span(Duration::from_secs(7_200)).1, "2 h");
        assert_eq!(span(Duration::from_secs(1_800)).0, "30 分钟");
    }

    /// The example: 8 h 41 min before a winter midnight in Los Angeles (PST, UTC-8)
    /// is 16:00 in Beijing.
    #[test]
    fn the_daily_reset_is_given_in_beijing_and_los_angeles_time() {
        // 2025-01-15 15:19:01 PST = 23:19:01 UTC; midnight PST is 08:00 UTC the next day.
        let now = at("2025-01-15T23:19:01Z");
        let msg = quota_message("gemini-2.5-pro", Duration::from_secs(31_259), true, now);
        assert!(
            msg.contains("约 8 小时 41 分钟后（北京时间 16:00，洛杉矶时间 00:00）"),
            "{msg}"
        );
        assert!(
            msg.contains("in about 8 h 41 min, at 16:00 Beijing time (00:00 Los Angeles)"),
            "{msg}"
        );
        assert!(
            msg.contains("gemini-2.5-pro") && msg.contains(" / "),
            "{msg}"
        );
        assert!(!msg.contains("31259"), "{msg}");
    }

    /// In summer Los Angeles is on PDT (UTC-7): its midnight is 15:00 in Beijing.
    #[test]
    fn daylight_saving_time_moves_the_beijing_reset_hour() {
        let now = at("2025-07-01T07:00:00Z");
        let msg = quota_message("m", Duration::from_secs(24 * 3600), true, now);
        assert!(
            msg.contains("15:00 Beijing time (00:00 Los Angeles)"),
            "{msg}"
        );
    }

    #[test]
    fn a_long_cooldown_that_is_not_daily_says_so() {
        let now = at("2025-07-01T07:00:00Z");
        let msg = quota_message("m", Duration::from_secs(3_900), false, now);
        assert!(
            msg.contains("cooling down") && msg.contains("about 1 h 5 min"),
            "{msg}"
        );
        assert!(
            msg.contains("at 16:05 Beijing time (01:05 Los Angeles)"),
            "{msg}"
        );
    }

    #[test]
    fn retired_keys_are_named_with_the_recheck_interval() {
        let msg = retired_message(3, Duration::from_secs(1_800));
        assert!(
            msg.contains("全部 3 个密钥") && msg.contains("every 30 min"),
            "{msg}"
        );
    }
}
