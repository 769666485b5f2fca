//! [`FileSessionStore`]: one pretty-printed JSON file per session, the way Flask-Session's
//! `filesystem` type keeps them, without its flaws.
//!
//! Layout of the session folder (created 0700 if missing):
//! - `<sha256(id) hex>.json`: one session ([`SessionRecord`]), mode 0600. The file's modification
//!   time is set to the session's expiry, so the sweeper finds expired files from their metadata
//!   and `ls -l` shows when each session ends.
//! - `.tmp/<process>/`: where each server process writes a new version before swapping it into
//!   place (see [`crate::atomic`]). Each process holds a lock on its own folder; folders whose lock
//!   is free belong to dead processes and are removed at start-up and by the sweeper.
//! - `.locks/`: one lock file per session when `[session] lock = true` (see
//!   [`crate::web::lock`]).
//! - `.corrupt/`: files that could not be read as sessions, and anything in the folder that is not
//!   what the store keeps at its place (a FIFO, a socket, a link, a file over the size limit),
//!   moved aside for inspection and removed after [`QUARANTINE_DAYS`] days.
//!
//! Ordering: every job that touches one session's file (load, write, delete, and the sweeper's
//! deletion of an expired file) runs on the I/O thread chosen by the session's digest, so within a
//! process they happen one after another, in the order they were sent. A session whose file has
//! vanished when a request writes it has ended (logged out, expired, deleted by hand): the write
//! is dropped and the session stays ended (`docs/design.md`, "Deletion wins").
//!
//! Why it is fast: with `read_cache = true` the store sits behind the read cache
//! ([`CachingStore`]), to which it tells a session's [`FileVersion`] with one `stat` on the
//! worker, so that a session whose file is still the version last read or written is served from
//! memory; a session whose expiry did not move (same whole second) costs no write ([`memo`]); a
//! write never renames over an existing file (see [`crate::atomic`]); and all other file work
//! runs on the store's own I/O thread, never on an actix worker.
//!
//! Files: `mod.rs` is the store's face; `entry.rs` is the one open (no link followed, no FIFO
//! waited on, no read past the size cap) everything in the folder goes through; `disk.rs` reads
//! and writes one session; `delete.rs` deletes one; `version.rs` tells file versions apart;
//! `memo.rs` remembers session times for the writes; `sweep.rs` deletes expired sessions and
//! moves junk aside; `folder.rs` keeps the folders.
//!
//! One file: the store's public face (options, `open`, the `SessionBackend` calls); each of
//! them is a few lines over the modules named above, where the work is.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use time::OffsetDateTime;

pub mod config;
mod delete;
mod disk;
mod engine;
mod entry;
mod folder;
mod memo;
mod sweep;
mod version;
mod versioned;

pub use entry::Junk;
use entry::create_private_dir;
use folder::{claim_temp_dir, remove_dead_temp_dirs};
use memo::Memo;
pub use config::FilesystemConfig;
pub use engine::Kind;
pub use version::FileVersion;

use crate::store::backend::{Loaded, Capabilities, SessionBackend, SessionSummary};
use crate::store::cache::{CachingStore, Versioned};
use crate::store::io_threads::{Abandoned, IoThreads};
use crate::store::record::{expiry_after, SessionRecord, SessionState};
use crate::store::{id, Clock, SessionId, Store, StoreError};
use crate::atomic::Durability;
use crate::config::SessionConfig;

/// The file store `config` describes.
pub(crate) fn open(config: &SessionConfig) -> Result<Store, StoreError> {
    let fs = &config.filesystem;
    let store = FileSessionStore::open(
        FileStoreOptions::new(&fs.dir)
            .durability(fs.durability)
            .io_threads(fs.io_threads)
            .max_session_bytes(config.max_session_bytes)
            .clock(config.clock.clone()),
    )?;
    // Sound with `lock` and with several processes: each load checks that the file is still the
    // version cached, so a request reads what the previous one wrote, in any process.
    Ok(if fs.read_cache {
        Store::new(CachingStore::new(store, CACHE_BYTES))
    } else {
        Store::new(store)
    })
}

