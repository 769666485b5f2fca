//! The registry's list: every engine this build runs, one line each, and the type enum derived
//! from it ([`StoreType`]: `[session] type`, `[auth] users`). The list is a macro,
//! [`for_each_engine!`], so that the configuration (`crate::config`), the registry
//! (`super`) and anyone else can derive their per-engine code from the one list. What the list
//! knows of each engine comes from its configuration module (`<engine>/config.rs`): its
//! capabilities and whether it holds accounts.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::store::backend::Capabilities;

/// Every engine this build runs, one line each (its folder's name, its variant), in the order
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
pub(crate) const LOCAL_ACCOUNTS: StoreType = StoreType::Sqlite;

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

macro_rules! store_type {
    ($($module:ident $Type:ident,)*) => {
        /// Where sessions are kept: `[session] type` (Flask's `SESSION_TYPE`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum StoreType {
            $($Type,)*
        }

        impl StoreType {
            /// Every type this build runs, in the list's order.
            pub const ALL: &'static [Self] = &[$(Self::$Type,)*];

            /// The value of `type` that selects this store: its folder's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$Type => stringify!($module),)*
                }
            }

            /// What the engine's sessions can do.
            pub fn capabilities(self) -> Capabilities {
                match self {
                    $(Self::$Type => super::$module::config::CAPABILITIES,)*
                }
            }

            /// Whether `[auth] users` may name this engine: accounts kept in it, shared by
            /// every server using it.
            pub fn holds_accounts(self) -> bool {
                match self {
                    $(Self::$Type => super::$module::config::HOLDS_ACCOUNTS,)*
                }
            }
        }
    };
}

for_each_engine!(store_type);

macro_rules! config_modules {
    ($($module:ident $Type:ident,)*) => {
        /// Each engine's configuration module (`<engine>/config.rs`) under the engine's name:
        /// what the configuration's code derived from the list reaches, so that it depends on
        /// the engines' tables and never on their stores.
        pub mod configs {
            $(pub use super::super::$module::config as $module;)*
        }
    };
}

for_each_engine!(config_modules);

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

impl fmt::Display for StoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `"filesystem", "memory", ...`: the names of the types `keep` lets through, as `quote` marks
/// each.
fn names(keep: fn(StoreType) -> bool, quote: fn(&str) -> String) -> String {
    StoreType::ALL
        .iter()
        .filter(|t| keep(**t))
        .map(|t| quote(t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The message for a `type` this build does not run.
fn refusal(written: &str) -> String {
    let all = format!("allowed: {}", names(|_| true, |n| format!("\"{n}\"")));
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
            de::Error::custom(format!(
                "unknown variant `{written}`, expected one of {}",
                names(StoreType::holds_accounts, |n| format!("`{n}`"))
            ))
        })
}
