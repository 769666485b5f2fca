//! The read cache, as a wrapper any store can sit behind: [`CachingStore`] serves a session from
//! memory when the store behind it says it still holds the version remembered, and reads it
//! otherwise. tower-sessions' `CachingSessionStore` is the model, with one difference that our
//! rule "nothing is brought back after a logout" requires once several processes share a store:
//! memory is never trusted for a while, only for the version the store confirms at each load.
//!
//! When it is sound: every load first asks the store which version of the session it holds now
//! ([`Versioned::version`]), and serves the cached data only if it was read or written as that
//! very version and has not expired. So a write, a logout or an edit made through another
//! process (or by hand) is seen at the next load, in every process, and a process never serves
//! a version older than the newest write acknowledged before the load began. A remembered
//! version is always the one the store reported with that data (never looked up again
//! afterwards, when another writer could have slipped in between); an older pair that overwrites
//! a newer one in a race costs a read, never a stale answer.
//!
//! Which stores can sit behind it: those implementing [`Versioned`], which can tell their version
//! much more cheaply than reading the session. The file store can (one `stat`: every write makes
//! a new file, see `docs/design.md`, "The read cache"). A store whose version costs a round trip
//! to an engine gains little, since a read costs about as much.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::backend::{Capabilities, Loaded, SessionBackend, SessionSummary};
use super::id::SessionId;
use super::record::{SessionRecord, SessionState};
use super::StoreError;

/// One version of a session as a [`Versioned`] store holds it: the version, its end, its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<V> {
    pub version: V,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub state: SessionState,
}

