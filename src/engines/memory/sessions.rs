//! [`MemorySessionStore`]: sessions in this process's memory. For development, for tests, and as
//! the speed baseline the file store is measured against. Sessions die with the process and are
//! not shared between processes.
//!
//! It follows the file store's rules exactly (the conformance suite checks both): the same id
//! check on every call, the same size limit (the session's JSON record, as it would be written),
//! an expired session is gone even before the sweeper runs, the sweeper runs every
//! `[session.memory] cleanup_interval`, and a session that has ended is never brought back by a late write.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Mutex, MutexGuard};
use time::OffsetDateTime;

use crate::store::backend::{Loaded, ended, Capabilities, SessionBackend, SessionSummary};
use crate::store::record::{SessionRecord, SessionState};
use crate::store::{Clock, SessionId, Store, StoreError};
use crate::config::SessionConfig;

/// The memory store `config` describes.
pub(crate) fn open(config: &SessionConfig) -> Result<Store, StoreError> {
    Ok(Store::new(
        MemorySessionStore::with_limit(config.max_session_bytes).with_clock(config.clock.clone()),
    ))
}

type Sessions = Mutex<HashMap<[u8; 32], SessionRecord>>;

/// Sessions in a map guarded by one lock. Cheap to clone: clones share the map.
#[derive(Clone)]
pub struct MemorySessionStore {
    sessions: Arc<Sessions>,
    max_bytes: usize,
    clock: Clock,
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySessionStore {
    /// An empty store. Sessions larger than [`crate::store::DEFAULT_MAX_SESSION_BYTES`] are
    /// refused. Expired sessions are refused at once and dropped by [`Self::sweep`] (which the
    /// registry's sweeper calls every `cleanup_interval`).
    pub fn new() -> Self {
        Self::with_limit(crate::store::DEFAULT_MAX_SESSION_BYTES)
    }

    /// As [`Self::new`], refusing sessions whose record (as the file store would write it) is
    /// over `max_bytes`.
    pub fn with_limit(max_bytes: usize) -> Self {
        Self {
            sessions: Arc::default(),
            max_bytes,
            clock: Clock::system(),
        }
    }

    /// This store judging expiry by `clock` (a test's, to reach a session's end at once).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
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
        sweep(&mut self.map(), self.clock.now())
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
        let now = self.clock.now();
        let record = SessionRecord::new(state, now, now, ttl)?;
        record.to_bytes(self.max_bytes)?;
        Ok(record)
    }

    fn insert_new(&self, record: SessionRecord) -> Result<SessionId, StoreError> {
        let mut map = self.map();
        let mut record = Some(record);
        let (id, ()) = crate::store::id::with_fresh_id(|id| {
            Ok(match map.entry(*id.digest()) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(record.take().ok_or(StoreError::IdsExhausted)?);
                    Some(())
                }
                std::collections::hash_map::Entry::Occupied(_) => None,
            })
        })?;
        Ok(id)
    }
}

/// The live record of `key`; an expired one is dropped on the spot.
fn live<'a>(
    map: &'a mut HashMap<[u8; 32], SessionRecord>,
    id: &SessionId,
    now: OffsetDateTime,
) -> Option<&'a mut SessionRecord> {
    let digest = id.digest();
    if map.get(digest)?.is_expired(now) {
        map.remove(digest);
        return None;
    }
    map.get_mut(digest)
}

fn sweep(map: &mut HashMap<[u8; 32], SessionRecord>, now: OffsetDateTime) -> usize {
    let before = map.len();
    map.retain(|_, r| !r.is_expired(now));
    before - map.len()
}

#[async_trait]
impl SessionBackend for MemorySessionStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        super::config::CAPABILITIES
    }

    async fn load_live(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let now = self.clock.now();
        Ok(live(&mut self.map(), id, now).map(|r| Loaded::from(&*r)))
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let record = self.record(&state, ttl)?;
        self.insert_new(record)
    }

    async fn update(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let now = self.clock.now();
        let mut record = SessionRecord::new(&state, now, now, ttl)?;
        let mut map = self.map();
        let Some(old) = live(&mut map, &id, now) else {
            // Nothing is written, so no size is checked: the file store's order.
            drop(map);
            return ended(&id);
        };
        record.to_bytes(self.max_bytes)?;
        record.created_at = old.created_at;
        *old = record;
        Ok(id)
    }

    async fn update_ttl(&self, id: &SessionId, ttl: &time::Duration) -> Result<(), StoreError> {
        let now = self.clock.now();
        if let Some(r) = live(&mut self.map(), id, now) {
            r.extend(now, ttl)?;
        }
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.map().remove(id.digest());
        Ok(())
    }

    async fn expires_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        let now = self.clock.now();
        Ok(live(&mut self.map(), id, now).map(|r| r.expires_at))
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.sweep()).unwrap_or(u64::MAX))
    }

    async fn list(&self) -> Result<Vec<SessionSummary>, StoreError> {
        Ok(self
            .map()
            .iter()
            .map(|(digest, r)| SessionSummary {
                stem: crate::store::id::stem(digest),
                expires_at: r.expires_at,
                bytes: None,
            })
            .collect())
    }

    async fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.map().get(digest).cloned())
    }

    async fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.map().remove(digest);
        Ok(())
    }
}

crate::store::actix::actix_store!(MemorySessionStore, s => s);

#[cfg(test)]
mod tests {
    use actix_session::storage::SessionStore;

    use super::MemorySessionStore;
    use crate::store::seen;

    /// A store handed to `SessionMiddleware` on its own (not through `Store`) waits at the
    /// request's gate (the session lock) too, and a request stopped there still names the session
    /// it asked for.
    #[tokio::test]
    async fn a_store_on_its_own_passes_the_gate_and_a_stopped_request_names_its_session() {
        let store = MemorySessionStore::new();
        let state: crate::store::SessionState = [("a".to_owned(), "1".to_owned())].into();
        let key = store
            .save(state.clone(), &time::Duration::seconds(60))
            .await
            .expect("save");
        let closed: seen::Gate = Box::new(|_| Box::pin(async { false }));
        let (loaded, seen) = seen::scope(seen::gated(closed, store.load(&key))).await;
        assert!(loaded.is_err(), "stopped at the gate");
        assert_eq!(seen.asked.as_deref(), Some(key.as_ref()));
        assert!(seen.tag.is_some() && seen.digest.is_some(), "{seen:?}");
        let open: seen::Gate = Box::new(|_| Box::pin(async { true }));
        let (loaded, seen) = seen::scope(seen::gated(open, store.load(&key))).await;
        assert_eq!(loaded.expect("load"), Some(state));
        assert!(seen.live.is_some(), "the load noted the live session");
    }
}
