//! `[session] type` (Flask's `SESSION_TYPE`): the engines this build runs, and what the error
//! says about Flask-Session's other types. Adding a type is a variant here with its name, and its
//! own table file beside this one.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Where sessions are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreType {
    /// One JSON file per session under `[session.filesystem] dir`.
    Filesystem,
    /// In this process only: for development and as a speed baseline.
    Memory,
    /// A Redis server or Redis Cluster, `[session.redis]`.
    Redis,
    /// One SQLite database file, `[session.sqlite]`.
    Sqlite,
    /// A PostgreSQL database, `[session.postgres]` (Flask-Session's `sqlalchemy`).
    Postgres,
    /// memcached servers, `[session.memcached]`.
    Memcached,
    /// In the cookie itself, encrypted (Flask's default session).
    Cookie,
}

impl StoreType {
    /// Every type this build runs, in the order errors and docs list them: the one list.
    pub const ALL: &'static [Self] = &[
        Self::Filesystem,
        Self::Memory,
        Self::Redis,
        Self::Sqlite,
        Self::Postgres,
        Self::Memcached,
        Self::Cookie,
    ];

    /// The value of `type` that selects this store.
    pub fn name(self) -> &'static str {
        match self {
            Self::Filesystem => "filesystem",
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Memcached => "memcached",
            Self::Cookie => "cookie",
        }
    }
}

impl fmt::Display for StoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Flask-Session's types that this build runs under another name, by engine.
const NAMED_BY_ENGINE: &[(&str, &str)] = &[(
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

/// `; allowed: "filesystem", "memory", ...`, from [`StoreType::ALL`].
fn allowed() -> String {
    let names: Vec<String> = StoreType::ALL
        .iter()
        .map(|t| format!("\"{}\"", t.name()))
        .collect();
    format!("allowed: {}", names.join(", "))
}

/// The message for a `type` this build does not run.
fn refusal(written: &str) -> String {
    if let Some((_, which)) = NAMED_BY_ENGINE.iter().find(|(name, _)| *name == written) {
        format!("store type `{written}`: {which}; {}", allowed())
    } else if let Some((_, why)) = CANNOT_RUN.iter().find(|(name, _)| *name == written) {
        format!(
            "store type `{written}` cannot run here: {why}; {}",
            allowed()
        )
    } else {
        format!("unknown store type; {}", allowed())
    }
}

/// Reads `type`: a name from [`StoreType::ALL`], or an error naming what is allowed.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StoreType, D::Error> {
    let written = String::deserialize(d)?;
    StoreType::ALL
        .iter()
        .copied()
        .find(|t| t.name() == written)
        .ok_or_else(|| de::Error::custom(refusal(&written)))
}
