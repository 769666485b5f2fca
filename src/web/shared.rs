//! What every server process of one deployment must agree on besides the sessions, and where it
//! lives for each session type: the user accounts, the login throttle's counters, and the
//! cross-process half of `lock = true`. Changing `[session] type` alone moves all three:
//!
//! | type | users (`[auth] users` overrides) | throttle counters | locks across processes |
//! | --- | --- | --- | --- |
//! | filesystem | SQLite `users_db` | the same SQLite file | `flock` files in the session folder |
//! | memory | SQLite `users_db` | this process's memory | none (one process) |
//! | redis | the same Redis | the same Redis | a Redis lock with expiry |
//! | sqlite | SQLite `users_db` | the same SQLite file | `flock` files in `<path>.locks/` beside the database |
//! | memcached | SQLite `users_db` | the same SQLite file | a memcached key with expiry |
//! | cookie | SQLite `users_db` | the same SQLite file | none (`lock` is refused) |
//! | postgres | the same database (`<table>_users`) | the same database (`<table>_throttle`) | rows of `<table>_locks` with expiry |
//!
//! A new session type decides its row here.

use crate::config::{Config, StoreType, UserStoreKind};
use crate::postgres::{Postgres, PostgresError};
use crate::redis_blocking::{RedisBlocking, RedisBlockingError, RedisTarget};
use crate::store::memcached::MemcachedLocks;
use crate::users::UserDb;

use super::{lock, throttle, StartError};

/// The shared state's backends, opened.
pub(super) struct Shared {
    pub users: UserDb,
    pub counters: Box<dyn throttle::Counters>,
    /// How `lock = true` serializes a session's requests across processes.
    pub locks_across: lock::Across,
}

/// Opens the backends `config` implies. Nothing connects to an engine yet: one that is down at
/// start-up is reached when it is back.
pub(super) fn open(config: &Config) -> Result<Shared, StartError> {
    let (s, auth) = (&config.session, &config.auth);
    // One pool for users, throttle and locks, made only if one of them is in Redis.
    let mut pool = None;
    let mut redis = || -> Result<RedisBlocking, RedisBlockingError> {
        let made = match pool.take() {
            Some(made) => made,
            None => RedisBlocking::new(&RedisTarget::from(&s.redis))?,
        };
        pool = Some(made.clone());
        Ok(made)
    };
    let prefix = &s.redis.key_prefix;
    // The same for PostgreSQL: connections are made only when first used.
    let mut pg_pool = None;
    let mut postgres = || -> Result<Postgres, PostgresError> {
        let made = match pg_pool.take() {
            Some(made) => made,
            None => Postgres::new(&s.postgres)?,
        };
        pg_pool = Some(made.clone());
        Ok(made)
    };
    let table = &s.postgres.table;
    let (counters, locks_across): (Box<dyn throttle::Counters>, _) = match s.store {
        StoreType::Filesystem => (
            Box::new(throttle::SqliteCounters::open(&auth.users_db)?),
            lock::Across::Files(s.filesystem.dir.join(".locks")),
        ),
        StoreType::Sqlite => (
            Box::new(throttle::SqliteCounters::open(&auth.users_db)?),
            lock::Across::Files(sqlite_locks(&s.sqlite.path)),
        ),
        // memcached may evict: accounts and counters live where nothing is evicted.
        StoreType::Memcached => (
            Box::new(throttle::SqliteCounters::open(&auth.users_db)?),
            lock::Across::Engine(lock::EngineLock::new(lock::LockEngine::Memcached(
                MemcachedLocks::new(&s.memcached)?,
            ))),
        ),
        // Sessions in the cookie: nothing of theirs on the server to lock (`lock = true` is
        // refused by the config check).
        StoreType::Cookie => (
            Box::new(throttle::SqliteCounters::open(&auth.users_db)?),
            lock::Across::None,
        ),
        StoreType::Memory => (
            Box::new(throttle::MemoryCounters::default()),
            lock::Across::None,
        ),
        StoreType::Redis => (
            Box::new(throttle::RedisCounters::new(redis()?, prefix)),
            lock::Across::Engine(lock::EngineLock::new(lock::LockEngine::redis(
                redis()?,
                prefix,
            ))),
        ),
        StoreType::Postgres => (
            Box::new(throttle::PostgresCounters::new(postgres()?, table)),
            lock::Across::Engine(lock::EngineLock::new(lock::LockEngine::postgres(
                postgres()?,
                table,
            ))),
        ),
    };
    let users = users_in(config, &mut redis, &mut postgres)?;
    Ok(Shared {
        users,
        counters,
        locks_across,
    })
}

/// The user database `config` implies, on its own connections: for the operator's commands.
pub fn open_users(config: &Config) -> Result<UserDb, StartError> {
    let s = &config.session;
    users_in(
        config,
        &mut || RedisBlocking::new(&RedisTarget::from(&s.redis)),
        &mut || Postgres::new(&s.postgres),
    )
}

/// The user database `config` implies, on connections `redis` or `postgres` give.
fn users_in(
    config: &Config,
    redis: &mut dyn FnMut() -> Result<RedisBlocking, RedisBlockingError>,
    postgres: &mut dyn FnMut() -> Result<Postgres, PostgresError>,
) -> Result<UserDb, StartError> {
    let (s, auth) = (&config.session, &config.auth);
    let legacy = Some(auth.users_file.as_path());
    Ok(match auth.users {
        UserStoreKind::Sqlite => UserDb::open(&auth.users_db, legacy, auth.bcrypt_cost)?,
        UserStoreKind::Redis => {
            UserDb::open_redis(redis()?, &s.redis.key_prefix, legacy, auth.bcrypt_cost)?
        }
        UserStoreKind::Postgres => {
            UserDb::open_postgres(postgres()?, &s.postgres.table, legacy, auth.bcrypt_cost)?
        }
    })
}

/// The folder of the `sqlite` type's cross-process session locks: beside the database, so that
/// every process sharing the file shares them.
fn sqlite_locks(db: &std::path::Path) -> std::path::PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(".locks");
    db.with_file_name(name)
}
