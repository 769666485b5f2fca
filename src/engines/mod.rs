//! The engines that keep sessions, one folder each, and the registry: the one list of them.
//!
//! An engine's folder owns everything about it: its `[session.<name>]` table (parse, defaults,
//! validation, what `config check` prints), its connections, its session backend, and, where
//! the engine offers them, its account store, login-throttle counters and session lock. The
//! concerns keep their small traits in their own modules ([`crate::store::SessionBackend`],
//! [`crate::users::UserStorage`], [`crate::web::throttle::Counters`],
//! [`crate::web::lock::EngineLocks`]); engines implement them.
//!
//! Every engine implements [`Engine`], and [`for_each_engine!`] lists them: the type enum
//! ([`StoreType`]), the `[session]` sub-tables, unknown-key detection, the effective config,
//! [`open`], the shared state ([`open_shared`]) and the place a session lives are all derived
//! from that list. Callers ask capabilities, never names. Adding an engine is its folder, one
//! line in [`for_each_engine!`], its line in the conformance suite and its test engine.

pub mod runtime;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::Deserialize;

use crate::config::effective::{Entry, Keys};
use crate::config::{Config, Invalid, SessionConfig};
use crate::store::{Capabilities, Place, Store, StoreError};
use crate::users::UserDb;
use crate::web::lock::Across;
use crate::web::throttle::Counters;

/// The registry: every engine this build runs, one line each (`module Type`), in the order
/// errors and docs list them. `$callback` receives the list.
macro_rules! for_each_engine {
    ($callback:ident) => {
        $callback! {
            filesystem Filesystem,
            memory Memory,
            redis Redis,
            sqlite Sqlite,
            postgres Postgres,
            memcached Memcached,
            cookie Cookie,
        }
    };
}
pub(crate) use for_each_engine;

/// The engine whose SQLite file `[auth] users_db` keeps accounts and login counters when the
/// session engine keeps neither (they must not be evicted, and must be shared by the processes
/// of one machine).
const LOCAL_ACCOUNTS: StoreType = StoreType::Sqlite;

/// Flask-Session's types that this build runs under another name.
const NAMED_OTHERWISE: &[(&str, &str)] = &[(
    "sqlalchemy",
    "Flask-Session's sqlalchemy type is named after its database here: \"postgres\" or \"sqlite\"",
)];

/// Flask-Session's types that cannot run here at all, with the reason.
const CANNOT_RUN: &[(&str, &str)] = &[
    (
        "mongodb",
        "it needs a MongoDB server, which Debian does not package, and this build has no MongoDB client",
    ),
    (
        "dynamodb",
        "it is Amazon's hosted DynamoDB service, which these machines cannot reach or run, and this build has no AWS client",
    ),
];

/// What an engine tells the rest of the product. Each engine is a unit type in its folder.
pub trait Engine {
    /// The value of `[session] type` (and `[auth] users`) that selects it.
    const NAME: &'static str;
    /// What its sessions can do; the same for every backend it opens.
    const CAPABILITIES: Capabilities;
    /// Whether `[auth] users` may name it: accounts kept in the engine, shared by every server
    /// using it. When `users` is unset, accounts follow the session engine if it holds them.
    const HOLDS_ACCOUNTS: bool = false;
    /// `[session.<NAME>]` as written; missing keys take its `Default`.
    type Raw: DeserializeOwned + Default;
    /// `[session.<NAME>]` validated.
    type Config: Clone + fmt::Debug;

    /// Validates the table; relative paths resolve against `base`, the config file's folder.
    fn validate(raw: Self::Raw, base: &Path) -> Result<Self::Config, Invalid>;

