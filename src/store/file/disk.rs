//! The file work for one session, run on the session's I/O thread: read, write (a new file
//! swapped into place), delete, and delete-if-expired, each keeping the memo of file versions
//! truthful.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use actix_session::storage::SessionKey;
use time::OffsetDateTime;

use super::folder::{claim_temp_dir, create_private_dir, read_capped};
use super::memo::FileVersion;
use super::Inner;
use crate::atomic::{self, Durability, Placed};
use crate::store::record::{expiry_after, SessionRecord};
use crate::store::{id, StoreError};

/// A new version written to this process's temporary folder, not yet in place.
struct Pending {
    path: PathBuf,
    /// Still open: after the swap it names the placed version, whose `fstat` the memo keeps.
    file: File,
}

impl Pending {
    fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a delete-if-expired found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Expiry {
    Deleted,
    Live,
    Absent,
    Quarantined,
}

impl Inner {
    pub(super) fn check_writable(&self) -> Result<(), StoreError> {
        let payload = b"{\"probe\":true}";
        let probe = self.write_tmp(payload, None)?;
        let back = std::fs::read(&probe.path).map_err(StoreError::io(&probe.path));
        let path = probe.path.clone();
        probe.discard();
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
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, "probe read back differs"),
            }),
            Err(e) => Err(e),
        }
    }

    pub(super) fn path_of(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.json", id::stem(digest)))
    }

    pub(super) fn tmp_dir(&self) -> PathBuf {
        self.tmp.lock().0.clone()
    }

    /// Makes this process's temporary folder again after it vanished with the session folder.
    fn reclaim_tmp_dir(&self) -> Result<(), StoreError> {
        create_private_dir(&self.dir)?;
        create_private_dir(&self.tmp_root)?;
        let fresh = claim_temp_dir(&self.tmp_root)?;
        tracing::warn!(dir = %fresh.0.display(), "temporary folder was missing and has been made again");
        *self.tmp.lock() = fresh;
        Ok(())
    }

    /// A fresh path in this process's temporary folder.
    fn tmp_path(&self) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir().join(n.to_string())
    }

    /// Reads a session. Unreadable files are moved aside and expired ones deleted, both as absent.
    pub(super) fn load(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let digest = id::digest(key);
        let path = self.path_of(&digest);
        let Some((record, version)) = self.read(&digest, &path)? else {
            return Ok(None);
        };
        if record.is_expired(now) {
            self.remove_if_expired(&digest, now)?;
            return Ok(None);
        }
        self.memo.remember(digest, version, &record);
        Ok(Some(record))
    }

    /// The record at `path` and the version it was read from; `None` if absent or unreadable
    /// (then moved aside).
    fn read(
        &self,
        digest: &[u8; 32],
        path: &Path,
    ) -> Result<Option<(SessionRecord, FileVersion)>, StoreError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.memo.forget(digest);
                return Ok(None);
            }
            Err(e) => return Err(StoreError::io(path)(e)),
        };
        let version = file
            .metadata()
            .map(|m| FileVersion::of(&m))
            .map_err(StoreError::io(path))?;
        let bytes = match read_capped(file, self.max_bytes) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                self.memo.forget(digest);
                self.quarantine(path, &format!("larger than {} bytes", self.max_bytes));
                return Ok(None);
            }
            Err(e) => return Err(StoreError::io(path)(e)),
        };
        match SessionRecord::from_bytes(&bytes) {
            Ok(r) => Ok(Some((r, version))),
            Err(e) => {
                self.memo.forget(digest);
                self.quarantine(path, &e.to_string());
                Ok(None)
            }
        }
    }

    /// Writes `record` under a fresh id, re-rolling on the (astronomically unlikely) collision.
    pub(super) fn save(&self, record: &SessionRecord) -> Result<SessionKey, StoreError> {
        let bytes = record.to_bytes(self.max_bytes)?;
        let pending = self.write_tmp(&bytes, Some(record.expires_at.into()))?;
        for _ in 0..8 {
            let key = id::generate()?;
            let digest = id::digest(key.as_ref());
            let path = self.path_of(&digest);
            match atomic::place_new(&pending.path, &path).map_err(StoreError::io(&path))? {
                Placed::Done => {
                    self.sync_dir()?;
                    self.remember_placed(digest, &pending.file, record);
                    return Ok(key);
                }
                Placed::TargetExists | Placed::TargetMissing => continue,
            }
        }
        pending.discard();
        Err(StoreError::IdsExhausted)
    }

    /// Replaces the session's file. If it has vanished, the session has ended (logged out,
    /// expired and swept, deleted by hand) and deletion wins: the write is dropped, and the fresh
    /// id returned has no file behind it, so the client's next request is anonymous.
    pub(super) fn update(
        &self,
        key: SessionKey,
        mut record: SessionRecord,
    ) -> Result<SessionKey, StoreError> {
        let digest = id::digest(key.as_ref());
        match self.created_at(&digest)? {
            Some(created_at) => record.created_at = created_at,
            None => return self.ended(key.as_ref()),
        }
        if self.replace(&digest, &record)? {
            Ok(key)
        } else {
            self.ended(key.as_ref())
        }
    }

    fn ended(&self, key: &str) -> Result<SessionKey, StoreError> {
        tracing::info!(
            session = %id::log_tag(key),
            "session ended while a request was using it; that request's changes are dropped"
        );
        id::generate()
    }

    /// When the session began: remembered, or read from its file; `None` if it has no file.
    fn created_at(&self, digest: &[u8; 32]) -> Result<Option<OffsetDateTime>, StoreError> {
        if let Some(seen) = self.memo.get(digest) {
            return Ok(Some(seen.created_at));
        }
        let path = self.path_of(digest);
        Ok(self.read(digest, &path)?.map(|(r, _)| r.created_at))
    }

    /// Swaps a new version of the session in; `false` (and nothing written) when its file has
    /// vanished.
    fn replace(&self, digest: &[u8; 32], record: &SessionRecord) -> Result<bool, StoreError> {
        let bytes = record.to_bytes(self.max_bytes)?;
        let pending = self.write_tmp(&bytes, Some(record.expires_at.into()))?;
        let path = self.path_of(digest);
        match atomic::exchange(&pending.path, &path).map_err(StoreError::io(&path))? {
            Placed::Done => {
                self.sync_dir()?;
                self.remember_placed(*digest, &pending.file, record);
                Ok(true)
            }
            Placed::TargetMissing | Placed::TargetExists => {
                self.memo.forget(digest);
                pending.discard();
                Ok(false)
            }
        }
    }

    fn remember_placed(&self, digest: [u8; 32], file: &File, record: &SessionRecord) {
        match file.metadata() {
            Ok(meta) => self.memo.remember(digest, FileVersion::of(&meta), record),
            // Not remembered: the next load reads the file.
            Err(_) => self.memo.forget(&digest),
        }
    }

    /// Whether the expiry last seen on disk is already `expires_at` or later, so that moving it
    /// costs nothing. Touches no file: safe on any thread.
    pub(super) fn expiry_reached(&self, digest: &[u8; 32], expires_at: OffsetDateTime) -> bool {
        self.memo
            .get(digest)
            .is_some_and(|seen| seen.expires_at >= expires_at)
    }

    /// Moves the expiry to `ttl` from `now`, rewriting the file unless it already says so. An
    /// ended session (no file, or expired) is left ended.
    pub(super) fn update_ttl(
        &self,
        key: &str,
        ttl: &time::Duration,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let digest = id::digest(key);
        if self.expiry_reached(&digest, expiry_after(now, ttl)?) {
            return Ok(());
        }
        let Some(mut record) = self.load(key, now)? else {
            return Ok(());
        };
        record.extend(now, ttl)?;
        // `false`: deleted meanwhile (logout in another process), and it stays deleted.
        self.replace(&digest, &record)?;
        Ok(())
    }

    /// Deletes the session's file (a logout): whatever version is there.
    pub(super) fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        let path = self.path_of(digest);
        let removed = match std::fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io { path, source: e }),
        };
        self.memo.forget(digest);
        removed
    }

    /// Deletes the session's file if, read again now, it is expired at `now`.
    ///
    /// The file is first taken out of place by a rename and judged as taken, so that what is
    /// deleted is exactly what was judged: a new version swapped in by another server process
    /// between a look and an unlink would otherwise be deleted unseen. (Within this process the
    /// session's I/O thread already orders the two.) A live version taken by such a race is put
    /// back at once.
    pub(super) fn remove_if_expired(
        &self,
        digest: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Expiry, StoreError> {
        let path = self.path_of(digest);
        let mut taken = self.tmp_path();
        let mut renamed = std::fs::rename(&path, &taken);
        if matches!(&renamed, Err(e) if e.kind() == io::ErrorKind::NotFound) && path.exists() {
            // It was our temporary folder that had gone.
            self.reclaim_tmp_dir()?;
            taken = self.tmp_path();
            renamed = std::fs::rename(&path, &taken);
        }
        match renamed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.memo.forget(digest);
                return Ok(Expiry::Absent);
            }
            Err(e) => return Err(StoreError::Io { path, source: e }),
        }
        self.memo.forget(digest);
        let judged = read_capped_path(&taken, self.max_bytes)
            .map_err(|e| e.to_string())
            .and_then(|b| SessionRecord::from_bytes(&b).map_err(|e| e.to_string()));
        match judged {
            Ok(record) if record.is_expired(now) => {
                let _ = std::fs::remove_file(&taken);
                self.sync_dir()?;
                Ok(Expiry::Deleted)
            }
            Ok(_) => {
                match atomic::place_new(&taken, &path).map_err(StoreError::io(&path))? {
                    Placed::Done => {}
                    // A newer version is in place already: it wins.
                    Placed::TargetExists | Placed::TargetMissing => {
                        let _ = std::fs::remove_file(&taken);
                    }
                }
                Ok(Expiry::Live)
            }
            Err(why) => {
                self.quarantine_as(&taken, &path, &why);
                Ok(Expiry::Quarantined)
            }
        }
    }

    /// Writes a new temporary file, making the temporary folder again once if it has vanished.
    fn write_tmp(&self, bytes: &[u8], modified: Option<SystemTime>) -> Result<Pending, StoreError> {
        let path = self.tmp_path();
        match atomic::write_new_file(&path, bytes, modified, self.durability) {
            Ok(file) => Ok(Pending { path, file }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.reclaim_tmp_dir()?;
                let path = self.tmp_path();
                let file = atomic::write_new_file(&path, bytes, modified, self.durability)
                    .map_err(StoreError::io(&path))?;
                Ok(Pending { path, file })
            }
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    pub(super) fn sync_dir(&self) -> Result<(), StoreError> {
        if self.durability == Durability::Fsync {
            atomic::sync_dir(&self.dir).map_err(StoreError::io(&self.dir))?;
        }
        Ok(())
    }

    /// Moves an unreadable session file out of the way so it is looked at once, logged, and kept
    /// for a person to inspect.
    pub(super) fn quarantine(&self, path: &Path, why: &str) {
        self.quarantine_as(path, path, why);
    }

    /// As [`Self::quarantine`] for a file now at `at` that was the session file `name_of`.
    fn quarantine_as(&self, at: &Path, name_of: &Path, why: &str) {
        let name = name_of
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let target = self.corrupt_dir.join(format!("{name}.{nanos}"));
        let moved = create_private_dir(&self.corrupt_dir)
            .map_err(|e| e.to_string())
            .and_then(|()| std::fs::rename(at, &target).map_err(|e| e.to_string()));
        match moved {
            Ok(()) => tracing::warn!(
                file = %name_of.display(), moved_to = %target.display(), reason = why,
                "unreadable session file moved aside; the request is served without a session"
            ),
            Err(e) => {
                let removed = std::fs::remove_file(at).is_ok();
                tracing::warn!(
                    file = %name_of.display(), reason = why, error = %e, removed,
                    "unreadable session file could not be moved aside"
                );
            }
        }
    }
}

fn read_capped_path(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
    read_capped(File::open(path)?, limit)
}
