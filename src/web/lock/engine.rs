//! The lock across servers in a session engine that keeps one ([`EngineLocks`], implemented in
//! each engine's folder): a lock per session with this request's random token and an expiry,
//! taken only if free, retried with a growing pause until [`WAIT`]; released by deleting it only
//! while it still holds this request's token, so a request whose lock expired never frees
//! another's. The expiry ([`TTL`]) frees a lock whose server died holding it; a request running
//! longer than that loses its guarantee (it is logged), never the session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;

use crate::engines::error::EngineError;
use crate::store::id;

/// How long a lock lives if its holder never releases it.
pub const TTL: Duration = Duration::from_secs(30);
/// The longest any request waits for an engine's lock (`[session] lock_timeout` is the bound a
/// request has; this one caps what a caller of [`EngineLock::new`] gets).
pub const WAIT: Duration = Duration::from_secs(60);
/// The first pause between tries; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Why the engine could not take or release a lock.
pub type LockError = EngineError;

/// Per-session locks in an engine, each named by the session's digest (`stem`) and held by a
/// random `token`. Both calls block: they run on blocking threads.
pub trait EngineLocks: Send + Sync + 'static {
    /// Takes the lock of `stem` for `token` if it is free (or already held by `token`: a try
    /// whose answer was lost and that was sent again finds its own token), expiring after
    /// `ttl`.
    fn try_take(&self, stem: &str, token: &str, ttl: Duration) -> Result<bool, LockError>;

    /// Deletes the lock of `stem` if it still holds `token`; whether it did.
    fn release(&self, stem: &str, token: &str) -> Result<bool, LockError>;
}

/// Session locks in one engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineLock(Arc<Inner>);

struct Inner {
    engine: Box<dyn EngineLocks>,
    ttl: Duration,
    wait: Duration,
}

impl EngineLock {
    pub fn new(engine: impl EngineLocks) -> Self {
        Self::with_timing(engine, TTL, WAIT)
    }

    /// Locks that expire after `ttl`, waited for at most `wait`.
    pub fn with_timing(engine: impl EngineLocks, ttl: Duration, wait: Duration) -> Self {
        Self(Arc::new(Inner {
            engine: Box::new(engine),
            ttl,
            wait,
        }))
    }

    fn try_take(&self, stem: &str, token: &str) -> Result<bool, LockError> {
        self.0.engine.try_take(stem, token, self.0.ttl)
    }

    /// After a try that failed without an answer (the engine stalled past its command bound),
    /// the take may still be carried out when it resumes, leaving a lock nobody holds for the
    /// whole [`TTL`]: release this token in the background until the engine has answered twice (or
    /// the lock would have expired anyway).
    fn release_in_background(&self, key: String, token: String) {
        let lock = self.clone();
        let work = move || {
            let until = Instant::now().checked_add(lock.0.ttl);
            let mut answers = 0;
            while answers < 2 && until.is_some_and(|u| Instant::now() < u) {
                match lock.release(&key, &token) {
                    Ok(true) => return,
                    Ok(false) => answers += 1,
                    Err(_) => {}
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(work);
        }
    }

    /// Waits for the lock of `digest`, at most `within` (and this lock's own wait); when the
    /// engine fails, the request is served without it (logged).
    pub(super) async fn acquire(
        &self,
        digest: [u8; 32],
        within: Duration,
    ) -> super::Acquired<EngineGuard> {
        use super::Acquired;
        let key = id::stem(&digest);
        let token = match random_token() {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(error = %e, "no token for the session lock; serving without it");
                return Acquired::Unavailable;
            }
        };
        let (lock, k, t) = (self.clone(), key.clone(), token.clone());
        let attempt = move || lock.try_take(&k, &t).map(|taken| taken.then_some(()));
        let (lock, k, t) = (self.clone(), key.clone(), token.clone());
        let failed = move || lock.release_in_background(k, t);
        let within = within.min(self.0.wait);
        match super::poll(within, FIRST_PAUSE, MAX_PAUSE, attempt, failed).await {
            Acquired::Held(()) => Acquired::Held(EngineGuard {
                lock: self.clone(),
                key,
                token,
                taken: Instant::now(),
                released: false,
            }),
            Acquired::Unavailable => Acquired::Unavailable,
            Acquired::TimedOut => Acquired::TimedOut,
        }
    }

    fn release(&self, stem: &str, token: &str) -> Result<bool, LockError> {
        self.0.engine.release(stem, token)
    }
}

fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// A lock held in the engine. Release it with [`EngineGuard::release`]; dropped unreleased (the
/// request was cancelled) it is released on a blocking thread, or left to expire.
pub struct EngineGuard {
    lock: EngineLock,
    key: String,
    token: String,
    taken: Instant,
    released: bool,
}

impl EngineGuard {
    pub async fn release(mut self) {
        self.released = true;
        let (lock, key, token) = (self.lock.clone(), self.key.clone(), self.token.clone());
        let held = self.taken.elapsed();
        match web::block(move || lock.release(&key, &token)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tracing::warn!(held = ?held, "session lock expired before the request ended: another request may have run beside it")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "session lock not released; it expires by itself")
            }
            Err(e) => tracing::warn!(error = %e, "session lock not released; it expires by itself"),
        }
    }
}

impl Drop for EngineGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (lock, key, token) = (self.lock.clone(), self.key.clone(), self.token.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || {
                if let Err(e) = lock.release(&key, &token) {
                    tracing::warn!(error = %e, "session lock not released; it expires by itself");
                }
            });
        }
    }
}