/// Quarantined files older than this are deleted by the sweeper.
pub const QUARANTINE_DAYS: u64 = 7;
pub use crate::store::DEFAULT_MAX_SESSION_BYTES;
/// How much memory the read cache may take (about 130,000 typical logged-in sessions). Past it
/// the least useful sessions are evicted, which only costs them a file read at their next
/// request.
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// How much memory the times remembered for the writes may take (about 170,000 sessions).
pub const MEMO_BYTES: u64 = 16 * 1024 * 1024;

/// Everything a [`FileSessionStore`] needs to know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileStoreOptions {
    pub dir: PathBuf,
    pub durability: Durability,
    pub max_session_bytes: usize,
    /// Threads doing the file work (see [`crate::store::io_threads`]).
    pub io_threads: usize,
    /// Upper bound of the memory spent remembering session times ([`memo`]).
    pub memo_bytes: u64,
    /// What expiry is judged by (see [`Clock`]).
    pub clock: Clock,
}

impl FileStoreOptions {
    /// Defaults for `dir`: process durability, 64 KiB sessions, one I/O
    /// thread (measured fastest when writes only reach the page cache; see `docs/design.md`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            durability: Durability::Process,
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
            io_threads: 1,
            memo_bytes: MEMO_BYTES,
            clock: Clock::system(),
        }
    }

    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    #[must_use]
    pub fn io_threads(mut self, count: usize) -> Self {
        self.io_threads = count;
        self
    }

    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    #[must_use]
    pub fn max_session_bytes(mut self, limit: usize) -> Self {
        self.max_session_bytes = limit;
        self
    }

    #[must_use]
    pub fn memo_bytes(mut self, bytes: u64) -> Self {
        self.memo_bytes = bytes;
        self
    }
}

/// Sessions as JSON files in one folder. Cheap to clone: clones share one folder, one sweeper.
/// It keeps no session data in memory: for that, put it behind a [`CachingStore`].
///
/// # Example
/// ```no_run
/// use session_server::engines::filesystem::{FileSessionStore, FileStoreOptions};
/// let store = FileSessionStore::open(FileStoreOptions::new("sessions"))?;
/// # Ok::<(), session_server::store::StoreError>(())
/// ```
///
/// # Limitations
/// Two requests of one session that run at the same time both succeed and the later write wins,
/// as in Flask-Session and actix-session's stores; each file is always whole.
#[derive(Clone)]
pub struct FileSessionStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    tmp_root: PathBuf,
    corrupt_dir: PathBuf,
    durability: Durability,
    max_bytes: usize,
    clock: Clock,
    /// This process's temporary folder, and the open handle that keeps it locked for as long as
    /// the store lives. Replaced when the folder has to be made again (the session folder was
    /// removed or replaced while the server ran).
    tmp: Mutex<(PathBuf, std::fs::File)>,
    next_tmp: AtomicU64,
    /// When the sessions this process last read or wrote began and end.
    memo: Memo,
    io: IoThreads,
    /// When a health probe last succeeded.
    health: crate::store::health::Health,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: usize,
    /// Moved to `.corrupt/`: unreadable session files, and junk anywhere in the folder (a FIFO,
    /// a socket, a link, a file over the size limit).
    pub quarantined: usize,
    pub stale_temp_dirs: usize,
}

impl FileSessionStore {
    /// Opens (creating it 0700 if needed) the session folder, clears temporary files left by dead
    /// processes, and starts the sweeper. Does not read the session files themselves.
    pub fn open(options: FileStoreOptions) -> Result<Self, StoreError> {
        let dir = options.dir;
        create_private_dir(&dir)?;
        let tmp_root = dir.join(".tmp");
        create_private_dir(&tmp_root)?;
        let corrupt_dir = dir.join(".corrupt");
        // Each piece of junk in `.tmp/` is logged as it is moved aside.
        let removed = remove_dead_temp_dirs(&tmp_root, &corrupt_dir).removed;
        if removed > 0 {
            tracing::info!(
                folders = removed,
                "removed temporary files left by stopped processes"
            );
        }
        let tmp = claim_temp_dir(&tmp_root)?;
        let io = IoThreads::start("session-io", options.io_threads)?;
        let inner = Arc::new(Inner {
            corrupt_dir,
            dir,
            tmp_root,
            durability: options.durability,
            max_bytes: options.max_session_bytes,
            clock: options.clock,
            tmp: Mutex::new(tmp),
            next_tmp: AtomicU64::new(0),
            memo: Memo::new(options.memo_bytes),
            io,
            health: crate::store::health::Health::default(),
        });
        // Warns once if this file system makes updates non-atomic (NFS, some FUSE).
        crate::atomic::probe_swaps(&inner.dir).map_err(StoreError::io(&inner.dir))?;
        Ok(Self { inner })
    }

