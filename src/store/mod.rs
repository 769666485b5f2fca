//! Where sessions are kept. [`open`] builds the store `config.toml` chose; every caller uses it,
//! and nothing outside this module knows which folders, connections or URLs a store uses.
//!
//! - [`backend`]: [`SessionBackend`], what every store type implements, and its contract.
//! - [`Store`]: any backend, adapted to actix-session's `SessionStore` by [`actix`], which checks
//!   the cookie's id once, for every type.
//! - One file (or folder) per store type: [`file`](mod@file) (`filesystem`), [`memory`],
//!   [`redis`](mod@redis), [`sqlite`], [`postgres`](mod@postgres), [`memcached`], [`cookie`]
//!   (sessions in the cookie itself).
//! - Shared pieces: [`record`] (what a stored session is), [`id`] (session ids), [`error`].
//!
//! Adding a store type is its own file, its config table, and one line in [`open`].

#[macro_use]
mod actix;
pub mod backend;
pub mod cache;
pub mod cookie;
pub mod error;
pub mod file;
pub mod health;
pub mod id;
pub mod io_threads;
pub mod memcached;
pub mod memory;
pub mod place;
pub mod postgres;
pub mod record;
pub mod redis;
pub mod sqlite;
mod sweeper;

use std::sync::Arc;
use std::time::Instant;

use crate::config::{SessionConfig, StoreType};
use crate::telemetry::{self, Event, Ignored};
pub use backend::{Capabilities, SessionBackend, SessionSummary};
pub use cache::{CachingStore, Snapshot, Versioned};
pub use error::StoreError;
pub use file::{FileSessionStore, FileStoreOptions, SweepReport};
pub use id::SessionId;
pub use memory::MemorySessionStore;
pub use place::Place;
pub use record::{SessionRecord, SessionState};

/// Opens the store `config` names. Connections to an engine are made when first needed (and made
/// again after a failure), so that a server whose engine is down starts, answers 503 for
/// sessions, and recovers by itself.
pub fn open(config: &SessionConfig) -> Result<Store, StoreError> {
    match config.store {
        StoreType::Filesystem => file::open(config),
        StoreType::Memory => memory::open(config),
        StoreType::Redis => redis::open(config),
        StoreType::Sqlite => sqlite::open(config),
        StoreType::Postgres => postgres::open(config),
        StoreType::Memcached => memcached::open(config),
        StoreType::Cookie => Ok(Store::cookie(cookie::CookieCodec::new(
            &config.cookie_name,
            config.max_session_bytes,
        ))),
    }
}

/// A session store of any type. Cheap to clone: clones share the backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn SessionBackend>,
    /// Set for the `cookie` type, whose sessions are in the cookie: the five session calls go
    /// to it, not to `backend`.
    cookie: Option<Arc<cookie::CookieCodec>>,
}

impl Store {
    pub fn new(backend: impl SessionBackend) -> Self {
        Self {
            backend: Arc::new(backend),
            cookie: None,
        }
    }

    /// A store on a backend the caller also holds (a sweeper's handle, say).
    pub fn from_shared(backend: Arc<impl SessionBackend>) -> Self {
        Self {
            backend,
            cookie: None,
        }
    }

    /// The `cookie` type: sessions kept in the cookie by `codec`.
    pub fn cookie(codec: cookie::CookieCodec) -> Self {
        Self {
            backend: Arc::new(cookie::CookieBackend),
            cookie: Some(Arc::new(codec)),
        }
    }

    /// The backend, for what actix-session does not ask: health, listing, expiry.
    pub fn backend(&self) -> &dyn SessionBackend {
        &*self.backend
    }

    /// The store type's name, as `config.toml` spells it.
    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    pub fn capabilities(&self) -> Capabilities {
        self.backend.capabilities()
    }

