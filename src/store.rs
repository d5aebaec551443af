//! The embedded store: one SQLite file in `STORAGE_DIR` (mode 0600), written by one thread.
//! The request path never waits on it: key states, usage and the request log are queued and
//! committed in batches at least once a second (a SIGKILL loses at most that second);
//! settings and keys changed through the API are committed before the API answers
//! (decisions §7). Everything is read once, at start-up. Migrations are numbered SQL in this
//! file, tracked with `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};

/// Queued writes waiting for the writer thread, before new ones are dropped (and counted).
const QUEUE: usize = 65_536;
/// How long queued writes may wait before they are committed.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Request-log rows kept.
const LOG_ROWS: i64 = 10_000;

const MIGRATIONS: [&str; 2] = [
    r#"
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL, env_value TEXT, updated_at INTEGER NOT NULL);
CREATE TABLE keys (secret TEXT PRIMARY KEY, removed INTEGER NOT NULL DEFAULT 0, env_fingerprint TEXT, updated_at INTEGER NOT NULL);
CREATE TABLE key_state (key_id TEXT PRIMARY KEY, state TEXT NOT NULL, cooldowns TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE usage (bucket TEXT NOT NULL, start INTEGER NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0, successes INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
    thought_tokens INTEGER NOT NULL DEFAULT 0, cached_tokens INTEGER NOT NULL DEFAULT 0,
    latency_ms INTEGER NOT NULL DEFAULT 0, failure_kinds TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (bucket, start, key_id, model));
CREATE TABLE request_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, entry TEXT NOT NULL);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
    r#"
CREATE TABLE kept (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, data BLOB NOT NULL, size INTEGER NOT NULL, expires_at INTEGER NOT NULL);
"#,
];

/// Counters of one usage bucket (a key × model × minute, hour or day).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    pub calls: u64,
    pub successes: u64,
    pub failures: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub thought_tokens: u64,
    pub cached_tokens: u64,
    pub latency_ms: u64,
    /// Failures by kind (`quota`, `overloaded`, …).
    pub failure_kinds: std::collections::BTreeMap<String, u64>,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.calls += other.calls;
        self.successes += other.successes;
        self.failures += other.failures;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.thought_tokens += other.thought_tokens;
        self.cached_tokens += other.cached_tokens;
        self.latency_ms += other.latency_ms;
        for (k, v) in &other.failure_kinds {
            *self.failure_kinds.entry(k.clone()).or_default() += v;
        }
    }

    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// One usage increment for the database.
#[derive(Clone, Debug)]
pub struct UsageRow {
    /// `minute`, `hour` or `day`.
    pub bucket: &'static str,
    /// Unix second the bucket starts at (days: local midnight of `STATS_RESET_TIMEZONE`).
    pub start: i64,
    pub key_id: String,
    pub model: String,
    pub counters: Counters,
}

/// A write for the store.
#[derive(Debug)]
pub enum Op {
    SaveSetting {
        name: String,
        value: String,
        env_value: Option<String>,
    },
    DeleteSetting {
        name: String,
    },
    AddKey {
        secret: String,
    },
    /// A key removed through the API: forgotten if it was added there, a tombstone (with the
    /// fingerprint of the variable that holds it) if it comes from the environment.
    RemoveKey {
        secret: String,
        env_fingerprint: Option<String>,
    },
    DropTombstone {
        secret: String,
    },
    KeyState {
        key_id: String,
        state: String,
        cooldowns: String,
    },
    Usage(Vec<UsageRow>),
    /// Request-log entries (JSON), oldest first, written at `at`.
    Logs {
        at: i64,
        entries: Vec<String>,
    },
    Meta {
        name: String,
        value: String,
    },
    ResetStats,
    /// A record a dialect kept (`kept::Kept`), until `expires_at` (unix seconds); the newest
    /// `max_rows` records within `max_bytes` stay.
    Keep {
        id: String,
        data: Vec<u8>,
        expires_at: i64,
        max_rows: i64,
        max_bytes: i64,
    },
    /// A kept record removed before it expired (`DELETE /v1/responses/{id}`).
    Forget {
        id: String,
    },
}

