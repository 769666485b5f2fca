//! Where sessions are kept. [`open`] builds the store `config.toml` chose; every caller uses it,
//! and nothing outside this module knows which folders, connections or URLs a store uses.
//!
//! - [`backend`]: [`SessionBackend`], what every store type implements, and its contract.
//! - [`Store`]: any backend, adapted to actix-session's `SessionStore` by [`actix`], which checks
//!   the cookie's id once, for every type.
//! - Shared pieces: [`record`] (what a stored session is), [`id`] (session ids), [`error`],
//!   [`cache`] (the versioned read cache), [`io_threads`], [`sweeper`].
//!
//! The engines themselves are in [`crate::engines`], one folder each; [`open`] asks the
//! registry there for the one `config.toml` names.

pub(crate) mod actix;
pub mod backend;
pub mod cache;
pub mod client;
pub mod clock;
pub mod error;
pub mod health;
pub mod id;
pub mod io_threads;
pub mod place;
pub mod record;
pub mod seen;
pub(crate) mod sweeper;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::engines::open;
use crate::telemetry::{self, Event, Ignored};
pub use backend::{Capabilities, Loaded, SessionBackend, SessionSummary};
pub use cache::{CachingStore, Snapshot, Versioned};
pub use client::ClientSide;
pub use clock::Clock;
pub use error::{At, StoreError};
pub use id::SessionId;
pub use place::Place;
pub use record::{SessionRecord, SessionState};

/// The largest serialized session unless `[session] max_session_bytes` says otherwise.
pub const DEFAULT_MAX_SESSION_BYTES: usize = 64 * 1024;

/// A session store of any type: sessions on the server behind a [`SessionBackend`], or kept by
/// the client through a [`ClientSide`] codec. Cheap to clone: clones share the store.
#[derive(Clone)]
pub enum Store {
    /// Sessions kept on the server, found by their id.
    Server(Arc<dyn SessionBackend>),
    /// Sessions kept by the client: the cookie is the session.
    Client(Arc<dyn ClientSide>),
}

impl Store {
    pub fn new(backend: impl SessionBackend) -> Self {
        Self::Server(Arc::new(backend))
    }

    /// A store on a backend the caller also holds (a sweeper's handle, say).
    pub fn from_shared(backend: Arc<impl SessionBackend>) -> Self {
        Self::Server(backend)
    }

    /// Sessions kept by the client through `codec`.
    pub fn client_side(codec: impl ClientSide) -> Self {
        Self::Client(Arc::new(codec))
    }

    /// The codec of a store whose sessions are kept by the client.
    pub fn client(&self) -> Option<&dyn ClientSide> {
        match self {
            Self::Client(codec) => Some(&**codec),
            Self::Server(_) => None,
        }
    }

    /// The backend of a store whose sessions are on the server: for what actix-session does
    /// not ask (listing, inspecting, removing, sweeping). A store whose sessions are kept by
    /// the client has none: [`StoreError::Unsupported`], naming `what` was asked.
    pub fn server(&self, what: &'static str) -> Result<&dyn SessionBackend, StoreError> {
        match self {
            Self::Server(backend) => Ok(&**backend),
            Self::Client(codec) => Err(StoreError::Unsupported {
                kind: codec.kind(),
                what,
            }),
        }
    }

    /// Starts the store's sweeper (every `every`), unless its engine expires sessions by itself
    /// or keeps nothing on the server.
    pub fn start_sweeper(&self, every: Duration) {
        if let Self::Server(backend) = self {
            if !backend.capabilities().expires_by_itself {
                sweeper::start(Arc::downgrade(backend), backend.kind(), every);
            }
        }
    }

    /// The store type's name, as `config.toml` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Server(backend) => backend.kind(),
            Self::Client(codec) => codec.kind(),
        }
    }

    pub fn capabilities(&self) -> Capabilities {
        match self {
            Self::Server(backend) => backend.capabilities(),
            Self::Client(codec) => codec.capabilities(),
        }
    }

    /// Finishes the store's work in flight and releases what this process holds in it.
    pub async fn close(&self) -> Result<(), StoreError> {
        match self {
            Self::Server(backend) => backend.close().await,
            Self::Client(_) => Ok(()),
        }
    }

    /// Whether a session could be written and read right now (for the client's sessions, the
    /// key is in memory: nothing can fail).
    pub async fn check_health(&self) -> Result<(), StoreError> {
        match self {
            Self::Server(backend) => backend.check_health().await,
            Self::Client(_) => Ok(()),
        }
    }

    /// When the live session with this cookie value began.
    pub async fn created_at(&self, key: &str) -> Result<Option<time::OffsetDateTime>, StoreError> {
        match self {
            Self::Client(codec) => Ok(codec.created_at(key)),
            Self::Server(backend) => match SessionId::parse(key) {
                Some(id) => backend.created_at(&id).await,
                None => Ok(None),
            },
        }
    }

    /// When the session with this cookie value ends, if it is live.
    pub async fn expires_at(&self, key: &str) -> Result<Option<time::OffsetDateTime>, StoreError> {
        match self {
            Self::Client(codec) => Ok(codec.expires_at(key)),
            Self::Server(backend) => match SessionId::parse(key) {
                Some(id) => backend.expires_at(&id).await,
                None => Ok(None),
            },
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
        let id = match self {
            Self::Client(_) => None,
            Self::Server(_) => SessionId::parse(key.as_ref()),
        };
        // Before the clock starts: a wait for the session's lock is not the store's time.
        actix::pass_gate(key, id.as_ref()).await?;
        let started = Instant::now();
        let loaded = match self {
            Self::Client(codec) => {
                let (tag, live) = codec.load(key.as_ref());
                seen::loaded_client(key.as_ref(), tag, live.as_ref().map(seen::Times::of));
                Ok(live.map(|l| l.state))
            }
            Self::Server(backend) => actix::load_parsed(&**backend, key, id).await,
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
        let saved = match self {
            Self::Client(codec) => codec
                .save(&state, ttl)
                .and_then(cookie_key)
                .map_err(Into::into),
            Self::Server(backend) => actix::save(&**backend, state, ttl).await,
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
        let updated = match self {
            Self::Client(codec) => codec
                .update(key.as_ref(), &state, ttl)
                .and_then(cookie_key)
                .map_err(Into::into),
            Self::Server(backend) => actix::update(&**backend, key, state, ttl).await,
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
        let renewed = match self {
            Self::Client(_) => Ok(()),
            Self::Server(backend) => actix::update_ttl(&**backend, key, ttl).await,
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
        let deleted = match self {
            Self::Client(_) => Ok(()),
            Self::Server(backend) => actix::delete(&**backend, key).await,
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
