//! `type = "redis"`: sessions in one Redis or a Redis Cluster, and with them everything the
//! processes of a deployment share: accounts, login counters and session locks.
//!
//! - [`config`]: the `[session.redis]` table.
//! - [`connection`]: the async engine sessions use (multiplexed connections per worker, or the
//!   cluster client), with [`nodes`] for commands that go to every node.
//! - [`blocking`]: the blocking pool accounts, counters and locks use beside bcrypt.
//! - [`reach`]: how both reach Redis (TLS, the cluster client, Sentinel).
//! - [`sessions`]: the session backend; [`users`], [`throttle`], [`lock`]: the concerns'
//!   implementations.

pub mod blocking;
pub mod config;
mod config_check;
pub mod connection;
mod lock;
mod nodes;
pub mod reach;
mod sessions;
pub mod throttle;
pub mod users;


pub use blocking::{RedisBlocking, RedisBlockingError, RedisTarget};
pub use config::RedisConfig;
pub use connection::{EngineOptions, RedisEngine};
pub use lock::RedisLocks;
pub use sessions::*;
pub use throttle::RedisCounters;
pub use users::RedisUsers;

use crate::config::{Config, SessionConfig};
use crate::engines::{Engine, EngineError, Shared};
use crate::store::{Place, Store, StoreError};
use crate::users::UserDb;
use crate::web::lock::{Across, EngineLock};

crate::engines::error::engine_errors!(RedisBlockingError);

/// The `redis` engine.
pub struct Kind;

impl Engine for Kind {
    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        sessions::open(session)
    }

    fn place(session: &SessionConfig, stem: &str) -> Place {
        let key = format!("{}{stem}", session.redis.key_prefix);
        Place::new("panel-place-redis", &key, "", format!("Redis key {key}"))
    }

    /// One blocking pool for accounts, counters and locks.
    fn shared(config: &Config) -> Result<Shared, EngineError> {
        let r = &config.session.redis;
        let pool = RedisBlocking::new(&RedisTarget::from(r))?;
        let users = if config.auth.users == crate::engines::StoreType::Redis {
            Some(users_on(config, pool.clone())?)
        } else {
            None
        };
        Ok(Shared {
            counters: Some(Box::new(RedisCounters::new(pool.clone(), &r.key_prefix))),
            locks: Across::Engine(EngineLock::new(RedisLocks::new(pool, &r.key_prefix))),
            users,
        })
    }

    fn accounts(config: &Config) -> Result<Option<UserDb>, EngineError> {
        let pool = RedisBlocking::new(&RedisTarget::from(&config.session.redis))?;
        Ok(Some(users_on(config, pool)?))
    }
}

fn users_on(config: &Config, pool: RedisBlocking) -> Result<UserDb, EngineError> {
    let auth = &config.auth;
    Ok(UserDb::open_redis(
        pool,
        &config.session.redis.key_prefix,
        Some(auth.users_file.as_path()),
        auth.bcrypt_cost,
    )?)
}