    /// Finishes the store's work in flight and releases what this process holds in it.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.backend.close().await
    }

    /// Whether a session could be written and read right now.
    pub async fn check_health(&self) -> Result<(), StoreError> {
        self.backend.check_health().await
    }

    /// When the live session with this cookie value began: for the page's session panel.
    pub async fn created_at(&self, key: &str) -> Result<Option<time::OffsetDateTime>, StoreError> {
        if let Some(codec) = &self.cookie {
            return Ok(codec.created_at(key));
        }
        match SessionId::parse(key) {
            Some(id) => self.backend.created_at(&id).await,
            None => Ok(None),
        }
    }

    /// When the session with this cookie value ends, if it is live.
    pub async fn expires_at(&self, key: &str) -> Result<Option<time::OffsetDateTime>, StoreError> {
        if let Some(codec) = &self.cookie {
            return Ok(codec.expires_at(key));
        }
        match SessionId::parse(key) {
            Some(id) => self.backend.expires_at(&id).await,
            None => Ok(None),
        }
    }
}

/// actix-session's calls: to the cookie codec for the `cookie` type, else through the adapter
/// every server-side backend shares. Each call is timed and counted here ([`crate::telemetry`]),
/// once for every type.
impl actix_session::storage::SessionStore for Store {
    async fn load(
        &self,
        key: &actix_session::storage::SessionKey,
    ) -> Result<Option<SessionState>, actix_session::storage::LoadError> {
        let started = Instant::now();
        let loaded = match &self.cookie {
            Some(codec) => Ok(codec.load(key.as_ref())),
            None => actix::load(&*self.backend, key).await,
        };
        telemetry::store_call("load", self.kind(), started);
        match &loaded {
            Ok(Some(_)) => telemetry::sessions(Event::Loaded, 1),
            Ok(None) => telemetry::IGNORED.count(Ignored::Stale),
            Err(_) => {}
        }
        loaded
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<actix_session::storage::SessionKey, actix_session::storage::SaveError> {
        let started = Instant::now();
        let saved = match &self.cookie {
            Some(codec) => codec
                .save(&state, ttl)
                .and_then(cookie_key)
                .map_err(Into::into),
            None => actix::save(&*self.backend, state, ttl).await,
        };
        telemetry::store_call("save", self.kind(), started);
        if saved.is_ok() {
            telemetry::sessions(Event::Created, 1);
        }
        saved
    }

    async fn update(
        &self,
        key: actix_session::storage::SessionKey,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<actix_session::storage::SessionKey, actix_session::storage::UpdateError> {
        let started = Instant::now();
        let updated = match &self.cookie {
            Some(codec) => codec
                .update(key.as_ref(), &state, ttl)
                .and_then(cookie_key)
                .map_err(Into::into),
            None => actix::update(&*self.backend, key, state, ttl).await,
        };
        telemetry::store_call("update", self.kind(), started);
        if updated.is_ok() {
            telemetry::sessions(Event::Updated, 1);
        }
        updated
    }

    /// For a cookie session the middleware renews the cookie's age; its payload's end moves
    /// when the session is written.
    async fn update_ttl(
        &self,
        key: &actix_session::storage::SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        let started = Instant::now();
        let renewed = match &self.cookie {
            Some(_) => Ok(()),
            None => actix::update_ttl(&*self.backend, key, ttl).await,
        };
        telemetry::store_call("update_ttl", self.kind(), started);
        if renewed.is_ok() {
            telemetry::sessions(Event::Renewed, 1);
        }
        renewed
    }

    /// For a cookie session the middleware removes the cookie; nothing on the server can end a
    /// copy of it before its end.
    async fn delete(&self, key: &actix_session::storage::SessionKey) -> Result<(), anyhow::Error> {
        let started = Instant::now();
        let deleted = match &self.cookie {
            Some(_) => Ok(()),
            None => actix::delete(&*self.backend, key).await,
        };
        telemetry::store_call("delete", self.kind(), started);
        if deleted.is_ok() {
            telemetry::sessions(Event::Deleted, 1);
        }
        deleted
    }
}

fn cookie_key(payload: String) -> Result<actix_session::storage::SessionKey, StoreError> {
    actix_session::storage::SessionKey::try_from(payload)
        .map_err(|e| StoreError::KeyRefused(Box::new(e)))
}
