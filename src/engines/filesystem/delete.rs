//! Deleting a session's file, on the session's I/O thread: a logout (whatever version is there),
//! and delete-if-expired (the sweeper's, and a late write's to an expired session), which judges
//! the version in place and never moves a live one.

use std::io;
use std::path::Path;

use time::OffsetDateTime;

use super::disk::{Expiry, Read};
use super::version::FileVersion;
use super::Inner;
use crate::atomic::{self, Placed};
use crate::store::StoreError;


impl Inner {
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
    /// The version in place is judged where it is, so a live session is never moved. An expired
    /// one is then taken out of place by a rename and deleted only if what was taken is the
    /// version judged (same inode, size and modification time): a new version swapped in by
    /// another server process between the look and the rename is put back instead. (Within this
    /// process the session's I/O thread already orders the two.)
    pub(super) fn remove_if_expired(
        &self,
        digest: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Expiry, StoreError> {
        let path = self.path_of(digest);
        match self.read(digest, &path)? {
            Read::Missing => Ok(Expiry::Absent),
            Read::Quarantined => Ok(Expiry::Quarantined),
            Read::Record(record, _) if !record.is_expired(now) => Ok(Expiry::Live),
            Read::Record(_, version) => self.remove_judged(digest, &path, version),
        }
    }

    /// Deletes the file at `path` if it is still `judged`, the version found expired: it is taken
    /// out of place and compared, and anything else taken is put back.
    pub(super) fn remove_judged(
        &self,
        digest: &[u8; 32],
        path: &Path,
        judged: FileVersion,
    ) -> Result<Expiry, StoreError> {
        let path = path.to_owned();
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
        let same = std::fs::symlink_metadata(&taken)
            .is_ok_and(|meta| judged.is_same_file(&FileVersion::of(&meta)));
        if same {
            let _ = std::fs::remove_file(&taken);
            self.sync_dir()?;
            return Ok(Expiry::Deleted);
        }
        match atomic::place_new(&taken, &path) {
            Ok(Placed::Done) => {}
            // A newer version is in place already: it wins.
            Ok(Placed::TargetExists | Placed::TargetMissing) => {
                let _ = std::fs::remove_file(&taken);
            }
            Err(e) => {
                tracing::error!(file = %path.display(), kept_at = %taken.display(), error = %e, "a session version taken by the sweeper could not be put back");
                return Err(StoreError::Io { path, source: e });
            }
        }
        Ok(Expiry::Live)
    }
}
