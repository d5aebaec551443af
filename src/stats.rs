//! Usage statistics: per key × model × minute, hour and day — calls, successes, failures by
//! kind, prompt/completion/thought/cached tokens, latency. Recorded in memory on the request
//! path (a short mutex, no I/O), handed to the store in batches every half second, and
//! summarised for the dashboard: totals of the last minute, hour and 24 h, per-minute series,
//! and today's counts per key and per model. "Today" starts at midnight of
//! `STATS_RESET_TIMEZONE` (Google's quota reset, America/Los_Angeles, by default).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::tz::TimeZone;
use serde::Serialize;

use crate::labels::{KnownModels, MAX_NAME, OTHER};
use crate::mask::KeyId;
use crate::store::{Counters, Op, Store, UsageRow};

/// Per-minute totals kept in memory (24 h).
const MINUTES: usize = 24 * 60;
/// Request-log entries kept in memory for the dashboard.
const LOG_ENTRIES: usize = 500;
/// Latencies of the newest calls kept for the dashboard's percentiles.
const LATENCIES: usize = 4096;
/// Distinct models tracked per day before the rest is counted as `other`.
const MAX_MODELS: usize = 256;

/// One dashboard log entry (HAJIMI's field names).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct LogEntry {
    pub timestamp: String,
    pub level: String,
    pub key: String,
    pub request_type: String,
    pub model: String,
    /// The client protocol (`openai`, `gemini`, `anthropic`, `responses`; empty when the
    /// request had none, and in entries saved before it was recorded).
    #[serde(default)]
    pub dialect: String,
    pub status_code: String,
    pub message: String,
    pub error_message: String,
    pub formatted: String,
}

#[derive(Default)]
struct Inner {
    /// (minute start, totals over all keys and models), oldest first.
    minutes: VecDeque<(i64, Counters)>,
    /// Start of "today" (unix seconds) and when the next day starts.
    day_start: i64,
    next_day: i64,
    per_key: HashMap<KeyId, KeyDay>,
    per_model: BTreeMap<String, Counters>,
    /// Today's requests per client dialect (a handful of fixed names).
    per_dialect: BTreeMap<&'static str, DialectDay>,
    /// Increments not yet handed to the store: (minute start, key, model).
    pending: HashMap<(i64, KeyId, String), Counters>,
    log: VecDeque<LogEntry>,
    /// (unix seconds, milliseconds) of the newest calls, oldest first.
    latencies: VecDeque<(i64, u64)>,
    /// Calls per hour of the last 24 h by model and by key, oldest first (the dashboard's
    /// charts; restored from the store's minute rows).
    hours: VecDeque<HourCalls>,
    /// How many of the newest `log` entries the store has not been handed yet.
    unsaved_log: usize,
}

/// One hour's calls per model and per key.
#[derive(Default)]
struct HourCalls {
    start: i64,
    models: BTreeMap<String, u64>,
    keys: HashMap<KeyId, u64>,
}

impl Inner {
    /// Counts `calls` in the hour holding `at` (ignored when older than 24 h).
    fn count_hour(&mut self, at: i64, model: &str, key: Option<KeyId>, calls: u64) {
        let hour = at - at.rem_euclid(3600);
        let pos = match self.hours.iter().position(|h| h.start == hour) {
            Some(i) => i,
            None => {
                if self.hours.back().is_some_and(|h| h.start > hour) {
                    return; // out of order and unknown: older than what is kept
                }
                self.hours.push_back(HourCalls {
                    start: hour,
                    ..HourCalls::default()
                });
                while self.hours.len() > 24 {
                    self.hours.pop_front();
                }
                self.hours.len() - 1
            }
        };
        let bucket = &mut self.hours[pos];
        let fits = bucket.models.len() < MAX_MODELS || bucket.models.contains_key(model);
        let name = if fits { model } else { OTHER };
        *bucket.models.entry(name.to_owned()).or_default() += calls;
        if let Some(key) = key {
            *bucket.keys.entry(key).or_default() += calls;
        }
    }
}