    /// Runs file work for the session with `digest` on the store's I/O thread for it. A write
    /// is carried out even if the request is cancelled; a read (`Abandoned::Skip`) is skipped
    /// if its caller has gone by then.
    async fn on_io_thread<T: Send + 'static>(
        &self,
        digest: &[u8; 32],
        abandoned: Abandoned,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        let result = self
            .inner
            .io
            .run(digest[0], abandoned, move || work(&inner))
            .await;
        self.note_failure(result)
    }

    /// A failed write makes the next health check probe again, at once.
    fn note_failure<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if matches!(result, Err(StoreError::Io { .. })) {
            self.inner.health.forget();
        }
        result
    }

    /// The session folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file a session id is kept in (whether or not it exists).
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.inner.path_of(&id::digest(key))
    }

    /// Deletes expired sessions and stale temporary files now. Blocking (it waits for the I/O
    /// threads, which do the deleting): call it off the async workers.
    pub fn sweep(&self) -> SweepReport {
        self.inner.sweep(self.inner.clock.now())
    }

    /// Writes, reads back and removes a probe file: whether sessions can be stored right now. A
    /// success stands for a second ([`crate::store::health`]), so that a health checker (or anyone requesting
    /// `/healthz` in a loop) costs at most one probe file a second.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        if self.inner.health.fresh() {
            return Ok(());
        }
        self.on_io_thread(&[0; 32], Abandoned::Skip, Inner::check_writable)
            .await?;
        self.inner.health.passed();
        Ok(())
    }
}

