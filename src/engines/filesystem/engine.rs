//! The `filesystem` engine as the registry sees it. Accounts and login counters are in the
//! accounts' file (`[auth] users_db`); session locks are files in the session folder's `.locks/`.

use crate::config::{Config, SessionConfig};
use crate::engines::{Engine, EngineError, Shared};
use crate::store::{Place, Store, StoreError};
use crate::web::lock::Across;

/// The `filesystem` engine.
pub struct Kind;

impl Engine for Kind {
    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        super::open(session)
    }

    fn sweep_every(session: &SessionConfig) -> Option<std::time::Duration> {
        Some(session.filesystem.cleanup_interval)
    }

    fn place(session: &SessionConfig, stem: &str) -> Place {
        let name = format!("{stem}.json");
        let full = session.filesystem.dir.join(&name).display().to_string();
        Place::new("panel-place-file", name, "", full)
    }

    fn shared(config: &Config) -> Result<Shared, EngineError> {
        Ok(Shared {
            counters: None,
            locks: Across::Files(config.session.filesystem.dir.join(".locks")),
            users: None,
        })
    }
}
