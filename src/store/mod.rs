//! Where sessions are kept. [`open`] builds the store `config.toml` chose; every caller uses it,
//! and nothing outside this module knows which folders, connections or URLs a store uses.
//!
//! - [`backend`]: [`SessionBackend`], what every store type implements, and its contract.
//! - [`Store`]: any backend, adapted to actix-session's `SessionStore` by [`actix`], which checks
//!   the cookie's id once, for every type.
//! - One file (or folder) per store type: [`file`](mod@file) (`filesystem`), [`memory`],
//!   [`redis`](mod@redis), [`sqlite`], [`postgres`](mod@postgres), [`memcached`].
//! - Shared pieces: [`record`] (what a stored session is), [`id`] (session ids), [`error`].
//!
//! Adding a store type is its own file, its config table, and one line in [`open`].

#[macro_use]
mod actix;
pub mod backend;
pub mod cache;
pub mod error;
pub mod file;
pub mod id;
pub mod io_threads;
pub mod memcached;
pub mod memory;
pub mod postgres;
pub mod record;
pub mod redis;
pub mod sqlite;
mod sweeper;

use std::sync::Arc;

use crate::config::{SessionConfig, StoreType};
pub use backend::{Capabilities, SessionBackend, SessionSummary};
pub use cache::{CachingStore, Snapshot, Versioned};
pub use error::StoreError;
pub use file::{FileSessionStore, FileStoreOptions, SweepReport};
pub use id::SessionId;
pub use memory::MemorySessionStore;
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
    }
}

/// A session store of any type. Cheap to clone: clones share the backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn SessionBackend>,
}

impl Store {
    pub fn new(backend: impl SessionBackend) -> Self {
        Self {
            backend: Arc::new(backend),
        }
    }

    /// A store on a backend the caller also holds (a sweeper's handle, say).
    pub fn from_shared(backend: Arc<impl SessionBackend>) -> Self {
        Self { backend }
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

    /// Whether a session could be written and read right now.
    pub async fn check_health(&self) -> Result<(), StoreError> {
        self.backend.check_health().await
    }

    /// When the session with this cookie value ends, if it is live.
    pub async fn expires_at(&self, key: &str) -> Result<Option<time::OffsetDateTime>, StoreError> {
        match SessionId::parse(key) {
            Some(id) => self.backend.expires_at(&id).await,
            None => Ok(None),
        }
    }
}

actix_store!(Store, s => &*s.backend);