enum Cmd {
    Write(Op),
    Sync(Vec<Op>, tokio::sync::oneshot::Sender<Result<(), String>>),
    Flush(tokio::sync::oneshot::Sender<()>),
    Stop,
}

/// What the store held at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// `(name, JSON value, env value seen when saved)`.
    pub settings: Vec<(String, String, Option<String>)>,
    pub added_keys: Vec<String>,
    /// `(secret, fingerprint of the variable that held it when removed)`.
    pub tombstones: Vec<(String, Option<String>)>,
    /// `(key id, state, cooldowns JSON)`.
    pub key_states: Vec<(String, String, String)>,
    pub meta: Vec<(String, String)>,
}

pub struct Store {
    path: PathBuf,
    tx: SyncSender<Cmd>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    health: std::sync::Arc<Health>,
}

/// Why writes fail, as the writer thread last saw it (`/ready` shows it).
#[derive(Default)]
struct Health(Mutex<Option<Fault>>);

struct Fault {
    reason: String,
    /// Corruption does not heal: only a restart on a repaired file clears it. Other failures
    /// (disk full, I/O error, read-only) clear with the next successful write.
    lasting: bool,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Fault>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the outcome of one commit.
    fn record(&self, result: &rusqlite::Result<()>) {
        let mut fault = self.lock();
        match result {
            Ok(()) => {
                if fault.as_ref().is_some_and(|f| !f.lasting) {
                    *fault = None;
                }
            }
            Err(e) => {
                let Some(lasting) = fault_kind(e) else { return };
                if fault.as_ref().is_some_and(|f| f.lasting) {
                    return;
                }
                let reason = if lasting {
                    format!("存储文件已损坏：{e} / the store is corrupted: {e}")
                } else {
                    format!("存储写入失败：{e} / store writes fail: {e}")
                };
                *fault = Some(Fault { reason, lasting });
            }
        }
    }
}

/// Whether a write error means the store is unhealthy: `Some(true)` for corruption (lasting),
/// `Some(false)` for a failing disk or file, `None` for an error of one statement.
fn fault_kind(e: &rusqlite::Error) -> Option<bool> {
    use rusqlite::ErrorCode as C;
    let rusqlite::Error::SqliteFailure(failure, _) = e else {
        return None;
    };
    match failure.code {
        C::DatabaseCorrupt | C::NotADatabase => Some(true),
        C::DiskFull
        | C::SystemIoFailure
        | C::ReadOnly
        | C::CannotOpen
        | C::PermissionDenied
        | C::FileLockingProtocolFailed => Some(false),
        _ => None,
    }
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("无法使用存储目录 {dir}：{reason} / cannot use the storage directory {dir}: {reason}")]
pub struct OpenError {
    pub dir: String,
    pub reason: String,
}

