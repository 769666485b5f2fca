//! Where sessions are kept. Each store type is a small type implementing actix-session's
//! [`SessionStore`]; [`ConfiguredStore`] is the one `config.toml` chose.
//!
//! - [`file`](mod@file): one JSON file per session (`type = "filesystem"`).
//! - [`memory`]: this process's memory (`type = "memory"`).
//! - [`record`]: what a stored session is, shared by both.
//! - [`id`]: session ids and their check.

pub mod error;
pub mod file;
pub mod id;
pub mod io_threads;
pub mod memory;
pub mod record;
mod sweeper;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};

pub use error::StoreError;
pub use file::{FileSessionStore, FileStoreOptions, SweepReport};
pub use memory::MemorySessionStore;
pub use record::{SessionRecord, SessionState};

/// The store type chosen in `config.toml`.
#[derive(Clone)]
#[non_exhaustive]
pub enum ConfiguredStore {
    Filesystem(FileSessionStore),
    Memory(MemorySessionStore),
}

impl ConfiguredStore {
    /// Whether a session could be written and read right now.
    pub async fn check_health(&self) -> Result<(), StoreError> {
        match self {
            Self::Filesystem(s) => s.check_writable().await,
            Self::Memory(_) => Ok(()),
        }
    }

    /// When the session with this id ends, if it is live: the store's bookkeeping, which handlers
    /// never find in the session's data.
    pub async fn expires_at(&self, key: &str) -> Result<Option<time::OffsetDateTime>, StoreError> {
        match self {
            Self::Filesystem(s) => s.expires_at(key).await,
            Self::Memory(s) => Ok(s.expires_at(key)),
        }
    }

    /// A short name for logs and pages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Filesystem(_) => "filesystem",
            Self::Memory(_) => "memory",
        }
    }
}

/// Forwards each call to the chosen store.
macro_rules! forward {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            ConfiguredStore::Filesystem($store) => $call,
            ConfiguredStore::Memory($store) => $call,
        }
    };
}

impl SessionStore for ConfiguredStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        forward!(self, s => s.load(key).await)
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        forward!(self, s => s.save(state, ttl).await)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        forward!(self, s => s.update(key, state, ttl).await)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        forward!(self, s => s.update_ttl(key, ttl).await)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        forward!(self, s => s.delete(key).await)
    }
}
