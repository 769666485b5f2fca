//! `type = "memory"`: sessions in this process's memory, for development, tests, and as the
//! speed baseline. Nothing of it is shared: login counters are in memory too, and `lock` needs
//! no lock across processes.
//!
//! - [`config`]: the `[session.memory]` table.
//! - [`sessions`]: the session backend. Login counters are the throttle's own, in memory.

pub mod config;
mod sessions;

pub use config::MemoryConfig;
pub use sessions::*;

use crate::config::{Config, SessionConfig};
use crate::engines::{Engine, EngineError, Shared};
use crate::store::{Place, Store, StoreError};
use crate::web::lock::Across;

/// The `memory` engine.
pub struct Kind;

impl Engine for Kind {
    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        sessions::open(session)
    }

    fn sweep_every(session: &SessionConfig) -> Option<std::time::Duration> {
        Some(session.memory.cleanup_interval)
    }

    fn place(_: &SessionConfig, _: &str) -> Place {
        Place::new("panel-place-memory", "", "", "this process's memory")
    }

    fn shared(_: &Config) -> Result<Shared, EngineError> {
        Ok(Shared {
            counters: Some(Box::new(crate::web::throttle::InProcessCounters::default())),
            locks: Across::None,
            users: None,
        })
    }
}