    /// The table's keys as `config check` prints them.
    fn effective(config: &Self::Config, keys: &mut Keys<'_>);

    /// The session store `session` describes (its own table is one of `session`'s fields).
    /// Connections to an engine are made when first needed.
    fn open(session: &SessionConfig) -> Result<Store, StoreError>;

    /// How often the store's sweeper deletes expired sessions; `None`: no sweeper (the engine
    /// expires them by itself, or keeps nothing on the server).
    fn sweep_every(session: &SessionConfig) -> Option<std::time::Duration> {
        let _ = session;
        None
    }

    /// Where the session whose id hashes to `stem` lives.
    fn place(session: &SessionConfig, stem: &str) -> Place;

    /// The files this engine keeps that no static folder may serve, with what they are.
    fn private_paths(session: &SessionConfig) -> Vec<(&'static str, PathBuf)> {
        let _ = session;
        Vec::new()
    }

    /// What the processes of a deployment share besides sessions, where this engine keeps it.
    fn shared(config: &Config) -> Result<Shared, EngineError>;

    /// The accounts in this engine, on their own connections; `None` unless
    /// [`Self::HOLDS_ACCOUNTS`].
    fn accounts(config: &Config) -> Result<Option<UserDb>, EngineError> {
        let _ = config;
        Ok(None)
    }
}

/// What an engine keeps of the state the processes of one deployment share.
pub struct Shared {
    /// The login throttle's counters; `None`: in the accounts' SQLite file.
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

/// An engine's own failure (a connection, a command, a timeout) as the concerns that do not
/// know engines by name carry it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EngineError(Box<dyn std::error::Error + Send + Sync>);

impl EngineError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(e.into())
    }
}

/// `From` an engine's error type into [`EngineError`] and into each concern's error, so that
/// `?` works in the engine's implementations of the concerns.
macro_rules! engine_errors {
    ($error:ty) => {
        impl From<$error> for $crate::engines::EngineError {
            fn from(e: $error) -> Self {
                Self::new(e)
            }
        }
        impl From<$error> for $crate::users::UserError {
            fn from(e: $error) -> Self {
                Self::Engine($crate::engines::EngineError::new(e))
            }
        }
        impl From<$error> for $crate::web::throttle::ThrottleError {
            fn from(e: $error) -> Self {
                Self::Engine($crate::engines::EngineError::new(e))
            }
        }
    };
}

impl From<crate::users::UserError> for EngineError {
    fn from(e: crate::users::UserError) -> Self {
        Self::new(e)
    }
}

impl From<crate::web::throttle::ThrottleError> for EngineError {
    fn from(e: crate::web::throttle::ThrottleError) -> Self {
        Self::new(e)
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        Self::new(e)
    }
}

macro_rules! registry {
    ($($module:ident $Type:ident,)*) => {
        $(pub mod $module;)*

        /// Where sessions are kept: `[session] type` (Flask's `SESSION_TYPE`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum StoreType {
            $($Type,)*
        }

        impl StoreType {
            /// Every type this build runs, in the registry's order.
            pub const ALL: &'static [Self] = &[$(Self::$Type,)*];

            /// The value of `type` that selects this store.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$Type => <$module::Kind as Engine>::NAME,)*
                }
            }

            pub fn capabilities(self) -> Capabilities {
                match self {
                    $(Self::$Type => <$module::Kind as Engine>::CAPABILITIES,)*
                }
            }

            /// Whether `[auth] users` may name this engine.
            pub fn holds_accounts(self) -> bool {
                match self {
                    $(Self::$Type => <$module::Kind as Engine>::HOLDS_ACCOUNTS,)*
                }
            }
        }

        /// The keys `[session.<name>]` takes, if `name` is an engine's.
        pub(crate) fn table_keys(name: &str) -> Option<&'static [&'static str]> {
            use serde_aux::serde_introspection::serde_introspect;
            $(
                if name == <$module::Kind as Engine>::NAME {
                    return Some(serde_introspect::<<$module::Kind as Engine>::Raw>());
                }
            )*
            None
        }

        /// Opens the store `session` names. Connections to an engine are made when first
        /// needed (and made again after a failure), so that a server whose engine is down
        /// starts, answers 503 for sessions, and recovers by itself.
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

        /// The chosen engine's table, as `config check` prints it.
        pub(crate) fn effective(session: &SessionConfig, out: &mut Vec<Entry>) {
            match session.store {
                $(StoreType::$Type => <$module::Kind as Engine>::effective(
                    &session.$module,
                    &mut Keys::new(out, concat!("session.", stringify!($module))),
                ),)*
            }
        }

        /// The chosen engine's files that no static folder may serve.
        pub(crate) fn private_paths(session: &SessionConfig) -> Vec<(&'static str, PathBuf)> {
            match session.store {
                $(StoreType::$Type => <$module::Kind as Engine>::private_paths(session),)*
            }
        }

        fn shared_of(config: &Config) -> Result<Shared, EngineError> {
            match config.session.store {
                $(StoreType::$Type => <$module::Kind as Engine>::shared(config),)*
            }
        }

        fn accounts_of(config: &Config) -> Result<Option<UserDb>, EngineError> {
            match config.auth.users {
                $(StoreType::$Type => <$module::Kind as Engine>::accounts(config),)*
            }
        }
    };
}

