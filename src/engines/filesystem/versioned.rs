//! The file store as a [`Versioned`] store, so that it can sit behind the read cache
//! ([`crate::store::cache::CachingStore`]): its version of a session is its file's
//! [`FileVersion`], told by one `lstat` on the worker, and each read and write reports the version
//! it read or placed (taken from the open file, so it is the version of exactly that data).

use async_trait::async_trait;

use super::{new_session, FileSessionStore, FileVersion};
use crate::store::cache::{Snapshot, Versioned};
use crate::store::io_threads::Abandoned;
use crate::store::record::{expiry_after, SessionRecord, SessionState};
use crate::store::{SessionId, StoreError};

fn snapshot(record: &SessionRecord, version: FileVersion) -> Snapshot<FileVersion> {
    Snapshot {
        version,
        created_at: record.created_at,
        expires_at: record.expires_at,
        state: record.state(),
    }
}

#[async_trait]
impl Versioned for FileSessionStore {
    type Version = FileVersion;

    fn now(&self) -> time::OffsetDateTime {
        self.inner.clock.now()
    }

    async fn version(&self, key: &SessionId) -> Result<Option<FileVersion>, StoreError> {
        // On the worker: one `lstat` costs far less than the hop to the I/O thread it saves. Not
        // following links, as the I/O thread reads: a link is never the version of a read.
        let path = self.inner.path_of(key.digest());
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => Ok(Some(FileVersion::of(&meta))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.inner.memo.forget(key.digest());
                Ok(None)
            }
            Err(source) => self.note_failure(Err(StoreError::Io { path, source })),
        }
    }

    async fn load_versioned(
        &self,
        key: &SessionId,
    ) -> Result<Option<Snapshot<FileVersion>>, StoreError> {
        let digest = *key.digest();
        let key = key.clone();
        let found = self
            .on_io_thread(&digest, Abandoned::Skip, move |inner| {
                inner.load_versioned(&key, inner.clock.now())
            })
            .await?;
        Ok(found.map(|(record, version)| snapshot(&record, version)))
    }

    async fn save_versioned(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<(SessionId, Option<Snapshot<FileVersion>>), StoreError> {
        let (record, thread) = new_session(&state, ttl, self.inner.clock.now())?;
        let (key, version, record) = self
            .on_io_thread(&thread, Abandoned::StillRun, move |inner| {
                let (key, version) = inner.save_versioned(&record)?;
                Ok((key, version, record))
            })
            .await?;
        Ok((key, version.map(|v| snapshot(&record, v))))
    }

    async fn update_versioned(
        &self,
        key: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<(SessionId, Option<Snapshot<FileVersion>>), StoreError> {
        let now = self.inner.clock.now();
        let mut record = SessionRecord::new(&state, now, now, ttl)?;
        let digest = *key.digest();
        let (key, version, record) = self
            .on_io_thread(&digest, Abandoned::StillRun, move |inner| {
                let (key, version) =
                    inner.update_versioned(key, &mut record, inner.clock.now())?;
                Ok((key, version, record))
            })
            .await?;
        Ok((key, version.map(|v| snapshot(&record, v))))
    }

    async fn update_ttl_versioned(
        &self,
        key: &SessionId,
        ttl: &time::Duration,
    ) -> Result<Option<Snapshot<FileVersion>>, StoreError> {
        let digest = *key.digest();
        let now = self.inner.clock.now();
        // As `update_ttl`: this second's expiry already on disk costs no hop and no I/O.
        if self.inner.expiry_reached(&digest, expiry_after(now, ttl)?) {
            return Ok(None);
        }
        let (key, ttl) = (key.clone(), *ttl);
        let placed = self
            .on_io_thread(&digest, Abandoned::StillRun, move |inner| {
                inner.update_ttl_versioned(&key, &ttl, now)
            })
            .await?;
        Ok(placed.map(|(record, version)| snapshot(&record, version)))
    }
}
