//! HAJIMI's response cache, fixed: entries are consume-once answers kept under a key
//! that covers the model, the system instruction, the messages taken into account (the last
//! `CALCULATE_CACHE_ENTRIES`, or all with `PRECISE_CACHE`), every generation parameter, the
//! tools and the full content of images (decisions §6). One key may hold several answers — the
//! surplus of a race — so a "regenerate" right after is answered at once. Bounded by
//! `MAX_CACHE_ENTRIES` and a byte budget (oldest evicted first) and by `CACHE_EXPIRY_TIME`.
//! A lookup that finds nothing while surplus answers for that key are still on their way
//! waits for them. Also the in-flight table that lets identical requests share one answer
//! (unless `PUBLIC_MODE`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use xxhash_rust::xxh64::Xxh64;

use crate::error::GatewayError;
use crate::wire::gemini::GenerateContentResponse;
use crate::wire::openai::{ChatMessage, ChatRequest};

/// Bytes of answers the cache may hold at once, whatever `MAX_CACHE_ENTRIES` says.
pub const MAX_CACHE_BYTES: usize = 256 * 1024 * 1024;
/// Most identical requests tracked in flight.
const MAX_INFLIGHT: usize = 10_000;

/// One upstream answer: Google's bytes (forwarded as they are on native routes) and, for
/// 2xx `generateContent` answers, the parsed form.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub raw: Bytes,
    pub parsed: Option<Arc<GenerateContentResponse>>,
}

struct Entry {
    seq: u64,
    expires: Instant,
    answer: Answer,
}

#[derive(Default)]
struct Slot {
    answers: VecDeque<Entry>,
    /// Race attempts still running whose answers may land here.
    pending: i64,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<u64, Slot>,
    /// (seq, key) in insertion order, for evicting the globally oldest answer.
    order: VecDeque<(u64, u64)>,
    count: usize,
    bytes: usize,
    seq: u64,
}

#[derive(Default)]
pub struct ResponseCache {
    inner: Mutex<Inner>,
    arrived: Notify,
}

impl ResponseCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers currently held.
    pub fn len(&self) -> usize {
        self.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the oldest live answer for `key`. When none is there but surplus answers are on
    /// their way, waits for them until `wait_until`.
    pub async fn take(&self, key: u64, wait_until: Instant) -> Option<Answer> {
        loop {
            let notified = self.arrived.notified();
            {
                let mut inner = self.lock();
                let now = Instant::now();
                let inner = &mut *inner;
                if let Some(slot) = inner.slots.get_mut(&key) {
                    while let Some(entry) = slot.answers.pop_front() {
                        inner.count -= 1;
                        inner.bytes = inner.bytes.saturating_sub(entry.answer.raw.len());
                        if entry.expires > now {
                            if slot.answers.is_empty() && slot.pending <= 0 {
                                inner.slots.remove(&key);
                            }
                            return Some(entry.answer);
                        }
                    }
                    if slot.pending <= 0 {
                        inner.slots.remove(&key);
                        return None;
                    }
                } else {
                    return None;
                }
            }
            if tokio::time::timeout_at(wait_until, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Keeps an answer (a race's surplus) for `ttl`, evicting the oldest beyond the bounds.
    pub fn put(&self, key: u64, answer: Answer, ttl: Duration, max_entries: usize) {
        if max_entries == 0 || ttl.is_zero() || answer.raw.len() > MAX_CACHE_BYTES / 4 {
            return;
        }
        {
            let mut guard = self.lock();
            let inner = &mut *guard;
            inner.seq += 1;
            let seq = inner.seq;
            inner.count += 1;
            inner.bytes += answer.raw.len();
            inner.order.push_back((seq, key));
            inner
                .slots
                .entry(key)
                .or_default()
                .answers
                .push_back(Entry {
                    seq,
                    expires: Instant::now() + ttl,
                    answer,
                });
            while inner.count > max_entries || inner.bytes > MAX_CACHE_BYTES {
                let Some((old_seq, old_key)) = inner.order.pop_front() else {
                    break;
                };
                if let Some(slot) = inner.slots.get_mut(&old_key)
                    && let Some(pos) = slot.answers.iter().position(|e| e.seq == old_seq)
                    && let Some(e) = slot.answers.remove(pos)
                {
                    inner.count -= 1;
                    inner.bytes = inner.bytes.saturating_sub(e.answer.raw.len());
                    if slot.answers.is_empty() && slot.pending <= 0 {
                        inner.slots.remove(&old_key);
                    }
                }
            }
        }
        self.arrived.notify_waiters();
    }

    /// `n` more race attempts may bring answers for `key`.
    pub fn expect(&self, key: u64, n: usize) {
        let mut inner = self.lock();
        inner.slots.entry(key).or_default().pending += i64::try_from(n).unwrap_or(0);
    }

    /// One expected attempt finished (its answer, if any, was `put` first).
    pub fn settled(&self, key: u64) {
        {
            let mut inner = self.lock();
            if let Some(slot) = inner.slots.get_mut(&key) {
                slot.pending -= 1;
                if slot.pending <= 0 && slot.answers.is_empty() {
                    inner.slots.remove(&key);
                }
            }
        }
        self.arrived.notify_waiters();
    }

    /// Drops expired answers (run every minute) and the order entries of taken ones.
    pub fn sweep(&self) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now = Instant::now();
        let mut dropped_bytes = 0;
        let mut dropped = 0;
        inner.slots.retain(|_, slot| {
            slot.answers.retain(|e| {
                let live = e.expires > now;
                if !live {
                    dropped += 1;
                    dropped_bytes += e.answer.raw.len();
                }
                live
            });
            !slot.answers.is_empty() || slot.pending > 0
        });
        inner.count -= dropped;
        inner.bytes = inner.bytes.saturating_sub(dropped_bytes);
        let slots = &inner.slots;
        inner.order.retain(|(seq, key)| {
            slots
                .get(key)
                .is_some_and(|s| s.answers.iter().any(|e| e.seq == *seq))
        });
    }
}

/// Feeds everything written to it into xxh64: a key is hashed from the request's own values
/// as they are serialised, without building or copying anything (images included).
struct HashWriter(Xxh64);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HashWriter {
    fn for_model(model: &str) -> Self {
        let mut hasher = Xxh64::new(0);
        hasher.update(model.as_bytes());
        hasher.update(&[0]);
        Self(hasher)
    }

    fn json(&mut self, value: &impl Serialize) {
        if serde_json::to_writer(&mut *self, value).is_err() {
            self.0.update(b"?");
        }
    }
}

/// What an OpenAI chat request's key covers, borrowed from the request.
#[derive(Serialize)]
struct ChatKey<'a> {
    /// Every field but `model`, `messages` and streaming (`ChatRequest`'s `Serialize`).
    params: &'a ChatRequest,
    system: Vec<SystemMessage<'a>>,
    messages: &'a [&'a ChatMessage],
}

#[derive(Serialize)]
struct SystemMessage<'a> {
    message: &'a ChatMessage,
    /// For a system message after the conversation began (sent as a user turn at its
    /// place): how many other messages follow it, so its position counts too.
    depth: Option<usize>,
}

