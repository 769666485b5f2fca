//! `[session] lock = true`: PHP's guarantee that the requests of one session run one at a time, so
//! that none of them loses another's change. The lock is held from before the session is loaded
//! until after it is saved: within a process by an async mutex per session, and across processes
//! sharing the store by a lock in its engine.
//!
//! Off by default: like Flask-Session and actix-session, parallel requests of one session then
//! run side by side and the last write wins (each file is still always whole).
//!
//! The lock across processes is the session engine's: a lock file for `filesystem`
//! ([`file`]) and `sqlite`, a Redis key, a PostgreSQL row or a memcached key with an expiry for
//! `redis`, `postgres` and `memcached` ([`engine`]), none for `memory` (one process by design)
//! and `cookie` (nothing on the server to lock). The in-process mutex stays in front of it, so that one process's own requests
//! queue here rather than poll the engine.

mod engine;
mod file;

pub use self::engine::{EngineLock, LockEngine, LockError};

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use actix_web::body::MessageBody;
use actix_web::cookie::Key;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use parking_lot::Mutex;

use crate::store::SessionId;

/// Past this many remembered sessions, entries nobody waits on are dropped.
const PRUNE_AT: usize = 10_000;

/// How the lock is held across processes.
pub enum Across {
    /// Only within this process (`memory`).
    None,
    /// A lock file per session in this folder (`<session folder>/.locks`).
    Files(PathBuf),
    /// A key per session in Redis, or a row in PostgreSQL.
    Engine(EngineLock),
}

/// The locks of every session this process is serving.
pub struct SessionLocks {
    key: Key,
    cookie_name: String,
    across: Across,
    held: Mutex<HashMap<[u8; 32], Weak<tokio::sync::Mutex<()>>>>,
}

/// One session's lock, held. [`Held::release`] frees it; dropping it does too, but leaves an
/// engine's lock to be released in the background.
pub struct Held {
    /// Declared first, so that a drop frees it before the in-process mutex.
    across: Option<AcrossHeld>,
    _in_process: tokio::sync::OwnedMutexGuard<()>,
}

enum AcrossHeld {
    /// Never read: held open for its `flock`, freed when closed.
    File(#[allow(dead_code)] File),
    Engine(self::engine::EngineGuard),
}

impl Held {
    /// Frees the lock across processes, then the one in this process.
    pub async fn release(mut self) {
        if let Some(AcrossHeld::Engine(guard)) = self.across.take() {
            guard.release().await;
        }
    }

    /// Whether the lock is held across processes too (not only in this one).
    pub fn across_processes(&self) -> bool {
        self.across.is_some()
    }
}

impl SessionLocks {
    pub fn new(key: Key, cookie_name: &str, across: Across) -> Self {
        Self {
            key,
            cookie_name: cookie_name.to_owned(),
            across,
            held: Mutex::default(),
        }
    }

    /// The session id in the request's cookie, if its signature holds and its shape is right.
    fn session_digest(&self, req: &ServiceRequest) -> Option<[u8; 32]> {
        let id = super::signed_cookie_value(req.request(), &self.key, &self.cookie_name)?;
        SessionId::parse(&id).map(|id| *id.digest())
    }

    fn mutex_for(&self, digest: [u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        let mut held = self.held.lock();
        if let Some(m) = held.get(&digest).and_then(Weak::upgrade) {
            return m;
        }
        if held.len() >= PRUNE_AT {
            held.retain(|_, w| w.strong_count() > 0);
        }
        let m = Arc::new(tokio::sync::Mutex::new(()));
        held.insert(digest, Arc::downgrade(&m));
        m
    }

    /// Waits for the lock of the session whose id hashes to `digest`: first in this process,
    /// then across processes (where that cannot be had, the request goes on without it, logged).
    pub async fn lock(&self, digest: [u8; 32]) -> Held {
        let in_process = self.mutex_for(digest).lock_owned().await;
        let across = match &self.across {
            Across::None => None,
            Across::Files(dir) => file::acquire(dir.clone(), digest)
                .await
                .map(AcrossHeld::File),
            Across::Engine(lock) => lock.acquire(digest).await.map(AcrossHeld::Engine),
        };
        Held {
            across,
            _in_process: in_process,
        }
    }
}

pub async fn one_request_per_session(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let locks = req
        .app_data::<web::Data<super::AppState>>()
        .and_then(|state| state.locks.clone());
    let Some(locks) = locks else {
        return next.call(req).await;
    };
    let Some(digest) = locks.session_digest(&req) else {
        return next.call(req).await;
    };
    let held = locks.lock(digest).await;
    let res = next.call(req).await;
    held.release().await;
    res
}
