//! The file work for one session, run on the session's I/O thread: read and write (a new file
//! swapped into place), each keeping the memo of session times truthful and reporting the file
//! version it read or placed (for the read cache). Deleting is `delete.rs`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use time::OffsetDateTime;

use super::entry::{self, Found};
use super::entry::create_private_dir;
use super::folder::claim_temp_dir;
use super::version::{stamp, FileVersion};
use super::Inner;
use crate::atomic::{self, Durability, Placed};
use crate::store::backend::ended;
use crate::store::record::{expiry_after, SessionRecord};
use crate::store::{id, SessionId, StoreError};

/// A new version written to this process's temporary folder, not yet in place. Dropped without
/// being placed (an error, a refused write, a panic), it removes its file.
struct Pending {
    path: PathBuf,
    /// Still open: after the swap it names the placed version, whose `fstat` is its version.
    file: File,
    placed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What reading a session file found.
pub(super) enum Read {
    Missing,
    /// Not a session (unparsable, too large, not a regular file): moved aside.
    Quarantined,
    Record(SessionRecord, FileVersion),
}

/// What a delete-if-expired found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Expiry {
    Deleted,
    Live,
    Absent,
    Quarantined,
}

/// What swapping a new version in did.
enum Swapped {
    /// In place, as this version (unknown if `fstat` failed).
    Placed(Option<FileVersion>),
    /// The session's file had vanished: nothing written.
    Vanished,
}

impl Inner {
    pub(super) fn check_writable(&self) -> Result<(), StoreError> {
        let payload = b"{\"probe\":true}";
        let probe = self.write_tmp(payload, None)?;
        let back = std::fs::read(&probe.path).map_err(StoreError::io(&probe.path));
        let path = probe.path.clone();
        drop(probe);
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
    pub(super) fn reclaim_tmp_dir(&self) -> Result<(), StoreError> {
        create_private_dir(&self.dir)?;
        create_private_dir(&self.tmp_root)?;
        let fresh = claim_temp_dir(&self.tmp_root)?;
        tracing::warn!(dir = %fresh.0.display(), "temporary folder was missing and has been made again");
        *self.tmp.lock() = fresh;
        Ok(())
    }

    /// A fresh path in this process's temporary folder.
    pub(super) fn tmp_path(&self) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir().join(n.to_string())
    }