fn is_system(m: &ChatMessage) -> bool {
    matches!(m.role.as_str(), "system" | "developer")
}

/// The cache key of an OpenAI chat request: the model, every system/developer message (and
/// the place of those after the first turn), the last `last_n` other messages (all when
/// `precise`), and every other field but streaming. Remote images count by their URL, inline
/// ones by their full content.
pub fn openai_key(req: &ChatRequest, last_n: usize, precise: bool) -> u64 {
    let leading = req.messages.iter().take_while(|m| is_system(m)).count();
    let others: Vec<&ChatMessage> = req.messages.iter().filter(|m| !is_system(m)).collect();
    let mut after = others.len();
    let mut system = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        if is_system(m) {
            system.push(SystemMessage {
                message: m,
                depth: (i >= leading).then_some(after),
            });
        } else {
            after -= 1;
        }
    }
    let tail = if precise {
        &others[..]
    } else {
        &others[others.len().saturating_sub(last_n)..]
    };
    let mut w = HashWriter::for_model(&req.model);
    w.json(&ChatKey {
        params: req,
        system,
        messages: tail,
    });
    w.0.digest()
}

/// A native body's top level, borrowed: its contents and every other member as written.
struct NativeBody<'a> {
    contents: Vec<&'a RawValue>,
    others: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> Deserialize<'de> for NativeBody<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NativeBody<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut body = NativeBody {
                    contents: Vec::new(),
                    others: Vec::new(),
                };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "contents" {
                        body.contents = map
                            .next_value::<Option<Vec<&'de RawValue>>>()?
                            .unwrap_or_default();
                    } else {
                        body.others.push((key, map.next_value()?));
                    }
                }
                Ok(body)
            }
        }
        d.deserialize_map(V)
    }
}

