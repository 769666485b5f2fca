//! The engines that keep sessions, one folder each, and the registry over them.
//!
//! An engine's folder owns everything about it: its `[session.<name>]` table with its
//! capabilities (`config.rs`: parse, defaults, validation, what `config check` prints), its
//! connections, its session backend, and, where the engine offers them, its account store,
//! login-throttle counters and session lock. The concerns keep their small traits in their own
//! modules ([`crate::store::SessionBackend`], [`crate::users::UserStorage`],
//! [`crate::web::throttle::Counters`], [`crate::web::lock::EngineLocks`]); engines implement
//! them.
//!
//! The registry is the one list in [`list`] ([`list::for_each_engine!`]): the type enum
//! ([`StoreType`]), the `[session]` sub-tables, unknown-key detection and the effective config
//! (in `crate::config`), and here [`open`], the shared state ([`open_shared`]) and the place a
//! session lives are derived from it. Callers ask capabilities, never names. Adding an engine is
//! its folder, one line in that list, its line in the conformance suite and its test engine.

pub mod error;
pub mod list;
pub mod runtime;
pub mod tls;

use std::time::Duration;

use crate::config::{Config, SessionConfig};
use crate::store::{Place, Store, StoreError};
use crate::users::UserDb;
use crate::web::lock::Across;
use crate::web::throttle::Counters;
pub use error::EngineError;
use list::for_each_engine;
pub use list::StoreType;

/// What an engine does for the server, beyond what its configuration module tells. Each engine
/// is a unit type, `Kind`, in its folder.
pub trait Engine {
    /// The session store `session` describes (its own table is one of `session`'s fields).
    /// Connections to an engine are made when first needed.
    fn open(session: &SessionConfig) -> Result<Store, StoreError>;

    /// How often the store's sweeper deletes expired sessions; `None`: no sweeper (the engine
    /// expires them by itself, or keeps nothing on the server).
    fn sweep_every(session: &SessionConfig) -> Option<Duration> {
        let _ = session;
        None
    }

    /// Where the session whose id hashes to `stem` lives.
    fn place(session: &SessionConfig, stem: &str) -> Place;

    /// What the processes of a deployment share besides sessions, where this engine keeps it.
    fn shared(config: &Config) -> Result<Shared, EngineError>;

    /// The login counters this engine keeps in the accounts' file (`[auth] users_db`) for the
    /// engines whose sessions keep none; `None` unless it keeps accounts in that file.
    fn counters_beside_accounts(config: &Config) -> Result<Option<Box<dyn Counters>>, EngineError> {
        let _ = config;
        Ok(None)
    }

    /// The accounts in this engine, on their own connections; `None` unless it holds accounts
    /// (`config.rs`' `HOLDS_ACCOUNTS`).
    fn accounts(config: &Config) -> Result<Option<UserDb>, EngineError> {
        let _ = config;
        Ok(None)
    }
}

/// What an engine keeps of the state the processes of one deployment share.
pub struct Shared {
    /// The login throttle's counters; `None`: beside the accounts' file (`[auth] users_db`).
    pub counters: Option<Box<dyn Counters>>,
    /// How `lock = true` serializes a session's requests across processes.
    pub locks: Across,
    /// The accounts, on the same connections, when they are in this engine.
    pub users: Option<UserDb>,
}

/// The shared state's backends, opened.
pub struct SharedState {
    pub users: UserDb,
    pub counters: Box<dyn Counters>,
    pub locks: Across,
}

macro_rules! registry {
    ($($module:ident $Type:ident,)*) => {
        $(pub mod $module;)*

        /// Opens the store `session` names, and its sweeper. Connections to an engine are made
        /// when first needed (and made again after a failure), so that a server whose engine is
        /// down starts, answers 503 for sessions, and recovers by itself.
        pub fn open(session: &SessionConfig) -> Result<Store, StoreError> {
            let (store, every) = match session.store {
                $(StoreType::$Type => (
                    <$module::Kind as Engine>::open(session)?,
                    <$module::Kind as Engine>::sweep_every(session),
                ),)*
            };
            if let Some(every) = every {
                store.start_sweeper(every);
            }
            Ok(store)
        }

        /// Where the session whose id hashes to `stem` lives in the configured store.
        pub fn place(session: &SessionConfig, stem: &str) -> Place {
            match session.store {
                $(StoreType::$Type => <$module::Kind as Engine>::place(session, stem),)*
            }
        }

        fn shared_of(config: &Config) -> Result<Shared, EngineError> {
            match config.session.store {
                $(StoreType::$Type => <$module::Kind as Engine>::shared(config),)*
            }
        }

        /// The counters in the accounts' file, kept by the engine that keeps that file.
        fn local_counters(config: &Config) -> Result<Box<dyn Counters>, EngineError> {
            let local = list::LOCAL_ACCOUNTS;
            let counters = match local {
                $(StoreType::$Type => <$module::Kind as Engine>::counters_beside_accounts(config)?,)*
            };
            counters.ok_or_else(|| {
                EngineError::new(format!("the {local} engine keeps no login counters"))
            })
        }

        fn accounts_of(config: &Config) -> Result<Option<UserDb>, EngineError> {
            match config.auth.users {
                $(StoreType::$Type => <$module::Kind as Engine>::accounts(config),)*
            }
        }
    };
}

for_each_engine!(registry);

/// Opens what the processes of a deployment share besides sessions: the accounts, the login
/// counters and the cross-process session locks, where the session engine keeps them (else in
/// the accounts' file, `[auth] users_db`). Nothing connects to an engine yet.
pub fn open_shared(config: &Config) -> Result<SharedState, EngineError> {
    let shared = shared_of(config)?;
    let users = match shared.users {
        Some(users) => users,
        None => open_accounts(config)?,
    };
    let counters = match shared.counters {
        Some(counters) => counters,
        None => local_counters(config)?,
    };
    Ok(SharedState {
        users,
        counters,
        locks: shared.locks,
    })
}

/// The accounts `config` implies, on their own connections: for the operator's commands.
pub fn open_accounts(config: &Config) -> Result<UserDb, EngineError> {
    match accounts_of(config)? {
        Some(users) => Ok(users),
        None => Err(EngineError::new(format!(
            "the {} engine does not hold accounts",
            config.auth.users
        ))),
    }
}

#[cfg(test)]
mod tests;
