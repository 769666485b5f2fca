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
//! - `.corrupt/`: files that could not be read as sessions, moved aside for inspection and removed
//!   after [`QUARANTINE_DAYS`] days.
//!
//! Why it is fast: a session read from disk within the last second is served from memory while
//! no other server process uses the folder ([`CACHE_MAX_AGE`]); a session whose expiry did not
//! move (same whole second) costs no write; a write never renames over an existing file (see
//! [`crate::atomic`]); and all file work runs on the store's own I/O thread, never on an actix
//! worker. `docs/design.md` has the measurements.
//!
//! Files: `mod.rs` reads and writes sessions; `sweep.rs` deletes expired ones; `folder.rs` keeps
//! the temporary folders.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use time::OffsetDateTime;

mod folder;
mod sweep;

use folder::{
    claim_temp_dir, create_private_dir, other_live_process, read_capped, remove_dead_temp_dirs,
};
use sweep::spawn_sweeper;

use super::io_threads::IoThreads;
use super::record::{SessionRecord, SessionState};
use super::{id, StoreError};
use crate::atomic::{self, Durability, Placed};

/// Quarantined files older than this are deleted by the sweeper.
pub const QUARANTINE_DAYS: u64 = 7;
/// Default largest serialized session.
pub const DEFAULT_MAX_SESSION_BYTES: usize = 64 * 1024;
/// How many sessions are remembered (their expiry, to skip writes, and their content, to serve
/// reads); past this the memory is dropped whole, which only costs a few extra reads and writes.
const MEMORY_LIMIT: usize = 20_000;
/// How long a session read from disk may be served from memory before it is read again: the
/// longest a change made by hand (or by a server process that has just started) goes unseen.
pub const CACHE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);
/// Reserved state key marking a load served from memory (never stored: see
/// [`super::record::RESERVED_PREFIX`]).
const CACHED_KEY: &str = "$cached";

/// Everything a [`FileSessionStore`] needs to know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileStoreOptions {
    pub dir: PathBuf,
    pub durability: Durability,
    pub max_session_bytes: usize,
    /// How often expired files are swept; `None` starts no sweeper.
    pub cleanup_interval: Option<Duration>,
    /// Threads doing the file work (see [`super::io_threads`]).
    pub io_threads: usize,
    /// Serve a session read from disk within [`CACHE_MAX_AGE`] from memory, while no other
    /// server process uses the folder.
    pub read_cache: bool,
}

impl FileStoreOptions {
    /// Defaults for `dir`: process durability, 64 KiB sessions, a sweep every minute, one I/O
    /// thread (measured fastest when writes only reach the page cache; see `docs/design.md`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            durability: Durability::Process,
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
            cleanup_interval: Some(Duration::from_secs(60)),
            io_threads: 1,
            read_cache: true,
        }
    }

    #[must_use]
    pub fn read_cache(mut self, on: bool) -> Self {
        self.read_cache = on;
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
    pub fn cleanup_interval(mut self, every: Option<Duration>) -> Self {
        self.cleanup_interval = every;
        self
    }
}

/// Sessions as JSON files in one folder. Cheap to clone: clones share one folder, one sweeper.
///
/// # Example
/// ```no_run
/// use session_server::store::{FileSessionStore, FileStoreOptions};
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
    io: Arc<IoThreads>,
}

struct Inner {
    dir: PathBuf,
    tmp_root: PathBuf,
    corrupt_dir: PathBuf,
    durability: Durability,
    max_bytes: usize,
    /// This process's temporary folder, and the open handle that keeps it locked for as long as
    /// the store lives. Replaced when the folder has to be made again (the session folder was
    /// removed or replaced while the server ran).
    tmp: Mutex<(PathBuf, File)>,
    next_tmp: AtomicU64,
    /// What this process last read or wrote for each session, by id digest.
    seen: Mutex<HashMap<[u8; 32], Seen>>,
    read_cache: bool,
    /// Whether this is the only live server process using the folder: the read cache is only
    /// sound then. Rechecked at most every [`ALONE_RECHECK`] by the I/O thread.
    alone: AtomicBool,
    alone_checked: Mutex<Instant>,
}

/// How often the I/O thread rechecks that no other server process uses the folder.
const ALONE_RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