#[async_trait]
impl SessionBackend for FileSessionStore {
    fn kind(&self) -> &'static str {
        "filesystem"
    }

    fn capabilities(&self) -> Capabilities {
        config::CAPABILITIES
    }

    async fn load_live(&self, key: &SessionId) -> Result<Option<Loaded>, StoreError> {
        // One stat on the worker: a vanished file is answered at once, with no hop to the I/O
        // thread; anything else is the I/O thread's to read, and to report.
        if let Err(e) = std::fs::metadata(self.inner.path_of(key.digest())) {
            if e.kind() == std::io::ErrorKind::NotFound {
                self.inner.memo.forget(key.digest());
                return Ok(None);
            }
        }
        Ok(self.load_versioned(key).await?.map(Loaded::from))
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let (record, thread) = new_session(&state, ttl, self.inner.clock.now())?;
        self.on_io_thread(&thread, Abandoned::StillRun, move |inner| {
            inner.save(&record)
        })
        .await
    }

    async fn update(
        &self,
        key: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let now = self.inner.clock.now();
        let record = SessionRecord::new(&state, now, now, ttl)?;
        let digest = *key.digest();
        self.on_io_thread(&digest, Abandoned::StillRun, move |inner| {
            inner.update(key, record, inner.clock.now())
        })
        .await
    }

    async fn update_ttl(&self, key: &SessionId, ttl: &time::Duration) -> Result<(), StoreError> {
        let digest = *key.digest();
        let now = self.inner.clock.now();
        // The common case under load: this second's expiry is already on disk. No hop, no I/O.
        if self.inner.expiry_reached(&digest, expiry_after(now, ttl)?) {
            return Ok(());
        }
        let (key, ttl) = (key.clone(), *ttl);
        self.on_io_thread(&digest, Abandoned::StillRun, move |inner| {
            inner.update_ttl(&key, &ttl, now)
        })
        .await
    }

    async fn delete(&self, key: &SessionId) -> Result<(), StoreError> {
        let digest = *key.digest();
        self.on_io_thread(&digest, Abandoned::StillRun, move |inner| {
            inner.remove(&digest)
        })
        .await
    }

    async fn expires_at(&self, key: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        let digest = *key.digest();
        let key = key.clone();
        let record = self
            .on_io_thread(&digest, Abandoned::Skip, move |inner| {
                inner.load(&key, inner.clock.now())
            })
            .await?;
        Ok(record.map(|r| r.expires_at))
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        self.check_writable().await
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let store = self.clone();
        let report = tokio::task::spawn_blocking(move || store.inner.sweep_and_log())
            .await
            .map_err(|e| StoreError::JobPanicked(e.to_string()))?;
        Ok(u64::try_from(report.expired).unwrap_or(u64::MAX))
    }

    async fn list(&self) -> Result<Vec<SessionSummary>, StoreError> {
        crate::store::backend::collect_listing(self.list_batches()).await
    }

    /// The folder read on a blocking thread, one batch at a time through a channel of two: the
    /// reader holds at most a few batches, however many files there are, and stops reading
    /// when the listing is dropped.
    fn list_batches(&self) -> crate::store::backend::Listing<'_> {
        let inner = Arc::clone(&self.inner);
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::task::spawn_blocking(move || {
            // A panic ends the listing with an error, never as if the folder had ended.
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.list_each(|batch| tx.blocking_send(Ok(batch)).is_ok())
            }))
            .unwrap_or_else(|_| Err(StoreError::JobPanicked("listing the folder".into())));
            if let Err(e) = done {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        }))
    }

    /// The whole batch read on one blocking thread: a million files are not a million hand-offs.
    async fn inspect_batch(
        &self,
        digests: Vec<[u8; 32]>,
    ) -> Vec<Result<Option<SessionRecord>, StoreError>> {
        let inner = Arc::clone(&self.inner);
        let count = digests.len();
        match tokio::task::spawn_blocking(move || {
            digests
                .iter()
                .map(|digest| inner.inspect(digest))
                .collect::<Vec<_>>()
        })
        .await
        {
            Ok(records) => records,
            Err(e) => (0..count)
                .map(|_| Err(StoreError::JobPanicked(e.to_string())))
                .collect(),
        }
    }

    /// Waits for each I/O thread to finish the jobs it was given (writes outlive their
    /// requests), then removes this process's temporary folder.
    async fn close(&self) -> Result<(), StoreError> {
        for thread in 0..self.inner.io.count() {
            let affinity = u8::try_from(thread).unwrap_or(u8::MAX);
            self.inner
                .io
                .run(affinity, Abandoned::StillRun, || Ok(()))
                .await?;
        }
        self.inner.remove_tmp_dir();
        Ok(())
    }

    /// Read as a request reads (no link followed, no FIFO waited on, nothing past the size cap)
    /// but moving nothing: what is not a session file is [`StoreError::NotASessionFile`], left
    /// for the sweeper.
    async fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let digest = *digest;
        tokio::task::spawn_blocking(move || inner.inspect(&digest))
            .await
            .map_err(|e| StoreError::JobPanicked(e.to_string()))?
    }

    async fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        let digest = *digest;
        self.on_io_thread(&digest, Abandoned::StillRun, move |inner| {
            inner.remove(&digest)
        })
        .await
    }
}

/// This process's temporary folder goes with the store: a clean stop leaves nothing behind
/// (a killed process's folder is removed by the next start or sweep).
impl Drop for Inner {
    fn drop(&mut self) {
        self.remove_tmp_dir();
    }
}

impl Inner {
    fn remove_tmp_dir(&self) {
        let dir = self.tmp.lock().0.clone();
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove this process's temporary folder");
            }
        }
    }
}

/// A new session's record, and the I/O thread to write it on: a new session has no thread of
/// its own yet, so any will do.
fn new_session(
    state: &SessionState,
    ttl: &time::Duration,
    now: OffsetDateTime,
) -> Result<(SessionRecord, [u8; 32]), StoreError> {
    let record = SessionRecord::new(state, now, now, ttl)?;
    let affinity = u8::try_from(now.nanosecond() & 0xff).unwrap_or(0);
    Ok((record, [affinity; 32]))
}

crate::store::actix::actix_store!(FileSessionStore, s => s);

#[cfg(test)]
mod tests;
