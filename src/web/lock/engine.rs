//! The lock across servers in the session engine, for the `redis`, `postgres` and `memcached`
//! types: a lock per session with this request's random token and an expiry, taken only if free
//! (Redis: `SET <key_prefix>lock:<file stem> <token> NX PX <ttl>`; PostgreSQL: an upsert into
//! `<table>_locks` that takes a row only if it is free or expired, by the database's clock;
//! memcached: an `add` with an expiry, `store::memcached::MemcachedLocks`), retried with a
//! growing pause until [`WAIT`]; released by deleting it only while it still holds this
//! request's token, so a request whose lock expired never frees another's. The expiry ([`TTL`])
//! frees a lock whose server died holding it; a request running longer than that loses its
//! guarantee (it is logged), never the session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use redis::Script;

use crate::postgres::{Postgres, PostgresError};
use crate::redis_blocking::{RedisBlocking, RedisBlockingError};
use crate::store::id;
use crate::store::memcached::MemcachedLocks;

/// How long a lock lives if its holder never releases it.
pub const TTL: Duration = Duration::from_secs(30);
/// The longest any request waits for an engine's lock (`[session] lock_timeout` is the bound a
/// request has; this one caps what a caller of [`EngineLock::new`] gets).
pub const WAIT: Duration = Duration::from_secs(60);
/// The first pause between tries; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(2);
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Deletes KEYS[1] if it holds ARGV[1].
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Why the engine could not take or release a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Redis(#[from] RedisBlockingError),
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    #[error(transparent)]
    Memcached(#[from] crate::store::StoreError),
}

/// Where the locks are kept.
pub enum LockEngine {
    /// Keys `<key_prefix>lock:<stem>` in one Redis (or Cluster).
    Redis {
        redis: RedisBlocking,
        prefix: String,
        release: Script,
    },
    /// Rows of `<table>_locks` in PostgreSQL.
    Postgres {
        db: Postgres,
        take: String,
        release: String,
    },
    /// Keys `<key_prefix>lock:<stem>` in memcached.
    Memcached(MemcachedLocks),
}

impl LockEngine {
    pub fn redis(redis: RedisBlocking, key_prefix: &str) -> Self {
        Self::Redis {
            redis,
            prefix: format!("{key_prefix}lock:"),
            release: Script::new(RELEASE),
        }
    }

    /// Locks in `<table>_locks`, which is created now if the database answers (and else by
    /// the sessions store's first call, which creates it with the sessions table).
    pub fn postgres(db: Postgres, table: &str) -> Self {
        let locks = format!("{table}_locks");
        Self::Postgres {
            db,
            take: format!(
                "INSERT INTO {locks} (id, token, until) \
                 VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond') \
                 ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, until = EXCLUDED.until \
                 WHERE {locks}.until <= now() OR {locks}.token = EXCLUDED.token"
            ),
            release: format!("DELETE FROM {locks} WHERE id = $1 AND token = $2"),
        }
    }
}

/// Session locks in one engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineLock(Arc<Inner>);

struct Inner {
    engine: LockEngine,
    ttl: Duration,
    wait: Duration,
}

impl EngineLock {
    pub fn new(engine: LockEngine) -> Self {
        Self::with_timing(engine, TTL, WAIT)
    }

    /// Locks that expire after `ttl`, waited for at most `wait`.
    pub fn with_timing(engine: LockEngine, ttl: Duration, wait: Duration) -> Self {
        Self(Arc::new(Inner { engine, ttl, wait }))
    }

    /// Takes the lock if it is free. `GET` makes a try whose answer was lost (and that was
    /// sent again on another connection) find its own token: taken, not "held by another".
    /// PostgreSQL's upsert does the same: a row holding this token is taken again.
    fn try_take(&self, stem: &str, token: &str) -> Result<bool, LockError> {
        let ttl_ms = i64::try_from(self.0.ttl.as_millis()).unwrap_or(i64::MAX);
        match &self.0.engine {
            LockEngine::Redis { redis, prefix, .. } => {
                let before: Option<String> = redis.run(|conn| {
                    redis::cmd("SET")
                        .arg(format!("{prefix}{stem}"))
                        .arg(token)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl_ms)
                        .arg("GET")
                        .query(conn)
                })?;
                Ok(before.is_none_or(|held| held == token))
            }
            LockEngine::Memcached(locks) => Ok(locks.try_take(stem, token, self.0.ttl)?),
            LockEngine::Postgres { db, take, .. } => {
                let (sql, stem, token) = (take.clone(), stem.to_owned(), token.to_owned());
                let taken = db.run_blocking(move |c| async move {
                    c.execute(sql.as_str(), &[&stem, &token, &ttl_ms]).await
                })?;
                Ok(taken == 1)
            }
        }
    }

    /// After a try that failed without an answer (Redis stalled past the command bound), the
    /// `SET` may still be carried out when Redis resumes, leaving a lock nobody holds for the
    /// whole [`TTL`]: release this token in the background until Redis has answered twice (or
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
        match &self.0.engine {
            LockEngine::Redis {
                redis,
                prefix,
                release,
            } => {
                let key = format!("{prefix}{stem}");
                let deleted: i64 = redis.run(|conn| release.key(&key).arg(token).invoke(conn))?;
                Ok(deleted == 1)
            }
            LockEngine::Memcached(locks) => Ok(locks.release(stem, token)?),
            LockEngine::Postgres { db, release, .. } => {
                let (sql, stem, token) = (release.clone(), stem.to_owned(), token.to_owned());
                let deleted = db.run_blocking(move |c| async move {
                    c.execute(sql.as_str(), &[&stem, &token]).await
                })?;
                Ok(deleted == 1)
            }
        }
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