struct Seen {
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    /// The session's state as on disk, when the read cache is on.
    state: Option<Arc<SessionState>>,
    /// When the session was last read from disk (or first written by this process).
    verified_at: Instant,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: usize,
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
        let removed = remove_dead_temp_dirs(&tmp_root);
        if removed > 0 {
            tracing::info!(
                folders = removed,
                "removed temporary files left by stopped processes"
            );
        }
        let tmp = claim_temp_dir(&tmp_root)?;
        let alone = !other_live_process(&tmp_root, &tmp.0);
        let inner = Arc::new(Inner {
            corrupt_dir: dir.join(".corrupt"),
            dir,
            tmp_root,
            durability: options.durability,
            max_bytes: options.max_session_bytes,
            tmp: Mutex::new(tmp),
            next_tmp: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
            read_cache: options.read_cache,
            alone: AtomicBool::new(alone),
            alone_checked: Mutex::new(Instant::now()),
        });
        if let Some(every) = options.cleanup_interval {
            spawn_sweeper(Arc::downgrade(&inner), every);
        }
        let io = Arc::new(IoThreads::start("session-io", options.io_threads)?);
        Ok(Self { inner, io })
    }

    /// Runs file work for the session with `digest` on the store's I/O threads.
    async fn on_io_thread<T: Send + 'static>(
        &self,
        digest: &[u8; 32],
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        self.io.run(digest[0], move || work(&inner)).await
    }

    /// The session folder.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file a session id is kept in (whether or not it exists).
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.inner.path_of(&id::digest(key))
    }

    /// Deletes expired sessions and stale temporary files now. Blocking: call it off the async
    /// workers.
    pub fn sweep(&self) -> SweepReport {
        self.inner.sweep(SystemTime::now())
    }

    /// Writes, reads back and removes a probe file: whether sessions can be stored right now.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.on_io_thread(&[0; 32], Inner::check_writable).await
    }
}