impl<V> From<&Snapshot<V>> for Loaded {
    fn from(s: &Snapshot<V>) -> Self {
        Self {
            state: s.state.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

impl<V> From<Snapshot<V>> for Loaded {
    fn from(s: Snapshot<V>) -> Self {
        Self {
            state: s.state,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

/// A store that can tell, cheaply and without reading the session, which version of a session
/// it holds now, and that hands out the version its reads and writes saw or made: what a
/// [`CachingStore`] needs from the store behind it.
///
/// The contract: two equal versions hold the same data and expiry (a store never gives two
/// contents one version), and a [`Snapshot`]'s version is the version of exactly that data,
/// taken with it, not by a second look that another writer could slip in front of.
#[async_trait]
pub trait Versioned: SessionBackend {
    /// Opaque: only ever compared for equality.
    type Version: Clone + PartialEq + Send + Sync + 'static;

    /// The time by which the store judges expiry, and so the cache too.
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// The version of the session held now; `None` when there is none.
    async fn version(&self, id: &SessionId) -> Result<Option<Self::Version>, StoreError>;

    /// [`SessionBackend::load`], with the version read.
    async fn load_versioned(
        &self,
        id: &SessionId,
    ) -> Result<Option<Snapshot<Self::Version>>, StoreError>;

    /// [`SessionBackend::save`], with the version written when the store knows it.
    async fn save_versioned(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<(SessionId, Option<Snapshot<Self::Version>>), StoreError> {
        Ok((self.save(state, ttl).await?, None))
    }

    /// [`SessionBackend::update`], with the version written under the id returned, when the
    /// store knows it (never when the session had ended).
    async fn update_versioned(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<(SessionId, Option<Snapshot<Self::Version>>), StoreError> {
        Ok((self.update(id, state, ttl).await?, None))
    }

    /// [`SessionBackend::update_ttl`], with the version written when it rewrote the session and
    /// knows it; `None` when it wrote nothing (the expiry had not moved, or the session ended).
    async fn update_ttl_versioned(
        &self,
        id: &SessionId,
        ttl: &time::Duration,
    ) -> Result<Option<Snapshot<Self::Version>>, StoreError> {
        self.update_ttl(id, ttl).await?;
        Ok(None)
    }
}

/// Weight of a cached session besides its data (key, times, version, bookkeeping), in bytes.
const ENTRY_OVERHEAD: u64 = 160;
/// Expected weight of one cached session, to size the table up front.
const TYPICAL_WEIGHT: u64 = 512;

#[derive(Clone)]
struct ByBytes;

impl<V> quick_cache::Weighter<[u8; 32], Arc<Snapshot<V>>> for ByBytes {
    fn weight(&self, _key: &[u8; 32], entry: &Arc<Snapshot<V>>) -> u64 {
        let data: usize = entry
            .state
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum();
        ENTRY_OVERHEAD.saturating_add(u64::try_from(data).unwrap_or(u64::MAX))
    }
}

/// Any [`Versioned`] store with a bounded read cache in front: sessions by digest, with the
/// version they were read or written as. Bounded by weight, with S3-FIFO eviction
/// (`quick_cache`), so that a server with more live sessions than fit keeps its hottest ones;
/// an evicted session costs a read at its next request, never the session.
///
/// # Example
/// ```no_run
/// use session_server::store::{CachingStore, Store, Versioned};
/// fn cached(inner: impl Versioned) -> Store {
///     Store::new(CachingStore::new(inner, 64 << 20))
/// }
/// ```
pub struct CachingStore<S: Versioned> {
    inner: S,
    entries: quick_cache::sync::Cache<[u8; 32], Arc<Snapshot<S::Version>>, ByBytes>,
}

impl<S: Versioned> CachingStore<S> {
    /// `inner` behind a cache of at most `capacity_bytes` (approximately).
    pub fn new(inner: S, capacity_bytes: u64) -> Self {
        let items = usize::try_from(capacity_bytes / TYPICAL_WEIGHT)
            .unwrap_or(usize::MAX)
            .max(16);
        Self {
            inner,
            entries: quick_cache::sync::Cache::with_weighter(items, capacity_bytes.max(1), ByBytes),
        }
    }

    /// The store behind the cache, for what is not a session call (sweeping, paths).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn remember(&self, id: &SessionId, snapshot: Snapshot<S::Version>) {
        self.entries.insert(*id.digest(), Arc::new(snapshot));
    }

    fn forget(&self, digest: &[u8; 32]) {
        self.entries.remove(digest);
    }

    /// Asks the store which version of the session it holds, and looks that version up.
    async fn look_up(&self, id: &SessionId) -> Result<Lookup<S::Version>, StoreError> {
        let Some(held) = self.inner.version(id).await? else {
            self.forget(id.digest());
            return Ok(Lookup::NoSession);
        };
        Ok(match self.entries.get(id.digest()) {
            Some(seen) if seen.version == held && seen.expires_at > self.inner.now() => {
                Lookup::Hit(seen)
            }
            _ => Lookup::Miss,
        })
    }
}

/// What a [`CachingStore::look_up`] found.
enum Lookup<V> {
    /// The store holds no such session.
    NoSession,
    /// Cached as the version the store holds now, and live.
    Hit(Arc<Snapshot<V>>),
    /// Not cached as that version (or expired): the store must be read.
    Miss,
}

#[async_trait]
impl<S: Versioned> SessionBackend for CachingStore<S> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn load_live(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        match self.look_up(id).await? {
            Lookup::NoSession => return Ok(None),
            Lookup::Hit(seen) => return Ok(Some(Loaded::from(&*seen))),
            Lookup::Miss => {}
        }
        match self.inner.load_versioned(id).await? {
            Some(snapshot) => {
                let loaded = Loaded::from(&snapshot);
                self.remember(id, snapshot);
                Ok(Some(loaded))
            }
            None => {
                self.forget(id.digest());
                Ok(None)
            }
        }
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let (id, written) = self.inner.save_versioned(state, ttl).await?;
        if let Some(snapshot) = written {
            self.remember(&id, snapshot);
        }
        Ok(id)
    }

    async fn update(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let old = *id.digest();
        let (id, written) = self.inner.update_versioned(id, state, ttl).await?;
        if *id.digest() != old {
            // The session had ended: the fresh id has nothing behind it.
            self.forget(&old);
        }
        match written {
            Some(snapshot) => self.remember(&id, snapshot),
            None => self.forget(id.digest()),
        }
        Ok(id)
    }

    async fn update_ttl(&self, id: &SessionId, ttl: &time::Duration) -> Result<(), StoreError> {
        // Nothing written keeps what is cached: if it has gone stale, the next load's version
        // check says so.
        if let Some(snapshot) = self.inner.update_ttl_versioned(id, ttl).await? {
            self.remember(id, snapshot);
        }
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let deleted = self.inner.delete(id).await;
        self.forget(id.digest());
        deleted
    }

    async fn expires_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        match self.look_up(id).await? {
            Lookup::NoSession => Ok(None),
            Lookup::Hit(seen) => Ok(Some(seen.expires_at)),
            Lookup::Miss => self.inner.expires_at(id).await,
        }
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        self.inner.check_health().await
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.inner.delete_expired().await
    }

    async fn list(&self) -> Result<Vec<SessionSummary>, StoreError> {
        self.inner.list().await
    }

    fn list_batches(&self) -> crate::store::backend::Listing<'_> {
        self.inner.list_batches()
    }

    async fn inspect_batch(
        &self,
        digests: Vec<[u8; 32]>,
    ) -> Vec<Result<Option<SessionRecord>, StoreError>> {
        self.inner.inspect_batch(digests).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }

    async fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.inspect(digest).await
    }

    async fn created_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        match self.look_up(id).await? {
            Lookup::NoSession => Ok(None),
            Lookup::Hit(seen) => Ok(Some(seen.created_at)),
            Lookup::Miss => self.inner.created_at(id).await,
        }
    }

    async fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        let removed = self.inner.remove(digest).await;
        self.forget(digest);
        removed
    }
}

#[cfg(test)]
mod tests;
