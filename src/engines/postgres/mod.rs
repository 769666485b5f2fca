//! `type = "postgres"` (Flask-Session's `sqlalchemy` on PostgreSQL): sessions in a table, and
//! beside it the accounts (`<table>_users`), login counters (`<table>_throttle`) and session
//! locks (`<table>_locks`) every server on that database shares.
//!
//! - [`config`]: the `[session.postgres]` table.
//! - [`connection`]: the pool on the engine's own runtime, and schema creation; [`tls`]: libpq's
//!   `sslmode` and certificate parameters, with rustls.
//! - [`sessions`]: the session backend; [`users`], [`throttle`], [`lock`]: the concerns'
//!   implementations.

pub mod config;
pub mod connection;
mod lock;
mod sessions;
pub mod throttle;
pub mod tls;
pub mod users;


pub use config::PostgresConfig;
pub use connection::{Postgres, PostgresError, Schema};
pub use lock::PostgresLocks;
pub use sessions::*;
pub use throttle::PostgresCounters;
pub use users::PostgresUsers;

use crate::config::{Config, SessionConfig};
use crate::engines::{Engine, EngineError, Shared, StoreType};
use crate::store::{Place, Store, StoreError};
use crate::users::UserDb;
use crate::web::lock::{Across, EngineLock};

crate::engines::error::engine_errors!(PostgresError);

/// The `postgres` engine.
pub struct Kind;

impl Engine for Kind {
    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        sessions::open(session)
    }

    fn sweep_every(session: &SessionConfig) -> Option<std::time::Duration> {
        Some(session.postgres.cleanup_interval)
    }

    fn place(session: &SessionConfig, stem: &str) -> Place {
        let table = &session.postgres.table;
        Place::new(
            "panel-place-postgres",
            stem,
            table,
            format!("table {table}, id {stem}"),
        )
    }

    /// One pool for accounts, counters and locks; connections are made when first used.
    fn shared(config: &Config) -> Result<Shared, EngineError> {
        let p = &config.session.postgres;
        let db = Postgres::new(p)?;
        let users = if config.auth.users == StoreType::Postgres {
            Some(users_on(config, db.clone())?)
        } else {
            None
        };
        Ok(Shared {
            counters: Some(Box::new(PostgresCounters::new(db.clone(), &p.table))),
            locks: Across::Engine(EngineLock::new(PostgresLocks::new(db, &p.table))),
            users,
        })
    }

    fn accounts(config: &Config) -> Result<Option<UserDb>, EngineError> {
        let db = Postgres::new(&config.session.postgres)?;
        Ok(Some(users_on(config, db)?))
    }
}

fn users_on(config: &Config, db: Postgres) -> Result<UserDb, EngineError> {
    let auth = &config.auth;
    Ok(UserDb::open_postgres(
        db,
        &config.session.postgres.table,
        Some(auth.users_file.as_path()),
        auth.bcrypt_cost,
    )?)
}