impl Inner {
    fn check_writable(&self) -> Result<(), StoreError> {
        let payload = b"{\"probe\":true}";
        let probe = self.write_tmp_with(payload, None)?;
        let back = std::fs::read(&probe).map_err(StoreError::io(&probe));
        let _ = std::fs::remove_file(&probe);
        // Also the session folder itself: a write lands there by rename.
        let meta = std::fs::metadata(&self.dir).map_err(StoreError::io(&self.dir))?;
        if !meta.is_dir() {
            return Err(StoreError::Io {
                path: self.dir.clone(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        match back {
            Ok(b) if b == payload => Ok(()),
            Ok(_) => Err(StoreError::Io {
                path: probe,
                source: io::Error::new(io::ErrorKind::InvalidData, "probe read back differs"),
            }),
            Err(e) => Err(e),
        }
    }

    fn path_of(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.json", id::hex(digest)))
    }

    fn tmp_dir(&self) -> PathBuf {
        self.tmp
            .lock()
            .map(|t| t.0.clone())
            .unwrap_or_else(|p| p.into_inner().0.clone())
    }

    /// Makes this process's temporary folder again after it vanished with the session folder.
    fn reclaim_tmp_dir(&self) -> Result<(), StoreError> {
        create_private_dir(&self.dir)?;
        create_private_dir(&self.tmp_root)?;
        let fresh = claim_temp_dir(&self.tmp_root)?;
        tracing::warn!(dir = %fresh.0.display(), "temporary folder was missing and has been made again");
        *self
            .tmp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Remembers `record` as the session's content on disk. `read` says it was just read from
    /// disk; a write keeps the time of the last read, so that a change made by hand is noticed
    /// within [`CACHE_MAX_AGE`] even while the session is busy.
    fn remember(&self, digest: [u8; 32], record: &SessionRecord, read: bool) {
        let state = self.read_cache.then(|| Arc::new(record.state()));
        let mut map = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let verified_at = match map.get(&digest) {
            Some(seen) if !read => seen.verified_at,
            _ => Instant::now(),
        };
        if map.len() >= MEMORY_LIMIT && !map.contains_key(&digest) {
            map.clear();
        }
        let (created_at, expires_at) = (record.created_at, record.expires_at);
        map.insert(
            digest,
            Seen {
                created_at,
                expires_at,
                state,
                verified_at,
            },
        );
    }

    fn forget(&self, digest: &[u8; 32]) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(digest);
    }

    fn recall<T>(&self, digest: &[u8; 32], f: impl FnOnce(&Seen) -> T) -> Option<T> {
        self.seen.lock().ok()?.get(digest).map(f)
    }

    /// The session's state from memory, if the read cache may serve it: read from disk within
    /// [`CACHE_MAX_AGE`], not expired, and no other server process on the folder. Touches no file.
    fn cached_state(&self, digest: &[u8; 32], now: OffsetDateTime) -> Option<SessionState> {
        if !self.read_cache || !self.alone.load(Ordering::Acquire) {
            return None;
        }
        self.recall(digest, |seen| {
            let fresh = seen.verified_at.elapsed() < CACHE_MAX_AGE && seen.expires_at > now;
            fresh.then(|| seen.state.as_deref().cloned()).flatten()
        })
        .flatten()
    }

    /// Rechecks, at most every [`ALONE_RECHECK`], whether another server process uses the folder.
    fn recheck_alone(&self) {
        if !self.read_cache {
            return;
        }
        {
            let mut checked = self
                .alone_checked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if checked.elapsed() < ALONE_RECHECK {
                return;
            }
            *checked = Instant::now();
        }
        let alone = !other_live_process(&self.tmp_root, &self.tmp_dir());
        if self.alone.swap(alone, Ordering::AcqRel) != alone {
            tracing::info!(
                alone,
                "read cache {}",
                if alone {
                    "on: this is the only server process"
                } else {
                    "off: another server process uses the session folder"
                }
            );
        }
    }

    /// Reads a session; expired ones are deleted and unreadable ones moved aside, both as absent.
    fn load(&self, key: &str, now: OffsetDateTime) -> Result<Option<SessionRecord>, StoreError> {
        self.recheck_alone();
        let digest = id::digest(key);
        let path = self.path_of(&digest);
        let bytes = match read_capped(&path, self.max_bytes) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                self.quarantine(&path, &format!("larger than {} bytes", self.max_bytes));
                return Ok(None);
            }
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let record = match SessionRecord::from_bytes(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.quarantine(&path, &e.to_string());
                self.forget(&digest);
                return Ok(None);
            }
        };
        if record.is_expired(now) {
            self.remove(&digest)?;
            return Ok(None);
        }
        self.remember(digest, &record, true);
        Ok(Some(record))
    }

    /// Writes `record` under a fresh id, re-rolling on the (astronomically unlikely) collision.
    fn save(&self, record: &SessionRecord) -> Result<SessionKey, StoreError> {
        let bytes = record.to_bytes(self.max_bytes)?;
        let tmp = self.write_tmp(&bytes, record.expires_at)?;
        self.place_under_new_id(&tmp, record)
    }

    fn place_under_new_id(
        &self,
        tmp: &Path,
        record: &SessionRecord,
    ) -> Result<SessionKey, StoreError> {
        for _ in 0..8 {
            let key = id::generate()?;
            let digest = id::digest(key.as_ref());
            let path = self.path_of(&digest);
            match atomic::place_new(tmp, &path).map_err(StoreError::io(&path))? {
                Placed::Done => {
                    self.sync_dir()?;
                    self.remember(digest, record, false);
                    return Ok(key);
                }
                Placed::TargetExists | Placed::TargetMissing => continue,
            }
        }
        let _ = std::fs::remove_file(tmp);
        Err(StoreError::Random(
            "eight fresh session ids in a row were taken".into(),
        ))
    }

    /// Replaces the session's file; if it has vanished (expired, logged out) the state is saved
    /// under a new id rather than bringing the old id back.
    ///
    /// `from_cache` says this request's state was served from memory: if the file is gone, the
    /// session ended before the request (deleted by hand, say), and the write is dropped; the
    /// fresh id returned has no file, so the next request is anonymous.
    fn update(
        &self,
        key: &str,
        record: &mut SessionRecord,
        from_cache: bool,
    ) -> Result<SessionKey, StoreError> {
        let digest = id::digest(key);
        if let Some(created_at) = self.recall(&digest, |seen| seen.created_at) {
            record.created_at = created_at;
        }
        match self.replace(&digest, record)? {
            None => SessionKey::try_from(key.to_owned())
                .map_err(|e| StoreError::Random(format!("known id refused: {e}"))),
            Some(tmp) if from_cache => {
                let _ = std::fs::remove_file(&tmp);
                tracing::info!(session = %id::log_tag(key), "session file removed from outside; session ended");
                id::generate()
            }
            Some(tmp) => {
                tracing::info!(
                    session = %id::log_tag(key),
                    "session ended while a request was using it; its state is saved under a new id"
                );
                self.place_under_new_id(&tmp, record)
            }
        }
    }

    /// Swaps a new version of the session in. `None` when done; when the session's file has
    /// vanished, the new version is left at the returned temporary path for the caller to decide.
    fn replace(
        &self,
        digest: &[u8; 32],
        record: &SessionRecord,
    ) -> Result<Option<PathBuf>, StoreError> {
        let bytes = record.to_bytes(self.max_bytes)?;
        let tmp = self.write_tmp(&bytes, record.expires_at)?;
        let path = self.path_of(digest);
        match atomic::exchange(&tmp, &path).map_err(StoreError::io(&path))? {
            Placed::Done => {
                self.sync_dir()?;
                self.remember(*digest, record, false);
                Ok(None)
            }
            Placed::TargetMissing | Placed::TargetExists => {
                self.forget(digest);
                Ok(Some(tmp))
            }
        }
    }

    /// Whether the expiry last seen on disk is already `expires_at` or later, so that moving it
    /// costs nothing. Touches no file: safe on any thread.
    fn expiry_reached(&self, digest: &[u8; 32], expires_at: OffsetDateTime) -> bool {
        self.recall(digest, |s| s.expires_at >= expires_at)
            .unwrap_or(false)
    }

    /// Moves the expiry to `ttl` from `now`, rewriting the file unless it already says so.
    fn update_ttl(
        &self,
        key: &str,
        ttl: &time::Duration,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let digest = id::digest(key);
        let expires_at = super::record::expiry_after(now, ttl);
        if self.expiry_reached(&digest, expires_at) {
            return Ok(());
        }
        let Some(mut record) = self.load(key, now)? else {
            return Ok(());
        };
        record.expires_at = expires_at;
        record.ttl_seconds = ttl.whole_seconds().max(0).unsigned_abs();
        if let Some(tmp) = self.replace(&digest, &record)? {
            // Deleted meanwhile (logout in another tab): extending it would resurrect it.
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(())
    }

    fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.forget(digest);
        let path = self.path_of(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    fn write_tmp(&self, bytes: &[u8], expires_at: OffsetDateTime) -> Result<PathBuf, StoreError> {
        self.write_tmp_with(bytes, Some(expires_at.into()))
    }

    /// Writes a new temporary file, making the temporary folder again once if it has vanished.
    fn write_tmp_with(
        &self,
        bytes: &[u8],
        modified: Option<SystemTime>,
    ) -> Result<PathBuf, StoreError> {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed).to_string();
        let tmp = self.tmp_dir().join(&n);
        match atomic::write_new(&tmp, bytes, modified, self.durability) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.reclaim_tmp_dir()?;
                let tmp = self.tmp_dir().join(&n);
                atomic::write_new(&tmp, bytes, modified, self.durability)
                    .map_err(StoreError::io(&tmp))?;
                Ok(tmp)
            }
            Err(e) => Err(StoreError::Io {
                path: tmp,
                source: e,
            }),
            Ok(()) => Ok(tmp),
        }
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        if self.durability == Durability::Fsync {
            atomic::sync_dir(&self.dir).map_err(StoreError::io(&self.dir))?;
        }
        Ok(())
    }

    /// Moves an unreadable file out of the way so it is looked at once, logged, and kept for a
    /// person to inspect.
    fn quarantine(&self, path: &Path, why: &str) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let target = self.corrupt_dir.join(format!("{name}.{nanos}"));
        let moved = create_private_dir(&self.corrupt_dir)
            .map_err(|e| e.to_string())
            .and_then(|()| std::fs::rename(path, &target).map_err(|e| e.to_string()));
        match moved {
            Ok(()) => tracing::warn!(
                file = %path.display(), moved_to = %target.display(), reason = why,
                "unreadable session file moved aside; the request is served without a session"
            ),
            Err(e) => {
                let removed = std::fs::remove_file(path).is_ok();
                tracing::warn!(
                    file = %path.display(), reason = why, error = %e, removed,
                    "unreadable session file could not be moved aside"
                );
            }
        }
    }
}

