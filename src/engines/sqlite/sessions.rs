//! [`SqliteSessionStore`]: sessions as rows of one SQLite database file (`type = "sqlite"`), for
//! a single machine that wants SQL. Several server processes on that machine may share the file:
//! SQLite's own locking (WAL journal, a busy timeout) makes every statement atomic across them.
//!
//! One table, `sessions`: the id's hex SHA-256 (never the id), the creation and end times as unix
//! seconds, and the record JSON exactly as the file store writes it, so that
//! `sqlite3 sessions.db 'select record from sessions'` shows what a session file shows.
//! A row that is not a record is moved to `sessions_corrupt` (kept 7 days, like the file store's
//! `.corrupt/`) and the visitor is anonymous.
//!
//! rusqlite is blocking, so every call runs on the store's own threads ([`IoThreads`]), each
//! taking a connection from a small pool; expired rows are deleted by the sweeper in batches, so
//! that a sweep of many rows never holds the write lock for long.
//!
//! One file: the schema, the pooled connections and the statements every call runs share one
//! set of rules (one writer, batches for the sweep); the unit tests are in `tests.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use time::OffsetDateTime;

use crate::store::backend::{
    ended, Capabilities, Loaded, SessionBackend, SessionSummary, LIST_BATCH,
};
use crate::store::health::Health;
use crate::store::io_threads::{Abandoned, IoThreads};
use crate::store::record::{SessionRecord, SessionState};
use crate::store::{Clock, SessionId, Store, StoreError};
use crate::config::SessionConfig;

/// Threads (and at most as many pooled connections) doing the database work. SQLite lets one
/// writer in at a time, so more threads only add waiting; two let a read go on beside a write.
const THREADS: usize = 2;

/// Rows deleted per statement by a sweep: each batch is its own short write transaction.
pub const SWEEP_BATCH: u32 = 500;

/// The least pause between two batches of a sweep.
const MIN_SWEEP_PAUSE: Duration = Duration::from_millis(2);