/// The last 24 hours' calls by hour: the hour starts, and per model and per key one value per
/// hour (oldest first).
#[derive(Debug, Default)]
pub struct HourlyCalls {
    pub hours: Vec<i64>,
    pub models: BTreeMap<String, Vec<u64>>,
    pub keys: HashMap<KeyId, Vec<u64>>,
}

/// One client dialect's requests today.
#[derive(Default, Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct DialectDay {
    pub requests: u64,
    /// Answered with an error status (4xx or 5xx).
    pub failures: u64,
    /// Prompt and completion tokens of their answers.
    pub tokens: u64,
}

#[derive(Default, Clone)]
pub struct KeyDay {
    pub total: Counters,
    pub models: BTreeMap<String, Counters>,
}

pub struct Stats {
    inner: Mutex<Inner>,
    /// The zone whose midnight starts a new day (`STATS_RESET_TIMEZONE`).
    zone: TimeZone,
    store: Option<Arc<Store>>,
    /// Which model names are counted as themselves (the rest as `other`).
    known: Arc<KnownModels>,
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The name a model is counted under in a day's table: itself while the table has room and
/// the name is not too long, else `other`.
fn bounded_model<'a>(per_model: &BTreeMap<String, Counters>, model: &'a str) -> &'a str {
    let fits =
        model.len() <= MAX_NAME && (per_model.len() < MAX_MODELS || per_model.contains_key(model));
    if fits { model } else { OTHER }
}

impl LogEntry {
    /// The entry with its client-chosen texts bounded (entries saved before they were).
    fn bounded(mut self) -> Self {
        if self.model.len() > MAX_NAME {
            OTHER.clone_into(&mut self.model);
        }
        for text in [&mut self.message, &mut self.formatted] {
            if text.len() > 4 * MAX_NAME + 256 {
                *text = crate::labels::capped(text, 4 * MAX_NAME).into_owned();
            }
        }
        self
    }
}

/// Unix seconds of the last and the next midnight in `zone`.
pub fn day_bounds(zone: &TimeZone, at: i64) -> (i64, i64) {
    // Only for an instant outside jiff's range (none that a clock gives).
    let fallback = (
        at - at.rem_euclid(86_400),
        at - at.rem_euclid(86_400) + 86_400,
    );
    let Ok(ts) = jiff::Timestamp::from_second(at) else {
        return fallback;
    };
    let zoned = ts.to_zoned_datetime(zone.clone());
    let Ok(start) = zoned.start_of_day() else {
        return fallback;
    };
    let Ok(next) = start.tomorrow().and_then(|t| t.start_of_day()) else {
        return fallback;
    };
    (start.timestamp().as_second(), next.timestamp().as_second())
}

/// Summary figures for the dashboard.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub minute: Counters,
    pub hour: Counters,
    pub day: Counters,
    /// The last 31 minutes, oldest first: (minute start, totals).
    pub series: Vec<(i64, Counters)>,
}

impl Stats {
    pub fn new(zone: TimeZone, store: Option<Arc<Store>>) -> Self {
        let (day_start, next_day) = day_bounds(&zone, now_unix());
        let inner = Inner {
            day_start,
            next_day,
            ..Inner::default()
        };
        Self {
            inner: Mutex::new(inner),
            zone,
            store,
            known: Arc::clone(crate::labels::global()),
        }
    }

    /// The same, deciding which model names are kept with `known` instead of the process's.
    pub fn with_known(mut self, known: Arc<KnownModels>) -> Self {
        self.known = known;
        self
    }