    /// Reads a session. Unreadable files are moved aside and expired ones deleted, both as absent.
    pub(super) fn load(
        &self,
        key: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.load_versioned(key, now)?.map(|(record, _)| record))
    }

    /// [`Self::load`], with the version of the file the record was read from.
    pub(super) fn load_versioned(
        &self,
        key: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<(SessionRecord, FileVersion)>, StoreError> {
        let digest = *key.digest();
        let path = self.path_of(&digest);
        let Read::Record(mut record, mut version) = self.read(&digest, &path)? else {
            return Ok(None);
        };
        if record.is_expired(now) {
            if self.remove_judged(&digest, &path, version)? != Expiry::Live {
                return Ok(None);
            }
            // Another process wrote a live version meanwhile: that is the session now.
            match self.read(&digest, &path)? {
                Read::Record(r, v) if !r.is_expired(now) => (record, version) = (r, v),
                _ => return Ok(None),
            }
        }
        self.memo.remember(digest, &record);
        Ok(Some((record, version)))
    }

    /// The record at `path` and the version it was read from. A file that is not a session is
    /// moved aside; an I/O error is an error (a transient one must not cost a live session).
    /// Whatever is not a record is forgotten.
    pub(super) fn read(&self, digest: &[u8; 32], path: &Path) -> Result<Read, StoreError> {
        let read = self.read_file(path)?;
        if !matches!(read, Read::Record(..)) {
            self.memo.forget(digest);
        }
        Ok(read)
    }

    fn read_file(&self, path: &Path) -> Result<Read, StoreError> {
        let (bytes, meta) = match entry::read(path, self.max_bytes).map_err(StoreError::io(path))? {
            Found::Bytes(bytes, meta) => (bytes, meta),
            Found::Missing => return Ok(Read::Missing),
            Found::Junk(junk) => {
                self.quarantine(path, &junk.to_string());
                return Ok(Read::Quarantined);
            }
        };
        match SessionRecord::from_bytes(&bytes) {
            Ok(r) => Ok(Read::Record(r, FileVersion::of(&meta))),
            Err(e) => {
                self.quarantine(path, &e.to_string());
                Ok(Read::Quarantined)
            }
        }
    }

    /// Writes `record` under a fresh id, re-rolling on the (astronomically unlikely) collision.
    pub(super) fn save(&self, record: &SessionRecord) -> Result<SessionId, StoreError> {
        Ok(self.save_versioned(record)?.0)
    }

    /// [`Self::save`], with the version placed.
    pub(super) fn save_versioned(
        &self,
        record: &SessionRecord,
    ) -> Result<(SessionId, Option<FileVersion>), StoreError> {
        let bytes = record.to_bytes(self.max_bytes)?;
        let mut pending = self.write_tmp(&bytes, Some(stamp(record.expires_at)))?;
        let (key, digest) = crate::store::id::with_fresh_id(|key| {
            let path = self.path_of(key.digest());
            match atomic::place_new(&pending.path, &path).map_err(StoreError::io(&path))? {
                Placed::Done => Ok(Some(*key.digest())),
                Placed::TargetExists | Placed::TargetMissing => Ok(None),
            }
        })?;
        pending.placed = true;
        self.sync_dir()?;
        let version = self.remember_placed(digest, &pending.file, record);
        Ok((key, version))
    }

    /// Replaces the session's file. If it has vanished or expired, the session has ended (logged
    /// out, expired, deleted by hand) and deletion wins: the write is dropped, and the fresh id
    /// returned has no file behind it, so the client's next request is anonymous.
    pub(super) fn update(
        &self,
        key: SessionId,
        mut record: SessionRecord,
        now: OffsetDateTime,
    ) -> Result<SessionId, StoreError> {
        Ok(self.update_versioned(key, &mut record, now)?.0)
    }

    /// [`Self::update`], with the version placed under the id returned; `record` is what was
    /// written (its creation time the session's).
    pub(super) fn update_versioned(
        &self,
        key: SessionId,
        record: &mut SessionRecord,
        now: OffsetDateTime,
    ) -> Result<(SessionId, Option<FileVersion>), StoreError> {
        let digest = *key.digest();
        let Some((created_at, expires_at)) = self.times(&digest, now)? else {
            return Ok((ended(&key)?, None));
        };
        if expires_at <= now {
            self.remove_if_expired(&digest, now)?;
            return Ok((ended(&key)?, None));
        }
        record.created_at = created_at;
        match self.replace(&digest, record)? {
            Swapped::Placed(version) => Ok((key, version)),
            Swapped::Vanished => Ok((ended(&key)?, None)),
        }
    }

    /// When the session began and ends: remembered, or read from its file; `None` if it has no
    /// file. A remembered expiry that has passed is checked against the file, which another
    /// process may have moved on.
    fn times(
        &self,
        digest: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<(OffsetDateTime, OffsetDateTime)>, StoreError> {
        if let Some(seen) = self.memo.get(digest) {
            if seen.expires_at > now {
                return Ok(Some((seen.created_at, seen.expires_at)));
            }
        }
        let path = self.path_of(digest);
        Ok(match self.read(digest, &path)? {
            Read::Record(r, _) => Some((r.created_at, r.expires_at)),
            Read::Missing | Read::Quarantined => None,
        })
    }

    /// Swaps a new version of the session in, unless its file has vanished.
    fn replace(&self, digest: &[u8; 32], record: &SessionRecord) -> Result<Swapped, StoreError> {
        let bytes = record.to_bytes(self.max_bytes)?;
        let mut pending = self.write_tmp(&bytes, Some(stamp(record.expires_at)))?;
        let path = self.path_of(digest);
        match atomic::exchange(&pending.path, &path).map_err(StoreError::io(&path))? {
            Placed::Done => {
                pending.placed = true;
                self.sync_dir()?;
                let version = self.remember_placed(*digest, &pending.file, record);
                Ok(Swapped::Placed(version))
            }
            Placed::TargetMissing | Placed::TargetExists => {
                self.memo.forget(digest);
                Ok(Swapped::Vanished)
            }
        }
    }

    /// Remembers the times of a version just placed, and returns its version: the `fstat` of
    /// the still-open file, since the swap itself changed the change time.
    fn remember_placed(
        &self,
        digest: [u8; 32],
        file: &File,
        record: &SessionRecord,
    ) -> Option<FileVersion> {
        self.memo.remember(digest, record);
        // Unknown, the version is not cached: the next load reads the file.
        file.metadata().ok().map(|meta| FileVersion::of(&meta))
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
        key: &SessionId,
        ttl: &time::Duration,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.update_ttl_versioned(key, ttl, now).map(drop)
    }

    /// [`Self::update_ttl`], with the record and version it placed, if it wrote one and knows it.
    pub(super) fn update_ttl_versioned(
        &self,
        key: &SessionId,
        ttl: &time::Duration,
        now: OffsetDateTime,
    ) -> Result<Option<(SessionRecord, FileVersion)>, StoreError> {
        let digest = *key.digest();
        if self.expiry_reached(&digest, expiry_after(now, ttl)?) {
            return Ok(None);
        }
        let Some(mut record) = self.load(key, now)? else {
            return Ok(None);
        };
        record.extend(now, ttl)?;
        match self.replace(&digest, &record) {
            Ok(Swapped::Placed(version)) => Ok(version.map(|v| (record, v))),
            // Deleted meanwhile (logout in another process), and it stays deleted.
            Ok(Swapped::Vanished) => Ok(None),
            // A file written by hand more compactly than the store writes it: keeping its old
            // expiry beats failing every request of the session until then.
            Err(StoreError::TooLarge { size, limit }) => {
                tracing::warn!(session = %key.log_tag(), size, limit, "session over the size limit once rewritten; its expiry was not moved");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes a new temporary file, making the temporary folder again once if it has vanished.
    fn write_tmp(&self, bytes: &[u8], modified: Option<SystemTime>) -> Result<Pending, StoreError> {
        let path = self.tmp_path();
        match atomic::write_new_file(&path, bytes, modified, self.durability) {
            Ok(file) => Ok(Pending {
                path,
                file,
                placed: false,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.reclaim_tmp_dir()?;
                let path = self.tmp_path();
                let file = atomic::write_new_file(&path, bytes, modified, self.durability)
                    .map_err(StoreError::io(&path))?;
                Ok(Pending {
                    path,
                    file,
                    placed: false,
                })
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
        match entry::set_aside(&self.corrupt_dir, path, "") {
            Ok(target) => tracing::warn!(
                file = %path.display(), moved_to = %target.display(), reason = why,
                "unreadable session file moved aside; the request is served without a session"
            ),
            Err(e) => {
                // Unlinking never opens it: safe for a FIFO too.
                let removed = std::fs::remove_file(path).is_ok();
                tracing::warn!(
                    file = %path.display(), reason = why, error = %e, removed,
                    "unreadable session file could not be moved aside"
                );
            }
        }
    }
}
