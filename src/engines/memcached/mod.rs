//! `type = "memcached"`: sessions in memcached servers, each key on one of them. memcached may
//! evict, so accounts and login counters stay in the accounts' file (`[auth] users_db`); session locks are
//! memcached keys with an expiry.
//!
//! - [`config`]: the `[session.memcached]` table.
//! - [`sessions`]: the session backend and its connection pools; [`lock`]: the session lock.

pub mod config;
mod lock;
mod sessions;

use std::path::Path;

pub use config::MemcachedConfig;
pub use lock::MemcachedLocks;
pub use sessions::*;

use crate::config::effective::{list, s, secs, Keys};
use crate::config::{Config, Invalid, SessionConfig};
use crate::engines::{Engine, EngineError, Shared};
use crate::store::{Capabilities, Place, Store, StoreError};
use crate::web::lock::{Across, EngineLock};

/// The `memcached` engine.
pub struct Kind;

impl Engine for Kind {
    const NAME: &'static str = "memcached";
    const CAPABILITIES: Capabilities = Capabilities {
        server_side: true,
        shared: true,
        can_list: false,
        expires_by_itself: true,
    };
    type Raw = config::RawMemcached;
    type Config = MemcachedConfig;

    fn validate(raw: Self::Raw, _: &Path) -> Result<MemcachedConfig, Invalid> {
        raw.validate()
    }

    fn effective(m: &MemcachedConfig, keys: &mut Keys<'_>) {
        keys.add("servers", list(&m.servers, s), Some("SESSION_MEMCACHED"));
        keys.add("key_prefix", s(&m.key_prefix), Some("SESSION_KEY_PREFIX"));
        keys.add("pool_size", m.pool_size.to_string(), None);
        keys.add("connect_timeout", secs(m.connect_timeout), None);
        keys.add("command_timeout", secs(m.command_timeout), None);
    }

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
