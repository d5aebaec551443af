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
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::error::GatewayError;

/// Bytes of answers the cache may hold at once, whatever `MAX_CACHE_ENTRIES` says.
pub const MAX_CACHE_BYTES: usize = 256 * 1024 * 1024;
/// Most identical requests tracked in flight.
const MAX_INFLIGHT: usize = 10_000;

pub use crate::translate::dialect::Answer;

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
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;

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