for_each_engine!(registry);

impl fmt::Display for StoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl StoreType {
    /// `type` when it is not written: Flask-Session's `filesystem`.
    pub const DEFAULT: Self = Self::Filesystem;

    /// Whether `[auth] users = <this>` means the SQLite file `[auth] users_db`.
    pub fn keeps_accounts_in_users_db(self) -> bool {
        self == LOCAL_ACCOUNTS
    }

    /// Where accounts are kept when `[auth] users` is not written: the session engine's own
    /// when it can hold them, so that changing `type` alone makes a deployment shareable.
    pub fn accounts_following(self) -> Self {
        if self.holds_accounts() {
            self
        } else {
            LOCAL_ACCOUNTS
        }
    }
}

/// `allowed: "filesystem", "memory", ...` for the types `keep` lets through.
fn allowed(keep: fn(StoreType) -> bool) -> String {
    let names: Vec<String> = StoreType::ALL
        .iter()
        .filter(|t| keep(**t))
        .map(|t| format!("\"{}\"", t.name()))
        .collect();
    format!("allowed: {}", names.join(", "))
}

/// The message for a `type` this build does not run.
fn refusal(written: &str) -> String {
    let all = allowed(|_| true);
    if let Some((_, which)) = NAMED_OTHERWISE.iter().find(|(name, _)| *name == written) {
        format!("store type `{written}`: {which}; {all}")
    } else if let Some((_, why)) = CANNOT_RUN.iter().find(|(name, _)| *name == written) {
        format!("store type `{written}` cannot run here: {why}; {all}")
    } else {
        format!("unknown store type; {all}")
    }
}

impl<'de> Deserialize<'de> for StoreType {
    /// A name from [`StoreType::ALL`], or an error naming what is allowed.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = String::deserialize(d)?;
        StoreType::ALL
            .iter()
            .copied()
            .find(|t| t.name() == written)
            .ok_or_else(|| de::Error::custom(refusal(&written)))
    }
}

/// `[auth] users`: an engine that holds accounts.
pub(crate) fn accounts_engine<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<StoreType>, D::Error> {
    let written = String::deserialize(d)?;
    StoreType::ALL
        .iter()
        .copied()
        .find(|t| t.holds_accounts() && t.name() == written)
        .map(Some)
        .ok_or_else(|| {
            let names: Vec<String> = StoreType::ALL
                .iter()
                .filter(|t| t.holds_accounts())
                .map(|t| format!("`{}`", t.name()))
                .collect();
            de::Error::custom(format!(
                "unknown variant `{written}`, expected one of {}",
                names.join(", ")
            ))
        })
}

/// Opens what the processes of a deployment share besides sessions: the accounts, the login
/// counters and the cross-process session locks, where the session engine keeps them (else in
/// the accounts' SQLite file). Nothing connects to an engine yet.
pub fn open_shared(config: &Config) -> Result<SharedState, EngineError> {
    let shared = shared_of(config)?;
    let users = match shared.users {
        Some(users) => users,
        None => open_accounts(config)?,
    };
    let counters = match shared.counters {
        Some(counters) => counters,
        None => Box::new(sqlite::SqliteCounters::open(&config.auth.users_db)?),
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

/// A `[session.<name>]` table an engine does not have: any value there is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTable;

impl<'de> Deserialize<'de> for NoTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _ = serde::de::IgnoredAny::deserialize(d)?;
        Err(de::Error::custom(
            "this session type has no table of its own (its cookie's keys are [session]'s cookie_*)",
        ))
    }
}

#[cfg(test)]
mod tests;