/// How long a row that is not a session record is kept in `sessions_corrupt`.
const QUARANTINE_SECS: i64 = 7 * 24 * 3600;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,          -- hex SHA-256 of the session id, as the file store names files
    created_at INTEGER NOT NULL,  -- unix seconds
    expires_at INTEGER NOT NULL,  -- unix seconds; the session has ended once now >= expires_at
    record TEXT NOT NULL          -- the session file's JSON
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
CREATE TABLE IF NOT EXISTS sessions_corrupt (
    id TEXT NOT NULL,
    set_aside_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
";

/// The sqlite store `config` describes.
pub(crate) fn open(config: &SessionConfig) -> Result<Store, StoreError> {
    let s = &config.sqlite;
    let store = SqliteSessionStore::open_with_clock(
        &s.path,
        s.busy_timeout,
        config.max_session_bytes,
        config.clock.clone(),
    )?;
    Ok(Store::new(store))
}

fn engine(e: rusqlite::Error) -> StoreError {
    StoreError::Engine {
        engine: "sqlite",
        source: Box::new(e),
    }
}

/// Sessions in one SQLite file. Cheap to clone: clones share the threads and connections.
#[derive(Clone)]
pub struct SqliteSessionStore {
    inner: Arc<Inner>,
    io: Arc<IoThreads>,
}

struct Inner {
    path: PathBuf,
    busy_timeout: Duration,
    max_bytes: usize,
    idle: Mutex<Vec<Connection>>,
    /// Held by this process's writes, one at a time: SQLite lets one writer in, and a writer
    /// that finds the database locked sleeps in growing steps, so writers of one process queue
    /// here instead (only another process's writes leave them to SQLite's busy timeout).
    writer: Mutex<()>,
    health: Health,
    clock: Clock,
}

impl SqliteSessionStore {
    /// Opens (creating it and its folder if needed) the database at `path` and its tables.
    pub fn open(path: &Path, busy_timeout: Duration, max_bytes: usize) -> Result<Self, StoreError> {
        Self::open_with_clock(path, busy_timeout, max_bytes, Clock::system())
    }

    /// As [`Self::open`], judging expiry by `clock` (a test's, to reach a session's end at once).
    pub fn open_with_clock(
        path: &Path,
        busy_timeout: Duration,
        max_bytes: usize,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let inner = Inner {
            path: path.to_owned(),
            busy_timeout,
            max_bytes,
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(()),
            health: Health::default(),
            clock,
        };
        let conn = inner.connect()?;
        conn.execute_batch(SCHEMA).map_err(engine)?;
        inner.idle.lock().push(conn);
        Ok(Self {
            inner: Arc::new(inner),
            io: Arc::new(IoThreads::start("sqlite-io", THREADS)?),
        })
    }

    /// Runs `work` with a connection on one of the store's threads.
    /// Deletes the session's row, on the session's own thread (ordered with its other jobs).
    async fn delete_row(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        let (inner, stem) = (Arc::clone(&self.inner), crate::store::id::stem(digest));
        self.io
            .run(digest[0], Abandoned::StillRun, move || {
                inner.with_connection(|inner, conn| {
                    let _writing = inner.writer.lock();
                    conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")
                        .map_err(engine)?
                        .execute(params![stem])
                        .map_err(engine)?;
                    Ok(())
                })
            })
            .await
    }

    /// The sessions after the id `after`, in id order, at most [`LIST_BATCH`], and the id to
    /// go on from when the page was full.
    async fn list_page(
        &self,
        after: String,
    ) -> Result<(Vec<SessionSummary>, Option<String>), StoreError> {
        let limit = i64::try_from(LIST_BATCH).unwrap_or(i64::MAX);
        let rows: Vec<(String, i64, i64)> = self
            .run(None, Abandoned::Skip, move |_, conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT id, expires_at, length(CAST(record AS BLOB)) FROM sessions \
                         WHERE id > ?1 ORDER BY id LIMIT ?2",
                    )
                    .map_err(engine)?;
                let rows = stmt
                    .query_map(params![after, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(engine)?
                    .collect::<Result<_, _>>()
                    .map_err(engine)?;
                Ok(rows)
            })
            .await?;
        let next = (rows.len() == LIST_BATCH)
            .then(|| rows.last().map(|r| r.0.clone()))
            .flatten();
        let page = rows
            .into_iter()
            .filter_map(|(stem, expires, bytes)| {
                Some(SessionSummary {
                    stem,
                    expires_at: OffsetDateTime::from_unix_timestamp(expires).ok()?,
                    bytes: u64::try_from(bytes).ok(),
                })
            })
            .collect();
        Ok((page, next))
    }

    async fn run<T: Send + 'static>(
        &self,
        id: Option<&SessionId>,
        abandoned: Abandoned,
        work: impl FnOnce(&Inner, &mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        let affinity = id.map_or(0, |id| id.digest()[0]);
        self.io
            .run(affinity, abandoned, move || inner.with_connection(work))
            .await
    }
}

impl Inner {
    fn now_secs(&self) -> (OffsetDateTime, i64) {
        let now = self.clock.now();
        (now, now.unix_timestamp())
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(engine)?;
        conn.busy_timeout(self.busy_timeout).map_err(engine)?;
        // WAL lets readers go on beside the one writer, across processes. NORMAL syncs at each
        // checkpoint, not each commit: a power cut (not a crash of this process) may lose the
        // last writes, which for sessions means a few visitors are logged out; FULL would put an
        // fsync on every request's write.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(engine)?;
        Ok(conn)
    }

    /// Runs `work` with an idle connection (or a new one), which goes back to the pool unless
    /// the work failed on it.
    fn with_connection<T>(
        &self,
        work: impl FnOnce(&Self, &mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let taken = self.idle.lock().pop();
        let mut conn = match taken {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = work(self, &mut conn);
        if result.is_ok() {
            let mut idle = self.idle.lock();
            if idle.len() < THREADS + 1 {
                idle.push(conn);
            }
        }
        result
    }

    fn delete_expired(&self) -> Result<u64, StoreError> {
        let (_, now) = self.now_secs();
        let mut total = 0u64;
        self.with_connection(|_, conn| {
            let mut batch = conn
                .prepare_cached(
                    "DELETE FROM sessions WHERE id IN \
                     (SELECT id FROM sessions WHERE expires_at <= ?1 LIMIT ?2)",
                )
                .map_err(engine)?;
            loop {
                let started = Instant::now();
                let writing = self.writer.lock();
                let deleted = batch.execute(params![now, SWEEP_BATCH]).map_err(engine)?;
                drop(writing);
                total = total.saturating_add(deleted as u64);
                if deleted < SWEEP_BATCH as usize {
                    break;
                }
                // As long again between batches: the sweep never holds the write lock more
                // than half the time, so requests' writes get in between.
                std::thread::sleep(started.elapsed().max(MIN_SWEEP_PAUSE));
            }
            drop(batch);
            conn.execute(
                "DELETE FROM sessions_corrupt WHERE set_aside_at <= ?1",
                params![now.saturating_sub(QUARANTINE_SECS)],
            )
            .map_err(engine)?;
            Ok(total)
        })
    }
}

/// The live record stored under `stem`, if any. A row that is not a record is set aside.
fn live_record(
    conn: &Connection,
    id: &SessionId,
    now: i64,
) -> Result<Option<SessionRecord>, StoreError> {
    let stem = id.stem();
    let row: Option<String> = conn
        .prepare_cached("SELECT record FROM sessions WHERE id = ?1 AND expires_at > ?2")
        .map_err(engine)?
        .query_row(params![stem, now], |r| r.get(0))
        .optional()
        .map_err(engine)?;
    let Some(text) = row else { return Ok(None) };
    match SessionRecord::from_bytes(text.as_bytes()) {
        Ok(record) => Ok(Some(record)),
        Err(e) => {
            tracing::warn!(session = %id.log_tag(), error = %e, "stored session is not a record; set aside in sessions_corrupt");
            // A savepoint, not a transaction: the caller may already be in one.
            conn.execute_batch("SAVEPOINT set_aside").map_err(engine)?;
            conn.execute(
                "INSERT INTO sessions_corrupt (id, set_aside_at, record) \
                 SELECT id, ?2, record FROM sessions WHERE id = ?1",
                params![stem, now],
            )
            .map_err(engine)?;
            conn.execute("DELETE FROM sessions WHERE id = ?1", params![stem])
                .map_err(engine)?;
            conn.execute_batch("RELEASE set_aside").map_err(engine)?;
            Ok(None)
        }
    }
}

#[async_trait]
impl SessionBackend for SqliteSessionStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        super::config::CAPABILITIES
    }

    async fn load_live(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let owned = id.clone();
        self.run(Some(id), Abandoned::Skip, move |inner, conn| {
            let (_, now) = inner.now_secs();
            Ok(live_record(conn, &owned, now)?.as_ref().map(Loaded::from))
        })
        .await
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let (now, _) = self.inner.now_secs();
        let record = SessionRecord::new(&state, now, now, ttl)?;
        let body = record.to_text(self.inner.max_bytes)?;
        let (created, expires) = (
            record.created_at.unix_timestamp(),
            record.expires_at.unix_timestamp(),
        );
        self.run(None, Abandoned::StillRun, move |inner, conn| {
            let _writing = inner.writer.lock();
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO sessions (id, created_at, expires_at, record) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
                )
                .map_err(engine)?;
            let (id, ()) = crate::store::id::with_fresh_id(|id| {
                let inserted = insert
                    .execute(params![id.stem(), created, expires, body])
                    .map_err(engine)?;
                Ok((inserted == 1).then_some(()))
            })?;
            Ok(id)
        })
        .await
    }

    async fn update(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let (now, _) = self.inner.now_secs();
        let mut record = SessionRecord::new(&state, now, now, ttl)?;
        let max_bytes = self.inner.max_bytes;
        let affinity = id.clone();
        let updated = self
            .run(Some(&affinity), Abandoned::StillRun, move |inner, conn| {
                let _writing = inner.writer.lock();
                let now = now.unix_timestamp();
                // IMMEDIATE takes the write lock first, so that no other process can delete or
                // rewrite the row between the read of its creation time and the write.
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(engine)?;
                let created: Option<i64> = tx
                    .prepare_cached(
                        "SELECT created_at FROM sessions WHERE id = ?1 AND expires_at > ?2",
                    )
                    .map_err(engine)?
                    .query_row(params![id.stem(), now], |r| r.get(0))
                    .optional()
                    .map_err(engine)?;
                let Some(created) = created else {
                    return Ok(None);
                };
                if let Ok(at) = OffsetDateTime::from_unix_timestamp(created) {
                    record.created_at = at;
                }
                let body = record.to_text(max_bytes)?;
                tx.prepare_cached("UPDATE sessions SET expires_at = ?2, record = ?3 WHERE id = ?1")
                    .map_err(engine)?
                    .execute(params![id.stem(), record.expires_at.unix_timestamp(), body])
                    .map_err(engine)?;
                tx.commit().map_err(engine)?;
                Ok(Some(id))
            })
            .await?;
        match updated {
            Some(id) => Ok(id),
            None => ended(&affinity),
        }
    }

    async fn update_ttl(&self, id: &SessionId, ttl: &time::Duration) -> Result<(), StoreError> {
        let (now, _) = self.inner.now_secs();
        let ttl = *ttl;
        let owned = id.clone();
        self.run(Some(id), Abandoned::StillRun, move |inner, conn| {
            let _writing = inner.writer.lock();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(engine)?;
            let Some(mut record) = live_record(&tx, &owned, now.unix_timestamp())? else {
                return Ok(());
            };
            let before = record.expires_at;
            record.extend(now, &ttl)?;
            if record.expires_at == before {
                return Ok(());
            }
            // Only the times changed; the data's size was checked when it was written.
            let body = record.to_text(usize::MAX)?;
            tx.prepare_cached("UPDATE sessions SET expires_at = ?2, record = ?3 WHERE id = ?1")
                .map_err(engine)?
                .execute(params![
                    owned.stem(),
                    record.expires_at.unix_timestamp(),
                    body
                ])
                .map_err(engine)?;
            tx.commit().map_err(engine)
        })
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.delete_row(id.digest()).await
    }

    async fn expires_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        let stem = id.stem();
        let at: Option<i64> = self
            .run(Some(id), Abandoned::Skip, move |inner, conn| {
                let (_, now) = inner.now_secs();
                conn.prepare_cached(
                    "SELECT expires_at FROM sessions WHERE id = ?1 AND expires_at > ?2",
                )
                .map_err(engine)?
                .query_row(params![stem, now], |r| r.get(0))
                .optional()
                .map_err(engine)
            })
            .await?;
        Ok(at.and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok()))
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        if self.inner.health.fresh() {
            return Ok(());
        }
        self.run(None, Abandoned::Skip, |inner, conn| {
            // Taking the write lock is what every session write needs: a database another
            // process holds locked past the busy timeout, or a file that cannot be written,
            // fails here.
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
                .map_err(engine)?;
            inner.health.passed();
            Ok(())
        })
        .await
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.run(None, Abandoned::StillRun, |inner, _| inner.delete_expired())
            .await
    }

    async fn list(&self) -> Result<Vec<SessionSummary>, StoreError> {
        crate::store::backend::collect_listing(self.list_batches()).await
    }

    /// Keyset pages by id ([`LIST_BATCH`] rows each), each a short read, until a short page: no
    /// read transaction stays open across a listing of millions.
    fn list_batches(&self) -> crate::store::backend::Listing<'_> {
        crate::store::backend::keyset_listing(move |after| self.list_page(after))
    }

    async fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let stem = crate::store::id::stem(digest);
        let row: Option<String> = self
            .run(None, Abandoned::Skip, move |_, conn| {
                conn.prepare_cached("SELECT record FROM sessions WHERE id = ?1")
                    .map_err(engine)?
                    .query_row(params![stem], |r| r.get(0))
                    .optional()
                    .map_err(engine)
            })
            .await?;
        row.map(|text| SessionRecord::from_bytes(text.as_bytes()).map_err(StoreError::NotARecord))
            .transpose()
    }

    async fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.delete_row(digest).await
    }
}

crate::store::actix::actix_store!(SqliteSessionStore, s => s);

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
