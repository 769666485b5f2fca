//! [`MemorySessionStore`]: sessions in this process's memory. For development, for tests, and as
//! the speed baseline the file store is measured against. Sessions die with the process and are
//! not shared between processes.
//!
//! It follows the file store's rules exactly (the conformance suite checks both): the same id
//! check on every call, the same size limit (the session's JSON record, as it would be written),
//! an expired session is gone even before the sweeper runs, the sweeper runs every
//! `cleanup_interval`, and a session that has ended is never brought back by a late write.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use parking_lot::{Mutex, MutexGuard};
use time::OffsetDateTime;

use super::record::{SessionRecord, SessionState};
use super::{id, StoreError};

type Sessions = Mutex<HashMap<[u8; 32], SessionRecord>>;

/// Sessions in a map guarded by one lock. Cheap to clone: clones share the map.
#[derive(Clone)]
pub struct MemorySessionStore {
    sessions: Arc<Sessions>,
    max_bytes: usize,
}

impl MemorySessionStore {
    /// An empty store whose expired sessions are dropped every `cleanup_interval`, if given.
    /// Sessions larger than [`super::file::DEFAULT_MAX_SESSION_BYTES`] are refused.
    pub fn new(cleanup_interval: Option<Duration>) -> Self {
        Self::with_limit(cleanup_interval, super::file::DEFAULT_MAX_SESSION_BYTES)
    }

    /// As [`Self::new`], refusing sessions whose record (as the file store would write it) is
    /// over `max_bytes`.
    pub fn with_limit(cleanup_interval: Option<Duration>, max_bytes: usize) -> Self {
        let store = Self {
            sessions: Arc::default(),
            max_bytes,
        };
        if let Some(every) = cleanup_interval {
            super::sweeper::spawn(
                "memory-sweeper",
                Arc::downgrade(&store.sessions),
                every,
                |sessions| {
                    sweep(&mut sessions.lock(), OffsetDateTime::now_utc());
                },
            );
        }
        store
    }

    /// How many sessions are held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired sessions now; returns how many.
    pub fn sweep(&self) -> usize {
        sweep(&mut self.map(), OffsetDateTime::now_utc())
    }

    /// When the session ends, if it is live.
    pub fn expires_at(&self, key: &str) -> Option<OffsetDateTime> {
        let now = OffsetDateTime::now_utc();
        live(&mut self.map(), key, now).map(|r| r.expires_at)
    }

    fn map(&self) -> MutexGuard<'_, HashMap<[u8; 32], SessionRecord>> {
        self.sessions.lock()
    }

    /// A record of `state`, refused when its JSON would be over the limit: the file store's rule.
    fn record(
        &self,
        state: &SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionRecord, StoreError> {
        let now = OffsetDateTime::now_utc();
        let record = SessionRecord::new(state, now, now, ttl)?;
        record.to_bytes(self.max_bytes)?;
        Ok(record)
    }

    fn insert_new(&self, record: SessionRecord) -> Result<SessionKey, StoreError> {
        let mut map = self.map();
        for _ in 0..8 {
            let key = id::generate()?;
            if let std::collections::hash_map::Entry::Vacant(slot) =
                map.entry(id::digest(key.as_ref()))
            {
                slot.insert(record);
                return Ok(key);
            }
        }
        Err(StoreError::IdsExhausted)
    }
}

/// The live record of `key`; an expired one is dropped on the spot.
fn live<'a>(
    map: &'a mut HashMap<[u8; 32], SessionRecord>,
    key: &str,
    now: OffsetDateTime,
) -> Option<&'a mut SessionRecord> {
    if !id::is_well_formed(key) {
        return None;
    }
    let digest = id::digest(key);
    if map.get(&digest)?.is_expired(now) {
        map.remove(&digest);
        return None;
    }
    map.get_mut(&digest)
}

fn sweep(map: &mut HashMap<[u8; 32], SessionRecord>, now: OffsetDateTime) -> usize {
    let before = map.len();
    map.retain(|_, r| !r.is_expired(now));
    before - map.len()
}

impl SessionStore for MemorySessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let now = OffsetDateTime::now_utc();
        Ok(live(&mut self.map(), key.as_ref(), now).map(|r| r.state()))
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let record = self.record(&state, ttl)?;
        Ok(self.insert_new(record)?)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let now = OffsetDateTime::now_utc();
        let mut record = SessionRecord::new(&state, now, now, ttl)?;
        let mut map = self.map();
        let Some(old) = live(&mut map, key.as_ref(), now) else {
            // Ended (logged out, expired) while the request ran: deletion wins, and the fresh id
            // handed back has no session behind it. Nothing is written, so no size is checked:
            // the file store's order.
            return Ok(id::generate()?);
        };
        record.to_bytes(self.max_bytes)?;
        record.created_at = old.created_at;
        *old = record;
        Ok(key)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        let now = OffsetDateTime::now_utc();
        if let Some(r) = live(&mut self.map(), key.as_ref(), now) {
            r.extend(now, ttl)?;
        }
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        if id::is_well_formed(key.as_ref()) {
            self.map().remove(&id::digest(key.as_ref()));
        }
        Ok(())
    }
}
