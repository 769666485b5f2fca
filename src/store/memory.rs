//! [`MemorySessionStore`]: sessions in this process's memory. For development, for tests, and as
//! the speed baseline the file store is measured against. Sessions die with the process and are
//! not shared between processes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use time::OffsetDateTime;

use super::record::{SessionRecord, SessionState};
use super::{id, StoreError};

/// Sessions in a map guarded by one lock. Cheap to clone: clones share the map.
#[derive(Clone)]
pub struct MemorySessionStore {
    sessions: Arc<Mutex<HashMap<[u8; 32], SessionRecord>>>,
    max_bytes: usize,
}

impl MemorySessionStore {
    /// An empty store whose expired sessions are dropped every `cleanup_interval`, if given.
    /// Sessions larger than [`super::file::DEFAULT_MAX_SESSION_BYTES`] are refused.
    pub fn new(cleanup_interval: Option<Duration>) -> Self {
        Self::with_limit(cleanup_interval, super::file::DEFAULT_MAX_SESSION_BYTES)
    }

    /// As [`Self::new`], refusing sessions whose keys and values add up to more than `max_bytes`.
    pub fn with_limit(cleanup_interval: Option<Duration>, max_bytes: usize) -> Self {
        let store = Self {
            sessions: Arc::default(),
            max_bytes,
        };
        if let Some(every) = cleanup_interval {
            spawn_sweeper(Arc::downgrade(&store.sessions), every);
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

    fn map(&self) -> MutexGuard<'_, HashMap<[u8; 32], SessionRecord>> {
        // A panic while holding this lock cannot leave a half-made entry: every change is one
        // insert or remove. So a poisoned lock is still a sound map.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The same limit the file store applies, measured without serializing: the sum of keys and
    /// JSON values, which is what a session file holds besides a fixed header.
    fn check_size(&self, state: &SessionState) -> Result<(), StoreError> {
        let size: usize = state
            .iter()
            .filter(|(k, _)| !k.starts_with(super::record::RESERVED_PREFIX))
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if size > self.max_bytes {
            return Err(StoreError::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    fn insert_new(&self, record: SessionRecord) -> Result<SessionKey, StoreError> {
        let mut map = self.map();
        loop {
            let key = id::generate()?;
            if let std::collections::hash_map::Entry::Vacant(slot) =
                map.entry(id::digest(key.as_ref()))
            {
                slot.insert(record);
                return Ok(key);
            }
        }
    }
}

fn sweep(map: &mut HashMap<[u8; 32], SessionRecord>, now: OffsetDateTime) -> usize {
    let before = map.len();
    map.retain(|_, r| !r.is_expired(now));
    before - map.len()
}

fn spawn_sweeper(sessions: Weak<Mutex<HashMap<[u8; 32], SessionRecord>>>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("memory-sweeper".into())
        .spawn(move || loop {
            std::thread::sleep(every.min(Duration::from_secs(1)));
            let Some(map) = sessions.upgrade() else {
                return;
            };
            let mut map = map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sweep(&mut map, OffsetDateTime::now_utc());
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the memory sweeper; expired sessions stay until read");
    }
}

impl SessionStore for MemorySessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        if !id::is_well_formed(key.as_ref()) {
            return Ok(None);
        }
        let digest = id::digest(key.as_ref());
        let mut map = self.map();
        match map.get(&digest) {
            Some(r) if r.is_expired(OffsetDateTime::now_utc()) => {
                map.remove(&digest);
                Ok(None)
            }
            Some(r) => Ok(Some(r.state())),
            None => Ok(None),
        }
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        self.check_size(&state)?;
        let now = OffsetDateTime::now_utc();
        Ok(self.insert_new(SessionRecord::new(&state, now, now, ttl)?)?)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        self.check_size(&state)?;
        let now = OffsetDateTime::now_utc();
        let mut record = SessionRecord::new(&state, now, now, ttl)?;
        if id::is_well_formed(key.as_ref()) {
            let mut map = self.map();
            if let Some(old) = map.get_mut(&id::digest(key.as_ref())) {
                record.created_at = old.created_at;
                *old = record;
                return Ok(key);
            }
        }
        // Vanished (expired or logged out): a new id, never the old one back.
        Ok(self.insert_new(record)?)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        if let Some(r) = self.map().get_mut(&id::digest(key.as_ref())) {
            r.expires_at = super::record::expiry_after(OffsetDateTime::now_utc(), ttl);
        }
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        self.map().remove(&id::digest(key.as_ref()));
        Ok(())
    }
}