impl Store {
    /// Opens (creating, migrating) the database in `dir` and starts the writer thread.
    pub fn open(dir: &Path) -> Result<(Self, Loaded, Connection), OpenError> {
        let err = |reason: String| OpenError {
            dir: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let path = dir.join("hajimi.db");
        let conn = Connection::open(&path).map_err(|e| err(e.to_string()))?;
        restrict_permissions(&path);
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;")
            .map_err(|e| err(e.to_string()))?;
        migrate(&conn).map_err(|e| err(e.to_string()))?;
        // Writing must work now, not at the first settings change.
        conn.execute("INSERT INTO meta(name, value) VALUES('opened_at', ?1) ON CONFLICT(name) DO UPDATE SET value = excluded.value", params![now_unix().to_string()])
            .map_err(|e| err(e.to_string()))?;
        let loaded = load(&conn).map_err(|e| err(e.to_string()))?;
        let reader = Connection::open(&path).map_err(|e| err(e.to_string()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let health = std::sync::Arc::new(Health::default());
        let writer_health = std::sync::Arc::clone(&health);
        let thread = std::thread::Builder::new()
            .name("hajimi-store".into())
            .spawn(move || writer(conn, rx, &writer_health))
            .map_err(|e| err(e.to_string()))?;
        Ok((
            Self {
                path,
                tx,
                thread: Mutex::new(Some(thread)),
                health,
            },
            loaded,
            reader,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the store is unhealthy (its writes fail: corruption, a full disk, an I/O error),
    /// bilingual; `None` while writes succeed.
    pub fn fault(&self) -> Option<String> {
        self.health.lock().as_ref().map(|f| f.reason.clone())
    }

    /// Queues a write; never blocks (a full queue drops the write and says so).
    pub fn queue(&self, op: Op) {
        match self.tx.try_send(Cmd::Write(op)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("hajimi_store_dropped_writes_total").increment(1);
                tracing::warn!("store queue full; a write was dropped");
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Commits writes and waits until they are on disk (settings and keys from the API).
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), String> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.tx
            .try_send(Cmd::Sync(ops, done))
            .map_err(|_| "the store is busy or closed".to_owned())?;
        wait.await
            .unwrap_or_else(|_| Err("the store stopped".to_owned()))
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.try_send(Cmd::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Commits what is queued and stops the writer (shutdown).
    pub fn close(&self) {
        let _ = self.tx.send(Cmd::Stop);
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for p in [
        path.to_path_buf(),
        path.with_extension("db-wal"),
        path.with_extension("db-shm"),
    ] {
        if p.exists() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) {}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

/// What an existing store holds, read without creating or writing anything (`hajimi config`
/// and `hajimi keys check`): `None` when there is no database in `dir` or it cannot be read.
/// With no WAL files beside it the database is opened `immutable` (SQLite then creates no
/// `-shm`/`-wal` file); with them (a server running), read-only.
pub fn read_existing(dir: &Path) -> Option<Loaded> {
    let path = std::fs::canonicalize(dir.join("hajimi.db")).ok()?;
    if !path.is_file() {
        return None;
    }
    let live = path.with_extension("db-wal").exists() && path.with_extension("db-shm").exists();
    let mut uri = url::Url::from_file_path(&path).ok()?;
    uri.set_query(Some(if live { "mode=ro" } else { "immutable=1" }));
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri.as_str(), flags).ok()?;
    load(&conn).ok()
}

fn load(conn: &Connection) -> rusqlite::Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut s = conn.prepare("SELECT name, value, env_value FROM settings")?;
    loaded.settings = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut s =
        conn.prepare("SELECT secret, removed, env_fingerprint FROM keys ORDER BY updated_at")?;
    for row in s.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })? {
        let (secret, removed, fp) = row?;
        if removed != 0 {
            loaded.tombstones.push((secret, fp));
        } else {
            loaded.added_keys.push(secret);
        }
    }
    let mut s = conn.prepare("SELECT key_id, state, cooldowns FROM key_state")?;
    loaded.key_states = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut s = conn.prepare("SELECT name, value FROM meta")?;
    loaded.meta = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(loaded)
}

/// Kept records that have not expired, oldest first: `(id, data, expires_at)` (read through
/// the reader connection at start-up).
pub fn kept_rows(conn: &Connection) -> rusqlite::Result<Vec<(String, Vec<u8>, i64)>> {
    let mut s =
        conn.prepare("SELECT id, data, expires_at FROM kept WHERE expires_at > ?1 ORDER BY seq")?;
    let rows = s.query_map(params![now_unix()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect()
}

/// Usage rows of a bucket since `since` (reads through the reader connection at start-up).
pub fn usage_since(
    conn: &Connection,
    bucket: &str,
    since: i64,
) -> rusqlite::Result<Vec<UsageRowOwned>> {
    let mut s = conn.prepare(
        "SELECT start, key_id, model, calls, successes, failures, prompt_tokens, completion_tokens, thought_tokens, cached_tokens, latency_ms, failure_kinds
         FROM usage WHERE bucket = ?1 AND start >= ?2",
    )?;
    let rows = s.query_map(params![bucket, since], |r| {
        let kinds: String = r.get(11)?;
        Ok(UsageRowOwned {
            start: r.get(0)?,
            key_id: r.get(1)?,
            model: r.get(2)?,
            counters: Counters {
                calls: r.get::<_, i64>(3)?.max(0).unsigned_abs(),
                successes: r.get::<_, i64>(4)?.max(0).unsigned_abs(),
                failures: r.get::<_, i64>(5)?.max(0).unsigned_abs(),
                prompt_tokens: r.get::<_, i64>(6)?.max(0).unsigned_abs(),
                completion_tokens: r.get::<_, i64>(7)?.max(0).unsigned_abs(),
                thought_tokens: r.get::<_, i64>(8)?.max(0).unsigned_abs(),
                cached_tokens: r.get::<_, i64>(9)?.max(0).unsigned_abs(),
                latency_ms: r.get::<_, i64>(10)?.max(0).unsigned_abs(),
                failure_kinds: serde_json::from_str(&kinds).unwrap_or_default(),
            },
        })
    })?;
    rows.collect()
}

/// A usage row read back.
#[derive(Clone, Debug)]
pub struct UsageRowOwned {
    pub start: i64,
    pub key_id: String,
    pub model: String,
    pub counters: Counters,
}

/// The last `n` request-log entries, oldest first.
pub fn recent_log(conn: &Connection, n: i64) -> rusqlite::Result<Vec<String>> {
    let mut s = conn.prepare("SELECT entry FROM (SELECT id, entry FROM request_log ORDER BY id DESC LIMIT ?1) ORDER BY id")?;
    let rows = s.query_map(params![n], |r| r.get(0))?;
    rows.collect()
}

fn apply(conn: &Connection, op: &Op) -> rusqlite::Result<()> {
    let now = now_unix();
    match op {
        Op::SaveSetting {
            name,
            value,
            env_value,
        } => {
            conn.execute(
                "INSERT INTO settings(name, value, env_value, updated_at) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value, env_value = excluded.env_value, updated_at = excluded.updated_at",
                params![name, value, env_value, now],
            )?;
        }
        Op::DeleteSetting { name } => {
            conn.execute("DELETE FROM settings WHERE name = ?1", params![name])?;
        }
        Op::AddKey { secret } => {
            conn.execute(
                "INSERT INTO keys(secret, removed, env_fingerprint, updated_at) VALUES(?1, 0, NULL, ?2)
                 ON CONFLICT(secret) DO UPDATE SET removed = 0, env_fingerprint = NULL, updated_at = excluded.updated_at",
                params![secret, now],
            )?;
        }
        Op::RemoveKey {
            secret,
            env_fingerprint: None,
        } => {
            conn.execute("DELETE FROM keys WHERE secret = ?1", params![secret])?;
        }
        Op::RemoveKey {
            secret,
            env_fingerprint: Some(fp),
        } => {
            conn.execute(
                "INSERT INTO keys(secret, removed, env_fingerprint, updated_at) VALUES(?1, 1, ?2, ?3)
                 ON CONFLICT(secret) DO UPDATE SET removed = 1, env_fingerprint = excluded.env_fingerprint, updated_at = excluded.updated_at",
                params![secret, fp, now],
            )?;
        }
        Op::DropTombstone { secret } => {
            conn.execute(
                "DELETE FROM keys WHERE secret = ?1 AND removed = 1",
                params![secret],
            )?;
        }
        Op::KeyState {
            key_id,
            state,
            cooldowns,
        } => {
            conn.execute(
                "INSERT INTO key_state(key_id, state, cooldowns, updated_at) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(key_id) DO UPDATE SET state = excluded.state, cooldowns = excluded.cooldowns, updated_at = excluded.updated_at",
                params![key_id, state, cooldowns, now],
            )?;
        }
        Op::Usage(rows) => {
            let mut s = conn.prepare_cached(
                "INSERT INTO usage(bucket, start, key_id, model, calls, successes, failures, prompt_tokens, completion_tokens, thought_tokens, cached_tokens, latency_ms, failure_kinds)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT(bucket, start, key_id, model) DO UPDATE SET
                   calls = calls + excluded.calls, successes = successes + excluded.successes, failures = failures + excluded.failures,
                   prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens,
                   thought_tokens = thought_tokens + excluded.thought_tokens, cached_tokens = cached_tokens + excluded.cached_tokens,
                   latency_ms = latency_ms + excluded.latency_ms,
                   failure_kinds = CASE WHEN excluded.failure_kinds = '{}' THEN failure_kinds ELSE excluded.failure_kinds END",
            )?;
            let mut read = conn.prepare_cached("SELECT failure_kinds FROM usage WHERE bucket = ?1 AND start = ?2 AND key_id = ?3 AND model = ?4")?;
            for r in rows {
                let c = &r.counters;
                // Failure kinds are a small JSON map: merge with what is stored.
                let mut kinds = c.failure_kinds.clone();
                if !kinds.is_empty()
                    && let Some(existing) = read
                        .query_row(params![r.bucket, r.start, r.key_id, r.model], |row| {
                            row.get::<_, String>(0)
                        })
                        .optional()?
                {
                    let old: std::collections::BTreeMap<String, u64> =
                        serde_json::from_str(&existing).unwrap_or_default();
                    for (k, v) in old {
                        *kinds.entry(k).or_default() += v;
                    }
                }
                let kinds_json = serde_json::to_string(&kinds).unwrap_or_else(|_| "{}".into());
                let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                s.execute(params![
                    r.bucket,
                    r.start,
                    r.key_id,
                    r.model,
                    n(c.calls),
                    n(c.successes),
                    n(c.failures),
                    n(c.prompt_tokens),
                    n(c.completion_tokens),
                    n(c.thought_tokens),
                    n(c.cached_tokens),
                    n(c.latency_ms),
                    kinds_json
                ])?;
            }
        }
        Op::Logs { at, entries } => {
            let mut insert =
                conn.prepare_cached("INSERT INTO request_log(at, entry) VALUES(?1, ?2)")?;
            for entry in entries {
                insert.execute(params![at, entry])?;
            }
            // Bounded as it grows, not only at the hourly prune (by primary key: cheap).
            conn.prepare_cached(
                "DELETE FROM request_log WHERE id <= (SELECT MAX(id) FROM request_log) - ?1",
            )?
            .execute(params![LOG_ROWS])?;
        }
        Op::Meta { name, value } => {
            conn.execute(
                "INSERT INTO meta(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )?;
        }
        Op::ResetStats => {
            conn.execute("DELETE FROM usage", [])?;
        }
        Op::Keep {
            id,
            data,
            expires_at,
            max_rows,
            max_bytes,
        } => {
            conn.prepare_cached(
                "INSERT INTO kept(id, data, size, expires_at) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET data = excluded.data, size = excluded.size, expires_at = excluded.expires_at",
            )?
            .execute(params![
                id,
                data,
                i64::try_from(data.len()).unwrap_or(i64::MAX),
                expires_at
            ])?;
            // Bounded as it grows, like the memory it mirrors: the newest within the count
            // and the bytes.
            conn.prepare_cached(
                "DELETE FROM kept WHERE seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER w AS n,
                   SUM(size) OVER w AS total FROM kept WINDOW w AS (ORDER BY seq DESC))
                 WHERE n > ?1 OR total > ?2)",
            )?
            .execute(params![max_rows, max_bytes])?;
        }
        Op::Forget { id } => {
            conn.prepare_cached("DELETE FROM kept WHERE id = ?1")?
                .execute(params![id])?;
        }
    }
    Ok(())
}

/// Applies ops in one transaction.
fn commit(conn: &Connection, ops: &[Op]) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    for op in ops {
        apply(&tx, op)?;
    }
    tx.commit()
}

/// Retention (decisions §7): minutes 48 h, hours 90 days, days kept (the request log is
/// bounded as it is written); kept records until they expire.
fn prune(conn: &Connection) -> rusqlite::Result<()> {
    let now = now_unix();
    conn.execute("DELETE FROM kept WHERE expires_at <= ?1", params![now])?;
    conn.execute(
        "DELETE FROM usage WHERE bucket = 'minute' AND start < ?1",
        params![now - 48 * 3600],
    )?;
    conn.execute(
        "DELETE FROM usage WHERE bucket = 'hour' AND start < ?1",
        params![now - 90 * 86_400],
    )?;
    Ok(())
}

fn writer(conn: Connection, rx: Receiver<Cmd>, health: &Health) {
    let mut pending: Vec<Op> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let mut last_prune = Instant::now();
    loop {
        let wait = oldest.map_or(Duration::from_secs(3600), |t| {
            FLUSH_EVERY.saturating_sub(t.elapsed())
        });
        let cmd = rx.recv_timeout(wait);
        let mut stop = false;
        let mut reply: Option<(tokio::sync::oneshot::Sender<Result<(), String>>, usize)> = None;
        let mut flushed: Option<tokio::sync::oneshot::Sender<()>> = None;
        match cmd {
            Ok(Cmd::Write(op)) => {
                pending.push(op);
                oldest.get_or_insert_with(Instant::now);
                if pending.len() < 4096 && oldest.is_some_and(|t| t.elapsed() < FLUSH_EVERY) {
                    continue;
                }
            }
            Ok(Cmd::Sync(ops, done)) => {
                let n = ops.len();
                pending.extend(ops);
                reply = Some((done, n));
            }
            Ok(Cmd::Flush(done)) => flushed = Some(done),
            Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if !pending.is_empty() {
            let result = commit(&conn, &pending);
            health.record(&result);
            let result = result.map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::error!(error = %e, ops = pending.len(), "store write failed");
            }
            pending.clear();
            oldest = None;
            if let Some((done, _)) = reply.take() {
                let _ = done.send(result);
            }
        } else if let Some((done, _)) = reply.take() {
            let _ = done.send(Ok(()));
        }
        if let Some(done) = flushed {
            let _ = done.send(());
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = Instant::now();
            if let Err(e) = prune(&conn) {
                tracing::warn!(error = %e, "store pruning failed");
            }
        }
        if stop {
            let _ = prune(&conn);
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_request_log_is_bounded_as_it_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _, reader) = Store::open(dir.path()).expect("opens");
        let n = usize::try_from(LOG_ROWS).unwrap_or(0) + 50;
        let entries: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        store
            .commit(vec![Op::Logs { at: 1, entries }])
            .await
            .expect("committed");
        let rows: i64 = reader
            .query_row("SELECT COUNT(*) FROM request_log", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, LOG_ROWS);
        let newest = recent_log(&reader, 1).expect("read");
        assert_eq!(newest, vec![(n - 1).to_string()]);
        store.close();
    }

    #[tokio::test]
    async fn committed_writes_are_read_back_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (store, loaded, _) = Store::open(dir.path()).expect("opens");
            assert!(loaded.settings.is_empty());
            store
                .commit(vec![
                    Op::SaveSetting {
                        name: "fake_streaming".into(),
                        value: "false".into(),
                        env_value: Some("true".into()),
                    },
                    Op::AddKey {
                        secret: "k-added".into(),
                    },
                    Op::RemoveKey {
                        secret: "k-env".into(),
                        env_fingerprint: Some("fp1".into()),
                    },
                ])
                .await
                .expect("committed");
            store.queue(Op::KeyState {
                key_id: "k1".into(),
                state: "invalid".into(),
                cooldowns: "[]".into(),
            });
            let mut c = Counters {
                calls: 2,
                successes: 1,
                failures: 1,
                prompt_tokens: 10,
                ..Counters::default()
            };
            c.failure_kinds.insert("quota".into(), 1);
            store.queue(Op::Usage(vec![UsageRow {
                bucket: "minute",
                start: now_unix() / 60 * 60,
                key_id: "k1".into(),
                model: "m".into(),
                counters: c.clone(),
            }]));
            store.queue(Op::Usage(vec![UsageRow {
                bucket: "minute",
                start: now_unix() / 60 * 60,
                key_id: "k1".into(),
                model: "m".into(),
                counters: c,
            }]));
            // A later batch with successes only keeps the failure kinds already counted.
            store.queue(Op::Usage(vec![UsageRow {
                bucket: "minute",
                start: now_unix() / 60 * 60,
                key_id: "k1".into(),
                model: "m".into(),
                counters: Counters {
                    calls: 1,
                    successes: 1,
                    ..Counters::default()
                },
            }]));
            store.flush().await;
            store.close();
        }
        let (store, loaded, reader) = Store::open(dir.path()).expect("reopens");
        assert_eq!(
            loaded.settings,
            vec![("fake_streaming".into(), "false".into(), Some("true".into()))]
        );
        assert_eq!(loaded.added_keys, vec!["k-added".to_owned()]);
        assert_eq!(
            loaded.tombstones,
            vec![("k-env".into(), Some("fp1".into()))]
        );
        assert_eq!(
            loaded.key_states,
            vec![("k1".into(), "invalid".into(), "[]".into())]
        );
        let rows = usage_since(&reader, "minute", 0).expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].counters.calls, rows[0].counters.prompt_tokens),
            (5, 20),
            "increments add up"
        );
        assert_eq!(rows[0].counters.failure_kinds.get("quota"), Some(&2));
        store.close();
    }

    #[tokio::test]
    async fn kept_records_are_bounded_and_read_back_unexpired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _, reader) = Store::open(dir.path()).expect("opens");
        let keep = |id: &str, len: usize, expires_at: i64| Op::Keep {
            id: id.into(),
            data: vec![b'x'; len],
            expires_at,
            max_rows: 3,
            max_bytes: 100,
        };
        let later = now_unix() + 60;
        store
            .commit(vec![
                keep("a", 10, later),
                keep("gone", 10, now_unix() - 1),
                keep("b", 10, later),
                keep("c", 10, later),
                keep("d", 10, later),
            ])
            .await
            .expect("committed");
        let ids = |rows: Vec<(String, Vec<u8>, i64)>| -> Vec<String> {
            rows.into_iter().map(|r| r.0).collect()
        };
        assert_eq!(
            ids(kept_rows(&reader).expect("rows")),
            ["b", "c", "d"],
            "the newest three, oldest first"
        );
        store
            .commit(vec![keep("e", 90, later)])
            .await
            .expect("committed");
        assert_eq!(
            ids(kept_rows(&reader).expect("rows")),
            ["d", "e"],
            "within the bytes"
        );
        store.close();
    }

    #[cfg(unix)]
    #[test]
    fn the_database_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _, _) = Store::open(dir.path()).expect("opens");
        let mode = std::fs::metadata(store.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        store.close();
    }

    #[test]
    fn corruption_is_a_lasting_fault_and_a_full_disk_a_passing_one() {
        let failure = |code: i32| {
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        let h = Health::default();
        h.record(&failure(rusqlite::ffi::SQLITE_CONSTRAINT));
        assert!(
            h.lock().is_none(),
            "one statement's error is not the store's"
        );
        h.record(&failure(rusqlite::ffi::SQLITE_FULL));
        assert!(h.lock().as_ref().is_some_and(|f| !f.lasting));
        h.record(&Ok(()));
        assert!(h.lock().is_none(), "space came back");
        h.record(&failure(rusqlite::ffi::SQLITE_CORRUPT));
        h.record(&Ok(()));
        h.record(&failure(rusqlite::ffi::SQLITE_FULL));
        let reason = h.lock().as_ref().map(|f| f.reason.clone());
        assert!(
            reason.is_some_and(|r| r.contains("malformed")),
            "corruption stays, whatever comes after"
        );
    }

    #[test]
    fn an_unwritable_directory_is_an_error() {
        let err = Store::open(Path::new("/proc/definitely/not/here")).err();
        assert!(err.is_some_and(|e| e.to_string().contains("/proc/definitely")));
    }
}
