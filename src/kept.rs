//! What dialects keep after an answer (`translate::dialect::Keep`: OpenAI Responses' stored
//! responses, behind `previous_response_id` and `GET /v1/responses/{id}`): kept 24 hours,
//! bounded in count and bytes (the oldest go first), in memory and, when storage is on, in
//! the store, from which the server restores them at start-up so a conversation survives a
//! restart. Lookups never touch the disk.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::store::{Op, Store};
use crate::translate::dialect::Keep;

/// How long a record is kept.
pub const TTL_SECS: i64 = 24 * 3600;
/// The most records kept.
pub const MAX_RECORDS: usize = 10_000;
/// The most bytes kept, all records together (one record is at most a few MiB: a stored
/// conversation is bounded by the dialect).
pub const MAX_BYTES: usize = 256 * 1024 * 1024;

struct Entry {
    data: Bytes,
    expires_at: i64,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<Arc<str>, Entry>,
    /// Ids, oldest first (every record lives as long: the oldest expire first).
    order: VecDeque<Arc<str>>,
    bytes: usize,
}

impl Inner {
    fn remove_oldest(&mut self) {
        if let Some(id) = self.order.pop_front()
            && let Some(e) = self.by_id.remove(&id)
        {
            self.bytes -= e.data.len();
        }
    }

    fn expire(&mut self, now: i64) {
        while let Some(id) = self.order.front() {
            match self.by_id.get(id) {
                Some(e) if e.expires_at > now => break,
                _ => self.remove_oldest(),
            }
        }
    }

    fn insert(&mut self, id: &str, data: Bytes, expires_at: i64) {
        if data.len() > MAX_BYTES {
            return;
        }
        if let Some(old) = self.by_id.remove(id) {
            self.bytes -= old.data.len();
            self.order.retain(|k| &**k != id);
        }
        while self.order.len() >= MAX_RECORDS || self.bytes + data.len() > MAX_BYTES {
            self.remove_oldest();
        }
        let id: Arc<str> = Arc::from(id);
        self.bytes += data.len();
        self.order.push_back(Arc::clone(&id));
        self.by_id.insert(id, Entry { data, expires_at });
    }
}

/// The kept records (cheap to clone).
#[derive(Clone, Default)]
pub struct Kept {
    inner: Arc<Mutex<Inner>>,
    store: Option<Arc<Store>>,
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Kept {
    /// Records kept in memory and, with a store, on disk.
    pub fn new(store: Option<Arc<Store>>) -> Self {
        Self {
            inner: Arc::default(),
            store,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a record for [`TTL_SECS`] (queued for the store, never waiting on it).
    pub fn keep(&self, keep: Keep) {
        let expires_at = now_unix() + TTL_SECS;
        if let Some(store) = &self.store {
            store.queue(Op::Keep {
                id: keep.id.clone(),
                data: keep.data.to_vec(),
                expires_at,
                max_rows: i64::try_from(MAX_RECORDS).unwrap_or(i64::MAX),
                max_bytes: i64::try_from(MAX_BYTES).unwrap_or(i64::MAX),
            });
        }
        let mut inner = self.lock();
        inner.expire(now_unix());
        inner.insert(&keep.id, keep.data, expires_at);
    }

    /// A record by id, unless unknown or expired.
    pub fn get(&self, id: &str) -> Option<Bytes> {
        self.get_at(id, now_unix())
    }

    fn get_at(&self, id: &str, now: i64) -> Option<Bytes> {
        let inner = self.lock();
        inner
            .by_id
            .get(id)
            .filter(|e| e.expires_at > now)
            .map(|e| e.data.clone())
    }

    /// Forgets a record (and queues its removal from the store); whether one was held.
    pub fn forget(&self, id: &str) -> bool {
        let held = {
            let mut inner = self.lock();
            let now = now_unix();
            let live = inner.by_id.get(id).is_some_and(|e| e.expires_at > now);
            if let Some(e) = inner.by_id.remove(id) {
                inner.bytes -= e.data.len();
                inner.order.retain(|k| &**k != id);
            }
            live
        };
        if let Some(store) = &self.store {
            store.queue(Op::Forget { id: id.to_owned() });
        }
        held
    }

    /// Puts back what the store held at start-up (`(id, data, expires_at)`, oldest first).
    pub fn restore(&self, rows: Vec<(String, Vec<u8>, i64)>) {
        let now = now_unix();
        let mut inner = self.lock();
        for (id, data, expires_at) in rows {
            if expires_at > now {
                inner.insert(&id, Bytes::from(data), expires_at);
            }
        }
    }

    /// Records held now (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(id: &str, data: &str) -> Keep {
        Keep {
            id: id.into(),
            data: Bytes::from(data.to_owned()),
        }
    }

    #[test]
    fn records_come_back_until_they_expire() {
        let k = Kept::new(None);
        k.keep(keep("resp_1", "one"));
        assert_eq!(k.get("resp_1").as_deref(), Some(&b"one"[..]));
        assert_eq!(k.get("resp_2"), None);
        let later = now_unix() + TTL_SECS + 1;
        assert_eq!(k.get_at("resp_1", later), None, "a day later it is gone");
    }

    #[test]
    fn the_oldest_go_first_beyond_the_bounds() {
        let k = Kept::new(None);
        for i in 0..MAX_RECORDS + 5 {
            k.keep(keep(&format!("r{i}"), "x"));
        }
        assert_eq!(k.len(), MAX_RECORDS);
        assert_eq!(k.get("r0"), None);
        assert!(k.get(&format!("r{}", MAX_RECORDS + 4)).is_some());

        let k = Kept::new(None);
        let big = "y".repeat(MAX_BYTES / 3 + 1);
        for i in 0..3 {
            k.keep(keep(&format!("b{i}"), &big));
        }
        assert_eq!(k.len(), 2, "three thirds do not fit");
        assert_eq!(k.get("b0"), None);
        let inner = k.lock();
        assert!(inner.bytes <= MAX_BYTES);
    }

    #[test]
    fn expired_rows_are_not_restored() {
        let k = Kept::new(None);
        let now = now_unix();
        k.restore(vec![
            ("old".into(), b"a".to_vec(), now - 1),
            ("new".into(), b"b".to_vec(), now + 60),
        ]);
        assert_eq!(k.get("old"), None);
        assert_eq!(k.get("new").as_deref(), Some(&b"b"[..]));
    }
}
