//! `[session.sqlite]`: the one database file the `sqlite` type keeps sessions in, how long a
//! writer waits for another process's write, and how often expired rows are deleted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::shown::{path, secs, Keys};
use crate::store::backend::Capabilities;

use crate::config::check::{resolve, Invalid};
use crate::config::duration::{Seconds, Timeout, MAX_CLEANUP_INTERVAL};

/// Validated `[session.sqlite]`.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file (relative paths are relative to the config file).
    pub path: PathBuf,
    /// How long a statement waits for another connection's write lock before it fails.
    pub busy_timeout: Duration,
    /// How often expired rows are deleted.
    pub cleanup_interval: Duration,
}

/// `[session.sqlite]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub struct RawSqlite {
    path: PathBuf,
    busy_timeout: Timeout,
    cleanup_interval: Seconds<MAX_CLEANUP_INTERVAL>,
}

impl Default for RawSqlite {
    fn default() -> Self {
        Self {
            path: "sessions.db".into(),
            busy_timeout: Timeout(Duration::from_secs(5)),
            cleanup_interval: Seconds(Duration::from_secs(60)),
        }
    }
}

impl RawSqlite {
    pub(crate) fn validate(self, base: &Path) -> Result<SqliteConfig, Invalid> {
        if self.path.as_os_str().is_empty() {
            return Err(Invalid::new(
                "session.sqlite.path",
                "\"\"",
                "expected a file name such as \"sessions.db\"",
            ));
        }
        Ok(SqliteConfig {
            path: resolve(base, self.path),
            busy_timeout: self.busy_timeout.0,
            cleanup_interval: self.cleanup_interval.0,
        })
    }
}

/// What the registry knows of the engine: its sessions' capabilities.
pub const CAPABILITIES: Capabilities = Capabilities {
    server_side: true,
    shared: true,
    can_list: true,
    expires_by_itself: false,
    our_clock: true,
};
/// Accounts may be kept in a SQLite file (`[auth] users_db`).
pub const HOLDS_ACCOUNTS: bool = true;

/// `[session.sqlite]` as written and validated, for the registry.
pub type Raw = RawSqlite;
pub type Table = SqliteConfig;

pub fn validate(raw: RawSqlite, base: &Path) -> Result<SqliteConfig, Invalid> {
    raw.validate(base)
}

/// The table's keys as `config check` prints them.
pub fn effective(q: &SqliteConfig, keys: &mut Keys<'_>) {
    keys.add(
        "path",
        path(&q.path),
        Some("SQLALCHEMY_DATABASE_URI = \"sqlite:///...\""),
    );
    keys.add("busy_timeout", secs(q.busy_timeout), None);
    keys.add(
        "cleanup_interval",
        secs(q.cleanup_interval),
        Some("SESSION_CLEANUP_N_REQUESTS"),
    );
}

/// The files of this engine that no static folder may serve.
pub fn private_paths(table: &SqliteConfig) -> Vec<(&'static str, PathBuf)> {
    vec![("the session database", table.path.clone())]
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
