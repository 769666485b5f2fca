//! `type = "sqlite"` (Flask-Session's `sqlalchemy` on SQLite): sessions in one database file
//! that the processes of one machine share, with their locks in files beside it. The same
//! engine keeps the accounts and login counters of every type whose engine does not hold them,
//! in the file `[auth] users_db`.
//!
//! - [`config`]: the `[session.sqlite]` table.
//! - [`sessions`]: the session backend; [`users`], [`throttle`]: accounts and counters in a
//!   SQLite file.

pub mod config;
mod sessions;
pub mod throttle;
pub mod users;

use std::path::{Path, PathBuf};

pub use config::SqliteConfig;
pub use sessions::*;
pub use throttle::SqliteCounters;
pub use users::SqliteUsers;

use crate::config::{Config, SessionConfig};
use crate::engines::{Engine, EngineError, Shared};
use crate::store::{Place, Store, StoreError};
use crate::users::{UserDb, UserError};
use crate::web::lock::Across;

/// The `sqlite` engine.
pub struct Kind;

impl Engine for Kind {
    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        sessions::open(session)
    }

    fn sweep_every(session: &SessionConfig) -> Option<std::time::Duration> {
        Some(session.sqlite.cleanup_interval)
    }

    fn place(session: &SessionConfig, stem: &str) -> Place {
        let db = &session.sqlite.path;
        Place::new(
            "panel-place-sqlite",
            stem,
            "",
            format!("{}: table sessions, id {stem}", db.display()),
        )
    }

    /// Accounts and counters in `users_db` (the registry's default); locks in files beside the
    /// database, so that every process sharing the file shares them.
    fn shared(config: &Config) -> Result<Shared, EngineError> {
        Ok(Shared {
            counters: None,
            locks: Across::Files(locks_beside(&config.session.sqlite.path)),
            users: None,
        })
    }

    /// The counters in a table of the accounts' file.
    fn counters_beside_accounts(
        config: &Config,
    ) -> Result<Option<Box<dyn crate::web::throttle::Counters>>, EngineError> {
        Ok(Some(Box::new(SqliteCounters::open(&config.auth.users_db)?)))
    }

    /// The accounts in the SQLite file `[auth] users_db`.
    fn accounts(config: &Config) -> Result<Option<UserDb>, EngineError> {
        let auth = &config.auth;
        Ok(Some(UserDb::open(
            &auth.users_db,
            Some(auth.users_file.as_path()),
            auth.bcrypt_cost,
        )?))
    }
}

/// The folder of the session locks: `<path>.locks/` beside the database.
fn locks_beside(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(".locks");
    db.with_file_name(name)
}

impl UserDb {
    /// Opens (or creates) the SQLite database at `path`, importing `legacy` (a JSON user file
    /// of an earlier version) if it exists. New and re-hashed passwords get bcrypt `cost`.
    pub fn open(
        path: impl Into<PathBuf>,
        legacy: Option<&Path>,
        cost: u32,
    ) -> Result<Self, UserError> {
        let storage = SqliteUsers::open(&path.into())?;
        Self::over(Box::new(storage), legacy, cost)
    }
}