/// The cache key of a native `generateContent` body: the model, the last `last_n` contents
/// (all when `precise`), and every other member, each hashed as the client wrote it (members
/// in sorted order). `None` when the body is not a JSON object.
pub fn native_key(model: &str, body: &[u8], last_n: usize, precise: bool) -> Option<u64> {
    let mut parsed: NativeBody<'_> = serde_json::from_slice(body).ok()?;
    parsed.others.sort_by(|a, b| a.0.cmp(&b.0));
    let tail = if precise {
        &parsed.contents[..]
    } else {
        &parsed.contents[parsed.contents.len().saturating_sub(last_n)..]
    };
    let mut w = HashWriter::for_model(model);
    for (key, raw) in &parsed.others {
        w.0.update(key.as_bytes());
        w.0.update(&[0]);
        w.0.update(raw.get().as_bytes());
        w.0.update(&[0]);
    }
    w.0.update(b"contents\0");
    for raw in tail {
        w.0.update(raw.get().as_bytes());
        w.0.update(&[0]);
    }
    Some(w.0.digest())
}

/// The result an in-flight leader shares with identical requests.
pub type Shared = Option<Result<Answer, GatewayError>>;

/// Identical requests in flight: the first leads, the others wait for its answer.
#[derive(Default)]
pub struct Inflight {
    map: Mutex<HashMap<u64, watch::Receiver<Shared>>>,
}

pub enum Join<'a> {
    Leader(LeaderGuard<'a>),
    Follower(watch::Receiver<Shared>),
    /// Too many requests in flight to track one more.
    Untracked,
}

pub struct LeaderGuard<'a> {
    table: &'a Inflight,
    key: u64,
    tx: watch::Sender<Shared>,
}

impl LeaderGuard<'_> {
    pub fn publish(&self, result: &Result<Answer, GatewayError>) {
        let _ = self.tx.send(Some(result.clone()));
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut map = self
            .table
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.remove(&self.key);
    }
}

impl Inflight {
    /// Requests currently leading an in-flight answer.
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn join(&self, key: u64) -> Join<'_> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = map.get(&key) {
            return Join::Follower(rx.clone());
        }
        if map.len() >= MAX_INFLIGHT {
            return Join::Untracked;
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key, rx);
        Join::Leader(LeaderGuard {
            table: self,
            key,
            tx,
        })
    }
}

