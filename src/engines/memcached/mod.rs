//! `type = "memcached"`: sessions in memcached servers, each key on one of them. memcached may
//! evict, so accounts and login counters stay in the accounts' file (`[auth] users_db`); session locks are
//! memcached keys with an expiry.
//!
//! - [`config`]: the `[session.memcached]` table.
//! - [`connection`]: the pools, which server a key lives on, exptimes.
//! - [`sessions`]: the session backend; [`lock`]: the session lock.

pub mod config;
pub mod connection;
mod lock;
mod sessions;


pub use config::MemcachedConfig;
pub use lock::MemcachedLocks;
pub use connection::{exptime, server_for, RELATIVE_LIMIT};
pub use sessions::*;

use crate::config::{Config, SessionConfig};
use crate::engines::{Engine, EngineError, Shared};
use crate::store::{Place, Store, StoreError};
use crate::web::lock::{Across, EngineLock};

/// The `memcached` engine.
pub struct Kind;

impl Engine for Kind {
    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        sessions::open(session)
    }

    fn place(session: &SessionConfig, stem: &str) -> Place {
        let key = format!("{}{stem}", session.memcached.key_prefix);
        Place::new(
            "panel-place-memcached",
            &key,
            "",
            format!("memcached key {key}"),
        )
    }

    fn shared(config: &Config) -> Result<Shared, EngineError> {
        Ok(Shared {
            counters: None,
            locks: Across::Engine(EngineLock::new(MemcachedLocks::new(
                &config.session.memcached,
            )?)),
            users: None,
        })
    }
}
