//! `[session.sqlite]`: the one database file the `sqlite` type keeps sessions in, how long a
//! writer waits for another process's write, and how often expired rows are deleted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