/// Waits for a leader's answer; `None` when the leader went away without one.
pub async fn follow(
    mut rx: watch::Receiver<Shared>,
    until: Instant,
) -> Option<Result<Answer, GatewayError>> {
    loop {
        if let Some(result) = rx.borrow().clone() {
            return Some(result);
        }
        match tokio::time::timeout_at(until, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => return rx.borrow().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn answer(text: &str) -> Answer {
        Answer {
            status: 200,
            raw: Bytes::from(text.to_owned()),
            parsed: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_consumed_once_oldest_first_and_expire() {
        let c = ResponseCache::default();
        let soon = Instant::now();
        c.put(1, answer("a"), Duration::from_secs(60), 10);
        c.put(1, answer("b"), Duration::from_secs(60), 10);
        assert_eq!(c.len(), 2);
        assert_eq!(c.take(1, soon).await.map(|a| a.raw), Some(Bytes::from("a")));
        assert_eq!(c.take(1, soon).await.map(|a| a.raw), Some(Bytes::from("b")));
        assert!(c.take(1, soon).await.is_none());
        c.put(2, answer("c"), Duration::from_secs(60), 10);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(c.take(2, Instant::now()).await.is_none(), "expired");
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn the_oldest_answers_are_evicted_beyond_the_bound() {
        let c = ResponseCache::default();
        for i in 0..5 {
            c.put(i, answer("x"), Duration::from_secs(60), 3);
        }
        assert_eq!(c.len(), 3);
        c.sweep();
        assert_eq!(c.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_waits_for_expected_surplus() {
        let c = Arc::new(ResponseCache::default());
        c.expect(7, 1);
        let c2 = Arc::clone(&c);
        #[expect(clippy::disallowed_methods, reason = "a test-local task")]
        let waiter =
            tokio::spawn(async move { c2.take(7, Instant::now() + Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        c.put(7, answer("late"), Duration::from_secs(60), 10);
        c.settled(7);
        assert_eq!(
            waiter.await.ok().flatten().map(|a| a.raw),
            Some(Bytes::from("late"))
        );
        c.expect(8, 1);
        c.settled(8);
        assert!(
            c.take(8, Instant::now() + Duration::from_secs(30))
                .await
                .is_none(),
            "nothing came: no wait"
        );
    }

    fn key_of(body: &Value, last_n: usize, precise: bool) -> u64 {
        let req: ChatRequest = serde_json::from_value(body.clone()).expect("a chat request");
        openai_key(&req, last_n, precise)
    }

    #[test]
    fn keys_cover_what_changes_the_answer_and_ignore_what_does_not() {
        let base = json!({"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "temperature": 0.5});
        let k = key_of(&base, 6, false);
        let mut v = base.clone();
        v["stream"] = json!(true);
        v["stream_options"] = json!({"include_usage": true});
        assert_eq!(
            key_of(&v, 6, false),
            k,
            "streaming does not change the answer"
        );
        for change in [
            json!({"temperature": 0.6}),
            json!({"tools": [{"type": "function", "function": {"name": "f"}}]}),
            json!({"model": "n"}),
            json!({"include_reasoning": false}),
        ] {
            let mut v = base.clone();
            for (key, val) in change.as_object().into_iter().flatten() {
                v[key] = val.clone();
            }
            assert_ne!(key_of(&v, 6, false), k, "{change}");
        }
        let mut v = base.clone();
        v["messages"][0]["content"] = json!("T");
        assert_ne!(
            key_of(&v, 1, false),
            k,
            "the system message counts even outside the last N"
        );
        let at = |messages: Value| key_of(&json!({"model": "m", "messages": messages}), 6, false);
        assert_ne!(
            at(
                json!([{"role": "user", "content": "a"}, {"role": "system", "content": "note"}, {"role": "user", "content": "b"}])
            ),
            at(
                json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "system", "content": "note"}])
            ),
            "a later system message is sent at its position, so its position counts"
        );
        let img = |data: &str| json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,iVBORw0KGgoAAAANSUhEUg{data}")}}]}]});
        assert_ne!(
            key_of(&img("AAAA"), 6, false),
            key_of(&img("BBBB"), 6, false),
            "full image content (HAJIMI hashed 32 chars)"
        );
        let old = json!({"model": "m", "messages": [{"role": "user", "content": "old"}, {"role": "user", "content": "b"}]});
        let new = json!({"model": "m", "messages": [{"role": "user", "content": "new"}, {"role": "user", "content": "b"}]});
        assert_eq!(
            key_of(&old, 1, false),
            key_of(&new, 1, false),
            "only the last N messages"
        );
        assert_ne!(
            key_of(&old, 1, true),
            key_of(&new, 1, true),
            "PRECISE_CACHE takes all"
        );
    }

    #[test]
    fn a_later_system_message_counts_with_its_place() {
        let at = |depth: usize| {
            let mut messages: Vec<Value> = (0..4)
                .map(|i| json!({"role": "user", "content": format!("m{i}")}))
                .collect();
            messages.insert(4 - depth, json!({"role": "system", "content": "note"}));
            json!({"model": "m", "messages": messages})
        };
        assert_ne!(key_of(&at(1), 6, false), key_of(&at(2), 6, false));
        assert_eq!(key_of(&at(1), 6, false), key_of(&at(1), 6, false));
    }

    #[test]
    fn native_keys_cover_the_last_contents_and_every_other_member() {
        let body = |first: &str, temp: f64| {
            json!({"generationConfig": {"temperature": temp}, "contents": [
                {"role": "user", "parts": [{"text": first}]},
                {"role": "user", "parts": [{"text": "last"}]}]})
            .to_string()
        };
        let key = |b: &str, n: usize, precise: bool| native_key("m", b.as_bytes(), n, precise);
        let k = key(&body("a", 0.5), 1, false);
        assert!(k.is_some());
        assert_eq!(
            key(&body("b", 0.5), 1, false),
            k,
            "only the last N contents"
        );
        assert_ne!(key(&body("b", 0.5), 1, true), key(&body("a", 0.5), 1, true));
        assert_ne!(key(&body("a", 0.6), 1, false), k, "parameters count");
        assert_ne!(
            native_key("n", body("a", 0.5).as_bytes(), 1, false),
            k,
            "model"
        );
        let v: Value = serde_json::from_str(&body("a", 0.5)).expect("json");
        let reordered = format!(
            r#"{{"generationConfig": {}, "contents": {}}}"#,
            v["generationConfig"], v["contents"]
        );
        assert_eq!(
            key(&reordered, 1, false),
            k,
            "top-level order does not matter"
        );
        assert_eq!(native_key("m", b"[1]", 1, false), None);
    }

    #[tokio::test]
    async fn identical_requests_follow_the_leader() {
        let table = Inflight::default();
        let Join::Leader(leader) = table.join(1) else {
            panic!("leader")
        };
        let Join::Follower(rx) = table.join(1) else {
            panic!("follower")
        };
        leader.publish(&Ok(answer("shared")));
        let got = follow(rx, Instant::now() + Duration::from_secs(1)).await;
        assert_eq!(
            got.and_then(Result::ok).map(|a| a.raw),
            Some(Bytes::from("shared"))
        );
        drop(leader);
        assert!(
            matches!(table.join(1), Join::Leader(_)),
            "the entry is gone with its leader"
        );
    }
}