    /// The model label a name is counted and logged under (`crate::labels`).
    pub fn model_label(&self, model: &str) -> String {
        self.known.label(model)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn roll(&self, inner: &mut Inner, now: i64) {
        if now >= inner.next_day {
            let (start, next) = day_bounds(&self.zone, now);
            inner.day_start = start;
            inner.next_day = next;
            inner.per_key.clear();
            inner.per_model.clear();
            inner.per_dialect.clear();
            let zone = self.zone.iana_name().unwrap_or("UTC");
            tracing::info!(zone, "daily usage counters reset");
        }
    }

    /// Records one increment (an attempt, or the tokens of an answer). A model name that is
    /// not known is counted as `other`.
    pub fn record(&self, key: Option<KeyId>, model: &str, c: &Counters) {
        let label = self.known.label(model);
        let model = label.as_str();
        let now = now_unix();
        let minute = now - now.rem_euclid(60);
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.roll(inner, now);
        match inner.minutes.back_mut() {
            Some((m, totals)) if *m == minute => totals.add(c),
            _ => {
                inner.minutes.push_back((minute, c.clone()));
                while inner.minutes.len() > MINUTES {
                    inner.minutes.pop_front();
                }
            }
        }
        if let Some(each) = c.latency_ms.checked_div(c.calls) {
            inner.latencies.push_back((now, each));
            while inner.latencies.len() > LATENCIES {
                inner.latencies.pop_front();
            }
        }
        if c.calls > 0 {
            inner.count_hour(now, model, key, c.calls);
        }
        let model_name = bounded_model(&inner.per_model, model);
        inner
            .per_model
            .entry(model_name.to_owned())
            .or_default()
            .add(c);
        if let Some(key) = key {
            let day = inner.per_key.entry(key).or_default();
            day.total.add(c);
            day.models.entry(model_name.to_owned()).or_default().add(c);
            if self.store.is_some() {
                inner
                    .pending
                    .entry((minute, key, model_name.to_owned()))
                    .or_default()
                    .add(c);
            }
        }
    }

    /// Hands pending increments to the store as minute, hour and day rows, and the request-log
    /// entries added since the last flush as one batch.
    pub fn flush(&self) {
        let Some(store) = &self.store else { return };
        let (pending, day_start, log) = {
            let mut inner = self.lock();
            let unsaved = std::mem::take(&mut inner.unsaved_log).min(inner.log.len());
            let log: Vec<LogEntry> = inner
                .log
                .iter()
                .skip(inner.log.len() - unsaved)
                .cloned()
                .collect();
            (std::mem::take(&mut inner.pending), inner.day_start, log)
        };
        if !log.is_empty() {
            store.queue(Op::Logs {
                at: now_unix(),
                entries: log
                    .iter()
                    .filter_map(|e| serde_json::to_string(e).ok())
                    .collect(),
            });
        }
        if pending.is_empty() {
            return;
        }
        let mut rows = Vec::with_capacity(pending.len() * 3);
        for ((minute, key, model), c) in pending {
            let key_id = key.to_string();
            let day = if minute >= day_start {
                day_start
            } else {
                day_bounds(&self.zone, minute).0
            };
            for (bucket, start) in [
                ("minute", minute),
                ("hour", minute - minute.rem_euclid(3600)),
                ("day", day),
            ] {
                rows.push(UsageRow {
                    bucket,
                    start,
                    key_id: key_id.clone(),
                    model: model.clone(),
                    counters: c.clone(),
                });
            }
        }
        store.queue(Op::Usage(rows));
    }

    /// Loads today's counts and the last 24 h of minutes back from the store.
    pub fn restore(&self, reader: &rusqlite::Connection, keys: &[KeyId]) {
        let now = now_unix();
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Ok(rows) = crate::store::usage_since(reader, "minute", now - 24 * 3600) {
            let mut by_minute: BTreeMap<i64, Counters> = BTreeMap::new();
            let rows_for_hours: Vec<_> = rows
                .iter()
                .map(|r| crate::store::UsageRowOwned {
                    start: r.start,
                    key_id: r.key_id.clone(),
                    model: r.model.clone(),
                    counters: Counters {
                        calls: r.counters.calls,
                        ..Counters::default()
                    },
                })
                .collect();
            for r in rows {
                by_minute.entry(r.start).or_default().add(&r.counters);
            }
            inner.minutes = by_minute.into_iter().collect();
            let mut rows = rows_for_hours;
            rows.sort_by_key(|r| r.start);
            for r in rows {
                let key = keys.iter().find(|k| k.to_string() == r.key_id).copied();
                inner.count_hour(r.start, &r.model, key, r.counters.calls);
            }
        }
        if let Ok(rows) = crate::store::usage_since(reader, "day", inner.day_start) {
            for r in rows.into_iter().filter(|r| r.start == inner.day_start) {
                // Rows written before names were bounded may hold anything.
                let model = bounded_model(&inner.per_model, &r.model).to_owned();
                inner
                    .per_model
                    .entry(model.clone())
                    .or_default()
                    .add(&r.counters);
                if let Some(key) = keys.iter().find(|k| k.to_string() == r.key_id) {
                    let day = inner.per_key.entry(*key).or_default();
                    day.total.add(&r.counters);
                    day.models.entry(model).or_default().add(&r.counters);
                }
            }
        }
        if let Ok(entries) = crate::store::recent_log(reader, LOG_ENTRIES as i64) {
            inner.log = entries
                .iter()
                .filter_map(|e| serde_json::from_str::<LogEntry>(e).ok())
                .map(LogEntry::bounded)
                .collect();
        }
    }

    /// Clears every statistic (dashboard "reset stats"), in memory and in the store.
    pub fn reset(&self) {
        {
            let mut inner = self.lock();
            inner.minutes.clear();
            inner.hours.clear();
            inner.latencies.clear();
            inner.per_key.clear();
            inner.per_model.clear();
            inner.per_dialect.clear();
            inner.pending.clear();
        }
        if let Some(store) = &self.store {
            store.queue(Op::ResetStats);
        }
    }

    pub fn summary(&self) -> Summary {
        let now = now_unix();
        let minute = now - now.rem_euclid(60);
        let inner = self.lock();
        let mut s = Summary::default();
        for (m, c) in &inner.minutes {
            if *m >= minute - 60 {
                s.minute.add(c);
            }
            if *m > minute - 3600 {
                s.hour.add(c);
            }
            if *m > minute - 86_400 {
                s.day.add(c);
            }
        }
        let by_minute: HashMap<i64, &Counters> =
            inner.minutes.iter().map(|(m, c)| (*m, c)).collect();
        s.series = (0..31)
            .rev()
            .map(|i| {
                let m = minute - i * 60;
                (
                    m,
                    by_minute.get(&m).map(|c| (*c).clone()).unwrap_or_default(),
                )
            })
            .collect();
        s
    }

    /// The last 24 hours by hour, oldest first: (hour start, totals).
    pub fn hourly(&self) -> Vec<(i64, Counters)> {
        let now = now_unix();
        let hour = now - now.rem_euclid(3600);
        let first = hour - 23 * 3600;
        let mut out: Vec<(i64, Counters)> = (0..24)
            .map(|i| (first + i * 3600, Counters::default()))
            .collect();
        for (m, c) in &self.lock().minutes {
            if *m >= first {
                let i = usize::try_from((m - first) / 3600).unwrap_or(0).min(23);
                out[i].1.add(c);
            }
        }
        out
    }

    /// Calls per hour of the last 24 h, per model and per key (`HourlyCalls`).
    pub fn hourly_calls(&self) -> HourlyCalls {
        let now = now_unix();
        let first = now - now.rem_euclid(3600) - 23 * 3600;
        let mut out = HourlyCalls {
            hours: (0..24).map(|i| first + i * 3600).collect(),
            ..HourlyCalls::default()
        };
        for h in self.lock().hours.iter().filter(|h| h.start >= first) {
            let i = usize::try_from((h.start - first) / 3600)
                .unwrap_or(0)
                .min(23);
            for (m, n) in &h.models {
                out.models.entry(m.clone()).or_insert_with(|| vec![0; 24])[i] += n;
            }
            for (k, n) in &h.keys {
                out.keys.entry(*k).or_insert_with(|| vec![0; 24])[i] += n;
            }
        }
        out
    }

    /// The median and 95th percentile latency (ms) of the calls of the last `seconds` among
    /// the newest few thousand; `None` without calls.
    pub fn latency_percentiles(&self, seconds: i64) -> Option<(u64, u64)> {
        let since = now_unix() - seconds;
        let mut ms: Vec<u64> = self
            .lock()
            .latencies
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, ms)| *ms)
            .collect();
        if ms.is_empty() {
            return None;
        }
        ms.sort_unstable();
        let at = |p: usize| ms[((ms.len() - 1) * p) / 100];
        Some((at(50), at(95)))
    }

    /// Today's counts for one key.
    pub fn key_today(&self, key: KeyId) -> KeyDay {
        self.lock().per_key.get(&key).cloned().unwrap_or_default()
    }

    pub fn models_today(&self) -> BTreeMap<String, Counters> {
        self.lock().per_model.clone()
    }

    /// Counts one finished request of a client dialect (`ok`: not an error status).
    pub fn count_dialect(&self, dialect: &'static str, ok: bool, tokens: u64) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.roll(inner, now_unix());
        let day = inner.per_dialect.entry(dialect).or_default();
        day.requests += 1;
        day.failures += u64::from(!ok);
        day.tokens += tokens;
    }

    /// Today's requests per client dialect (in memory: a restart starts them again).
    pub fn dialects_today(&self) -> BTreeMap<&'static str, DialectDay> {
        self.lock().per_dialect.clone()
    }

    pub fn day_start(&self) -> i64 {
        self.lock().day_start
    }

    /// Adds a request-log entry to the memory ring. The store gets the entries in batches at
    /// the next [`Stats::flush`]: at most the ring's size per flush, so a load of thousands of
    /// requests a second costs the request path nothing and the store one batch per flush, and
    /// the store always holds at least what the dashboard shows.
    pub fn log(&self, entry: LogEntry) {
        let mut inner = self.lock();
        inner.log.push_back(entry);
        while inner.log.len() > LOG_ENTRIES {
            inner.log.pop_front();
        }
        if self.store.is_some() {
            inner.unsaved_log = (inner.unsaved_log + 1).min(LOG_ENTRIES);
        }
    }

    pub fn logs(&self) -> Vec<LogEntry> {
        self.lock().log.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn days_start_at_local_midnight() {
        // 2026-11-26T12:00:00Z is 04:00 in Los Angeles (UTC-8): the day began at 08:00Z.
        let noon = jiff::Timestamp::from_second(1_795_694_400)
            .map(|t| t.as_second())
            .unwrap_or(0);
        let (start, next) = day_bounds(&zone("America/Los_Angeles"), noon);
        assert_eq!(next - start, 86_400);
        assert_eq!(start.rem_euclid(86_400), 8 * 3600);
        let (start, _) = day_bounds(&zone("Asia/Shanghai"), noon);
        assert_eq!(start.rem_euclid(86_400), 16 * 3600);
    }

    #[test]
    fn records_add_up_per_window_key_and_model() {
        let stats = Stats::new(TimeZone::UTC, None).with_known(Arc::default());
        let key = KeyId::of("AIzaSyTEST");
        let call = Counters {
            calls: 1,
            successes: 1,
            prompt_tokens: 10,
            completion_tokens: 5,
            ..Counters::default()
        };
        stats.record(Some(key), "m1", &call);
        stats.record(Some(key), "m2", &call);
        stats.record(None, "m1", &call);
        let s = stats.summary();
        assert_eq!(s.minute.calls, 3);
        assert_eq!(s.day.tokens(), 45);
        assert_eq!(s.series.len(), 31);
        assert_eq!(s.series[30].1.calls, 3, "the current minute is last");
        assert_eq!(stats.key_today(key).total.calls, 2);
        assert_eq!(stats.models_today().get("m1").map(|c| c.calls), Some(2));
        stats.reset();
        assert_eq!(stats.summary().day.calls, 0);
    }

    #[test]
    fn the_last_day_by_hour_per_model_and_key_and_latency_percentiles() {
        let stats = Stats::new(TimeZone::UTC, None).with_known(Arc::default());
        let key = KeyId::of("AIzaSyTEST");
        for ms in [10, 20, 30, 40, 1000] {
            let call = Counters {
                calls: 1,
                successes: 1,
                latency_ms: ms,
                ..Counters::default()
            };
            stats.record(Some(key), "m1", &call);
        }
        let two = Counters {
            calls: 2,
            latency_ms: 2000,
            ..Counters::default()
        };
        stats.record(None, "m2", &two);
        let h = stats.hourly_calls();
        assert_eq!(h.hours.len(), 24);
        assert_eq!(h.hours[23] % 3600, 0, "hour starts");
        assert_eq!(h.models["m1"][23], 5, "the current hour is last");
        assert_eq!(h.models["m2"].iter().sum::<u64>(), 2);
        assert_eq!(h.keys[&key][23], 5);
        assert_eq!(h.keys.len(), 1, "calls without a key count only per model");
        let (p50, p95) = stats.latency_percentiles(3600).unwrap_or_default();
        // 10, 20, 30, 40, 1000 and 1000 (two calls of 2000 ms in one record): the lower
        // nearest rank.
        assert_eq!((p50, p95), (30, 1000));
        stats.reset();
        assert!(stats.hourly_calls().models.is_empty());
        assert_eq!(stats.latency_percentiles(3600), None);
    }

    #[test]
    fn unknown_and_huge_model_names_are_counted_as_other() {
        let known: Arc<KnownModels> = Arc::default();
        known.set_listed(["gemini-2.5-flash".to_owned()]);
        let stats = Stats::new(TimeZone::UTC, None).with_known(known);
        let key = KeyId::of("AIzaSyTEST");
        let call = Counters {
            calls: 1,
            ..Counters::default()
        };
        stats.record(Some(key), "models/gemini-2.5-flash", &call);
        stats.record(Some(key), "gemini-made-up", &call);
        stats.record(Some(key), &"x".repeat(1 << 20), &call);
        let models = stats.models_today();
        assert_eq!(
            models.keys().map(String::as_str).collect::<Vec<_>>(),
            ["gemini-2.5-flash", "other"]
        );
        assert_eq!(models.get("other").map(|c| c.calls), Some(2));
        assert_eq!(stats.key_today(key).models.len(), 2);
    }

    fn entry(i: usize) -> LogEntry {
        LogEntry {
            timestamp: i.to_string(),
            level: "INFO".into(),
            key: String::new(),
            request_type: String::new(),
            model: String::new(),
            dialect: String::new(),
            status_code: String::new(),
            message: String::new(),
            error_message: String::new(),
            formatted: String::new(),
        }
    }

    #[test]
    fn the_log_is_bounded() {
        let stats = Stats::new(TimeZone::UTC, None);
        for i in 0..(LOG_ENTRIES + 10) {
            stats.log(entry(i));
        }
        let logs = stats.logs();
        assert_eq!(logs.len(), LOG_ENTRIES);
        assert_eq!(logs[0].timestamp, "10");
    }

    /// The store gets each entry once, in order, in batches of at most the ring's size.
    #[tokio::test]
    async fn log_entries_reach_the_store_once_per_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _, reader) = Store::open(dir.path()).expect("opens");
        let store = Arc::new(store);
        let stats = Stats::new(TimeZone::UTC, Some(store.clone()));
        for i in 0..3 {
            stats.log(entry(i));
        }
        stats.flush();
        stats.flush(); // nothing new: nothing written twice
        for i in 3..(LOG_ENTRIES + 20) {
            stats.log(entry(i));
        }
        stats.flush();
        store.flush().await;
        let rows = crate::store::recent_log(&reader, 10_000).expect("read");
        let stamps: Vec<String> = rows
            .iter()
            .filter_map(|r| serde_json::from_str::<LogEntry>(r).ok())
            .map(|e| e.timestamp)
            .collect();
        // 0..3 from the first flush, then the newest LOG_ENTRIES of the burst (the oldest 17
        // of it left the ring before anyone could see them, in memory or in the store).
        let mut expected: Vec<String> = (0..3).map(|i| i.to_string()).collect();
        expected.extend((20..LOG_ENTRIES + 20).map(|i| i.to_string()));
        assert_eq!(stamps, expected);
    }
}