impl SessionStore for FileSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let key: String = key.as_ref().to_owned();
        if !id::is_well_formed(&key) {
            return Ok(None);
        }
        let digest = id::digest(&key);
        // Served from memory when the read cache may: no hop to the I/O thread, no file touched.
        if let Some(mut state) = self.inner.cached_state(&digest, OffsetDateTime::now_utc()) {
            state.insert(CACHED_KEY.to_owned(), "true".to_owned());
            return Ok(Some(state));
        }
        let record = self
            .on_io_thread(&digest, move |inner| {
                inner.load(&key, OffsetDateTime::now_utc())
            })
            .await?;
        Ok(record.map(|r| r.state()))
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let now = OffsetDateTime::now_utc();
        let record = SessionRecord::new(&state, now, now, ttl)?;
        // A new session has no thread of its own yet: any will do.
        let affinity = u8::try_from(now.nanosecond() & 0xff).unwrap_or(0);
        Ok(self
            .on_io_thread(&[affinity; 32], move |inner| inner.save(&record))
            .await?)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let key: String = key.into();
        let now = OffsetDateTime::now_utc();
        let mut record = SessionRecord::new(&state, now, now, ttl)?;
        if !id::is_well_formed(&key) {
            return Ok(self
                .on_io_thread(&[0; 32], move |inner| inner.save(&record))
                .await?);
        }
        let digest = id::digest(&key);
        let from_cache = state.contains_key(CACHED_KEY);
        Ok(self
            .on_io_thread(&digest, move |inner| {
                inner.update(&key, &mut record, from_cache)
            })
            .await?)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        let key: String = key.as_ref().to_owned();
        if !id::is_well_formed(&key) {
            return Ok(());
        }
        let digest = id::digest(&key);
        let now = OffsetDateTime::now_utc();
        // The common case under load: this second's expiry is already on disk. No hop, no I/O.
        if self
            .inner
            .expiry_reached(&digest, super::record::expiry_after(now, ttl))
        {
            return Ok(());
        }
        let ttl = *ttl;
        Ok(self
            .on_io_thread(&digest, move |inner| inner.update_ttl(&key, &ttl, now))
            .await?)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let key: String = key.as_ref().to_owned();
        if !id::is_well_formed(&key) {
            return Ok(());
        }
        let digest = id::digest(&key);
        Ok(self
            .on_io_thread(&digest, move |inner| inner.remove(&digest))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::sweep::parse_file_name;
    use super::*;

    fn store(dir: &Path) -> FileSessionStore {
        FileSessionStore::open(FileStoreOptions::new(dir).cleanup_interval(None)).expect("open")
    }

    fn state(pairs: &[(&str, &str)]) -> SessionState {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn file_names_round_trip() {
        let d = id::digest("x");
        assert_eq!(parse_file_name(&format!("{}.json", id::hex(&d))), Some(d));
        assert_eq!(parse_file_name("notes.json"), None);
        assert_eq!(parse_file_name(&format!("{}.json", "G".repeat(64))), None);
    }

    #[test]
    fn expired_files_are_swept_by_their_content_and_corrupt_ones_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let now = OffsetDateTime::now_utc();
        let short =
            SessionRecord::new(&state(&[("a", "1")]), now, now, &time::Duration::seconds(1))
                .expect("record");
        let long = SessionRecord::new(&state(&[("a", "2")]), now, now, &time::Duration::hours(1))
            .expect("record");
        let gone = s.inner.save(&short).expect("save");
        let kept = s.inner.save(&long).expect("save");
        let bad = dir.path().join(format!("{}.json", "ab".repeat(32)));
        std::fs::write(&bad, b"{ torn").expect("write");
        File::options()
            .write(true)
            .open(&bad)
            .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH))
            .expect("age it");
        let report = s.inner.sweep(SystemTime::now() + Duration::from_secs(5));
        assert_eq!(report.expired, 1);
        assert_eq!(report.quarantined, 1);
        assert!(!s.path_of(gone.as_ref()).exists());
        assert!(s.path_of(kept.as_ref()).exists());
        assert!(!bad.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join(".corrupt"))
                .expect("ls")
                .count(),
            1
        );
    }

    #[test]
    fn dead_processes_temp_folders_are_removed_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stale = dir.path().join(".tmp/1-dead");
        std::fs::create_dir_all(&stale).expect("mkdir");
        std::fs::write(stale.join("7"), b"half").expect("write");
        let s = store(dir.path());
        assert!(!stale.exists());
        // A live store's folder survives another store opening the same folder.
        let _other = store(dir.path());
        assert!(s.inner.tmp_dir().exists());
    }

    #[test]
    fn unchanged_expiry_costs_no_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(dir.path());
        let now = OffsetDateTime::now_utc();
        let ttl = time::Duration::hours(1);
        let key = s
            .inner
            .save(&SessionRecord::new(&state(&[("a", "1")]), now, now, &ttl).expect("r"))
            .expect("save");
        let path = s.path_of(key.as_ref());
        let inode =
            |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).expect("stat"));
        let before = inode(&path);
        s.inner.update_ttl(key.as_ref(), &ttl, now).expect("ttl");
        assert_eq!(inode(&path), before, "same second: no rewrite");
        s.inner
            .update_ttl(key.as_ref(), &ttl, now + time::Duration::seconds(2))
            .expect("ttl");
        assert_ne!(inode(&path), before, "later second: rewritten");
    }
}
