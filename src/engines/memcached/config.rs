//! `[session.memcached]`: which memcached servers (each key on one of them), the prefix of the
//! keys, the connections per server and process, and their timeouts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::shown::{list, s, secs, Keys};
use crate::store::backend::Capabilities;

use crate::config::check::{key_prefix, pool_size, Invalid, Positive};
use crate::config::duration::Timeout;

/// Validated `[session.memcached]`.
#[derive(Debug, Clone)]
pub struct MemcachedConfig {
    /// Each `host:port` or `unix:/path/to/socket`.
    pub servers: Vec<String>,
    /// Put before every key (Flask-Session's `SESSION_KEY_PREFIX`); printable ASCII, no spaces.
    pub key_prefix: String,
    /// Connections per server and server process.
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

impl MemcachedConfig {
    /// The servers as the client's addresses: `tcp://host:port` or `unix:///path`.
    pub fn addresses(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| match s.strip_prefix("unix:") {
                Some(path) => format!("unix://{path}"),
                None => format!("tcp://{s}"),
            })
            .collect()
    }
}

/// `[session.memcached]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub struct RawMemcached {
    servers: Vec<String>,
    key_prefix: String,
    pool_size: Positive,
    connect_timeout: Timeout,
    command_timeout: Timeout,
}

impl Default for RawMemcached {
    fn default() -> Self {
        Self {
            servers: vec!["127.0.0.1:11211".into()],
            key_prefix: "session:".into(),
            pool_size: Positive(8),
            connect_timeout: Timeout(Duration::from_secs(2)),
            command_timeout: Timeout(Duration::from_secs(1)),
        }
    }
}

fn server_ok(server: &str) -> bool {
    match server.strip_prefix("unix:") {
        Some(path) => path.starts_with('/') && !path.contains(char::is_whitespace),
        None => server.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains(['/', ' ', '@'])
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        }),
    }
}

impl RawMemcached {
    pub(crate) fn validate(self) -> Result<MemcachedConfig, Invalid> {
        if self.servers.is_empty() {
            return Err(Invalid::new(
                "session.memcached.servers",
                "[]",
                "expected at least one server, such as [\"127.0.0.1:11211\"]",
            ));
        }
        if let Some(bad) = self.servers.iter().find(|s| !server_ok(s)) {
            return Err(Invalid::new(
                "session.memcached.servers",
                format!("{bad:?}"),
                "expected \"host:port\" or \"unix:/path/to/memcached.sock\"",
            ));
        }
        key_prefix("session.memcached.key_prefix", &self.key_prefix)?;
        let pool_size = pool_size("session.memcached.pool_size", self.pool_size)?;
        Ok(MemcachedConfig {
            servers: self.servers,
            key_prefix: self.key_prefix,
            pool_size,
            connect_timeout: self.connect_timeout.0,
            command_timeout: self.command_timeout.0,
        })
    }
}

/// What the registry knows of the engine: its sessions' capabilities.
pub const CAPABILITIES: Capabilities = Capabilities {
    server_side: true,
    shared: true,
    can_list: false,
    expires_by_itself: true,
    our_clock: false,
};
/// memcached may evict: accounts are never kept there.
pub const HOLDS_ACCOUNTS: bool = false;

/// `[session.memcached]` as written and validated, for the registry.
pub type Raw = RawMemcached;
pub type Table = MemcachedConfig;

pub fn validate(raw: RawMemcached, _: &Path) -> Result<MemcachedConfig, Invalid> {
    raw.validate()
}

/// The table's keys as `config check` prints them.
pub fn effective(m: &MemcachedConfig, keys: &mut Keys<'_>) {
    keys.add("servers", list(&m.servers, s), Some("SESSION_MEMCACHED"));
    keys.add("key_prefix", s(&m.key_prefix), Some("SESSION_KEY_PREFIX"));
    keys.add("pool_size", m.pool_size.to_string(), None);
    keys.add("connect_timeout", secs(m.connect_timeout), None);
    keys.add("command_timeout", secs(m.command_timeout), None);
}

/// Nothing of this engine is a file of the server's.
pub fn private_paths(_: &MemcachedConfig) -> Vec<(&'static str, PathBuf)> {
    Vec::new()
}
