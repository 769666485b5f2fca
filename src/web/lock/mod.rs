//! `[session] lock = true`: PHP's guarantee that the requests of one session run one at a time, so
//! that none of them loses another's change. The lock is held from before the session is loaded
//! until after it is saved: within a process by an async mutex per session, and across processes
//! sharing the store by a lock in its engine.
//!
//! Off by default: like Flask-Session and actix-session, parallel requests of one session then
//! run side by side and the last write wins (each file is still always whole).
//!
//! The lock across processes is the session engine's ([`Across`], chosen by the engine): lock
//! files in a folder ([`file`]), a lock with an expiry in the engine itself ([`engine`]), or none
//! (a store of one process, or sessions kept by the client). The in-process mutex stays in front
//! of it, so that one process's own requests queue here rather than poll the engine.
//!
//! The lock is taken at the session's load, through the request context's gate
//! ([`crate::store::seen::gated`]): actix-session has verified the cookie by then and names the
//! session, so the lock checks no signature of its own, and a request whose cookie names no
//! session (none, forged, or not an id) takes no lock.

mod engine;
mod file;

pub use self::engine::{EngineLock, EngineLocks, LockError};

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use parking_lot::Mutex;

use crate::store::seen;

/// Past this many remembered sessions, entries nobody waits on are dropped.
const PRUNE_AT: usize = 10_000;
/// How long a request waits for its session's lock unless told otherwise
/// (`[session] lock_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// What the 503's `Retry-After` says, in seconds.
const RETRY_AFTER: u32 = 1;

/// The lock was not had within the request's bound: another request of the session holds it.
/// As a request's error, it is the "Session busy" page ([`busy_page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session's lock was not free within {0:?}")]
pub struct TimedOut(pub Duration);

impl actix_web::ResponseError for TimedOut {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The page of a request whose session stayed busy: 503 with `Retry-After`.
pub fn busy_page(
    state: &super::AppState,
    lang: crate::i18n::Lang,
    path: &str,
) -> actix_web::HttpResponse {
    let mut page = state.error_page_in(
        lang,
        path,
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
        "error-lock",
    );
    page.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(RETRY_AFTER),
    );
    page
}

/// Tries `attempt` (on a blocking thread) until it takes the lock or `within` has passed,
/// pausing on the worker between tries, from `pause` doubling up to `max_pause`. A try that
/// fails leaves the request to go on without the lock (logged); `failed` runs first, for a try
/// whose answer was lost.
pub(crate) async fn poll<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    within: Duration,
    mut pause: Duration,
    max_pause: Duration,
    attempt: impl Fn() -> Result<Option<T>, E> + Clone + Send + 'static,
    failed: impl FnOnce(),
) -> Acquired<T> {
    let deadline = Instant::now().checked_add(within);
    loop {
        match web::block(attempt.clone()).await {
            Ok(Ok(Some(taken))) => return Acquired::Held(taken),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                crate::telemetry::engine_failure("locks", &e);
                failed();
                return Acquired::Unavailable;
            }
            Err(e) => {
                crate::telemetry::engine_failure("locks", &e);
                return Acquired::Unavailable;
            }
        }
        if deadline.is_none_or(|d| Instant::now() >= d) {
            return Acquired::TimedOut;
        }
        actix_web::rt::time::sleep(pause).await;
        pause = pause.saturating_mul(2).min(max_pause);
    }
}

/// How a try for the lock across processes ended.
pub(crate) enum Acquired<T> {
    Held(T),
    /// The engine (or the lock file) failed: the request goes on without it (logged), since the
    /// lock only guards against lost updates.
    Unavailable,
    /// Another request held it past the deadline.
    TimedOut,
}

/// How the lock is held across processes.
pub enum Across {
    /// Only within this process (`memory`).
    None,
    /// A lock file per session in this folder (`<session folder>/.locks`).
    Files(PathBuf),
    /// A lock per session in the engine, with an expiry.
    Engine(EngineLock),
}

/// The locks of every session this process is serving.
pub struct SessionLocks {
    across: Across,
    timeout: Duration,
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
    pub fn new(across: Across) -> Self {
        Self {
            across,
            timeout: DEFAULT_TIMEOUT,
            held: Mutex::default(),
        }
    }

    /// Requests wait for their session's lock at most `timeout` (then 503).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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

    /// Waits for the lock of the session whose id hashes to `digest`, at most the timeout in
    /// all: first in this process, then across processes (where the engine fails, the request
    /// goes on without it, logged).
    pub async fn lock(&self, digest: [u8; 32]) -> Result<Held, TimedOut> {
        let deadline = Instant::now().checked_add(self.timeout);
        let in_process = tokio::time::timeout(self.timeout, self.mutex_for(digest).lock_owned())
            .await
            .map_err(|_| TimedOut(self.timeout))?;
        let left = deadline.map_or(self.timeout, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let across = match &self.across {
            Across::None => Acquired::Unavailable,
            Across::Files(dir) => match file::acquire(dir.clone(), digest, left).await {
                Acquired::Held(file) => Acquired::Held(AcrossHeld::File(file)),
                Acquired::Unavailable => Acquired::Unavailable,
                Acquired::TimedOut => Acquired::TimedOut,
            },
            Across::Engine(lock) => match lock.acquire(digest, left).await {
                Acquired::Held(guard) => Acquired::Held(AcrossHeld::Engine(guard)),
                Acquired::Unavailable => Acquired::Unavailable,
                Acquired::TimedOut => Acquired::TimedOut,
            },
        };
        let across = match across {
            Acquired::Held(held) => Some(held),
            Acquired::Unavailable => None,
            Acquired::TimedOut => return Err(TimedOut(self.timeout)),
        };
        Ok(Held {
            across,
            _in_process: in_process,
        })
    }
}

/// Runs the request under its session's lock, taken when its session is loaded (see the module
/// doc) and freed once the session is saved; a [`TimedOut`] error (the 503 "Session busy" page)
/// when the lock is not had within the timeout. The body has been read before (see
/// [`super::body`]): a client that sends its body slowly cannot hold the lock.
pub async fn one_request_per_session(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<super::AppState>>().cloned() else {
        return next.call(req).await;
    };
    let Some(locks) = state.locks.clone() else {
        return next.call(req).await;
    };
    let taken: Arc<Mutex<Option<Result<Held, TimedOut>>>> = Arc::default();
    let gate: seen::Gate = {
        let taken = Arc::clone(&taken);
        Box::new(move |digest| {
            Box::pin(async move {
                let lock = locks.lock(digest).await;
                let open = lock.is_ok();
                *taken.lock() = Some(lock);
                open
            })
        })
    };
    let res = seen::gated(gate, next.call(req)).await;
    let lock = taken.lock().take();
    match lock {
        None => res,
        Some(Ok(held)) => {
            held.release().await;
            res
        }
        Some(Err(e)) => {
            // The session layer stopped at the gate (its error says no more than that); the
            // outermost layer, which has the request's language and path, makes the page.
            drop(res);
            tracing::warn!(error = %e, "session busy: answering 503");
            Err(e.into())
        }
    }
}
