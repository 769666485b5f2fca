//! `[session.postgres]`: which PostgreSQL database (a libpq URL), the sessions table's name, the
//! connections per server process and their timeouts.

use std::fmt;
use std::str::FromStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::shown::{s, secs, url, Keys};
use crate::store::backend::Capabilities;

use crate::config::shown::url as shown;

use crate::config::check::{pool_size, Invalid, Positive};
use crate::config::duration::{Seconds, Timeout, MAX_CLEANUP_INTERVAL};

/// Validated `[session.postgres]`. Its `Debug` hides the URL's password.
#[derive(Clone)]
pub struct PostgresConfig {
    /// A libpq connection URL: `postgresql://user:password@host:port/db`, or with a unix-socket
    /// folder as host: `postgresql:///db?host=/var/run/postgresql`.
    pub url: String,
    /// The sessions table (Flask-Session's `SESSION_SQLALCHEMY_TABLE`); the accounts, throttle
    /// and lock tables are named after it.
    pub table: String,
    /// Connections per server process.
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// How often expired rows are deleted.
    pub cleanup_interval: Duration,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &format_args!("{}", shown(&self.url)))
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("cleanup_interval", &self.cleanup_interval)
            .finish()
    }
}

const MAX_TABLE: usize = 48;

/// `[session.postgres]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub struct RawPostgres {
    url: String,
    table: String,
    pool_size: Positive,
    connect_timeout: Timeout,
    command_timeout: Timeout,
    cleanup_interval: Seconds<MAX_CLEANUP_INTERVAL>,
}

impl Default for RawPostgres {
    fn default() -> Self {
        Self {
            url: "postgresql://session@127.0.0.1:5432/sessions".into(),
            table: "sessions".into(),
            pool_size: Positive(8),
            connect_timeout: Timeout(Duration::from_secs(2)),
            command_timeout: Timeout(Duration::from_secs(2)),
            cleanup_interval: Seconds(Duration::from_secs(60)),
        }
    }
}

impl RawPostgres {
    pub(crate) fn validate(self) -> Result<PostgresConfig, Invalid> {
        let wrong = || {
            Invalid::new(
                "session.postgres.url",
                shown(&self.url),
                "expected postgresql://[user[:password]@]host[:port]/database[?sslmode=...], or \
                 postgresql:///database?host=/path/to/socket/folder",
            )
        };
        if !self.url.starts_with("postgresql://") && !self.url.starts_with("postgres://") {
            return Err(wrong());
        }
        let (driver_url, tls) = super::tls::split(&self.url).map_err(|e| match e {
            super::tls::PgTlsError::Url(problem) => {
                Invalid::new("session.postgres.url", shown(&self.url), problem)
            }
            _ => wrong(),
        })?;
        if tokio_postgres::Config::from_str(&driver_url).is_err() {
            return Err(wrong());
        }
        if let Err(e) = super::tls::check_files(&tls) {
            return Err(Invalid::new(
                "session.postgres.url",
                shown(&self.url),
                e.to_string(),
            ));
        }
        let t = &self.table;
        let first_ok = t
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        if !first_ok
            || t.len() > MAX_TABLE
            || !t
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Invalid::new(
                "session.postgres.table",
                format!("{t:?}"),
                format!(
                    "expected 1 to {MAX_TABLE} lower-case letters, digits or '_', not starting \
                     with a digit, such as \"sessions\""
                ),
            ));
        }
        let pool_size = pool_size("session.postgres.pool_size", self.pool_size)?;
        Ok(PostgresConfig {
            url: self.url,
            table: self.table,
            pool_size,
            connect_timeout: self.connect_timeout.0,
            command_timeout: self.command_timeout.0,
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
    our_clock: false,
};
/// Accounts may be kept in PostgreSQL (`<table>_users`).
pub const HOLDS_ACCOUNTS: bool = true;

/// `[session.postgres]` as written and validated, for the registry.
pub type Raw = RawPostgres;
pub type Table = PostgresConfig;

pub fn validate(raw: RawPostgres, _: &Path) -> Result<PostgresConfig, Invalid> {
    raw.validate()
}

/// The table's keys as `config check` prints them.
pub fn effective(p: &PostgresConfig, keys: &mut Keys<'_>) {
    keys.add("url", url(&p.url), Some("SQLALCHEMY_DATABASE_URI"));
    keys.add("table", s(&p.table), Some("SESSION_SQLALCHEMY_TABLE"));
    keys.add("pool_size", p.pool_size.to_string(), None);
    keys.add("connect_timeout", secs(p.connect_timeout), None);
    keys.add("command_timeout", secs(p.command_timeout), None);
    keys.add(
        "cleanup_interval",
        secs(p.cleanup_interval),
        Some("SESSION_CLEANUP_N_REQUESTS"),
    );
}

/// Nothing of this engine is a file of the server's.
pub fn private_paths(_: &PostgresConfig) -> Vec<(&'static str, PathBuf)> {
    Vec::new()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
