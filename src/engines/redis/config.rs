//! `[session.redis]`: which Redis (one server, the nodes of a Redis Cluster, or the primary the
//! Sentinels name), TLS to it, the prefix of its keys, the connections per server process, their
//! timeouts, and how many replicas must have a write before it is acknowledged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::shown::{list, path, s, secs, url, Keys};
use crate::store::backend::Capabilities;

pub use super::config_check::TlsFiles;
use super::config_check::{check_tls, check_url, shown, url_scheme, Mode};
use crate::config::check::{key_prefix, pool_size, resolve, Invalid, Positive};
use crate::config::duration::Timeout;

/// Validated `[session.redis]`. The URLs parse with the `redis` crate. Its `Debug` hides the
/// URLs' passwords, so that a logged config does not leak them.
#[derive(Clone)]
pub struct RedisConfig {
    /// One Redis server: `redis://`, `rediss://` (TLS) or `unix://` (also `redis+unix://`).
    /// Unused in cluster mode; with Sentinels, only its password, database and scheme (TLS)
    /// count, for the primary they name.
    pub url: String,
    /// The nodes of a Redis Cluster (`redis://`); non-empty means cluster mode.
    pub cluster_urls: Vec<String>,
    /// Put before every key (Flask-Session's `SESSION_KEY_PREFIX`); printable ASCII, no spaces.
    pub key_prefix: String,
    /// Multiplexed connections per worker thread (a process holds `workers` x this); the
    /// blocking pool for accounts, throttle and locks has as many.
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Certificates for `rediss://`: the CA that signed the server's (else the system's roots),
    /// and the client's own for mutual TLS.
    pub tls: TlsFiles,
    /// The Sentinels that name the primary; `None` for a fixed server or a cluster.
    pub sentinel: Option<SentinelConfig>,
    /// Replicas that must hold a session write before it is acknowledged (`WAIT`); 0: the
    /// primary's word is enough (Redis's asynchronous replication may then lose the last writes
    /// in a failover).
    pub wait_replicas: u32,
}

/// `sentinel_urls`, `sentinel_master`, `sentinel_password`. Its `Debug` hides the passwords.
#[derive(Clone)]
pub struct SentinelConfig {
    /// `redis://` or `rediss://` of each Sentinel.
    pub urls: Vec<String>,
    /// The name the Sentinels monitor the primary under.
    pub master: String,
    /// The Sentinels' own password (`requirepass` in sentinel.conf), if any.
    pub password: Option<String>,
}

impl fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| shown(u)).collect();
        f.debug_struct("SentinelConfig")
            .field("urls", &format_args!("[{}]", urls.join(", ")))
            .field("master", &self.master)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl RedisConfig {
    /// Whether sessions go to a Redis Cluster (`cluster_urls`) rather than one server (`url`).
    pub fn is_cluster(&self) -> bool {
        !self.cluster_urls.is_empty()
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cluster_urls: Vec<String> = self.cluster_urls.iter().map(|u| shown(u)).collect();
        f.debug_struct("RedisConfig")
            .field("url", &format_args!("{}", shown(&self.url)))
            .field(
                "cluster_urls",
                &format_args!("[{}]", cluster_urls.join(", ")),
            )
            .field("key_prefix", &self.key_prefix)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("tls", &self.tls)
            .field(
                "sentinel",
                &self.sentinel.as_ref().map(|s| {
                    let urls: Vec<String> = s.urls.iter().map(|u| shown(u)).collect();
                    format!("{} via [{}]", s.master, urls.join(", "))
                }),
            )
            .field("wait_replicas", &self.wait_replicas)
            .finish()
    }
}

const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// `[session.redis]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub struct RawRedis {
    url: String,
    cluster_urls: Vec<String>,
    key_prefix: String,
    pool_size: Positive,
    connect_timeout: Timeout,
    command_timeout: Timeout,
    tls_ca_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    sentinel_urls: Vec<String>,
    sentinel_master: String,
    sentinel_password: Option<String>,
    wait_replicas: u32,
}

impl Default for RawRedis {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.into(),
            cluster_urls: Vec::new(),
            key_prefix: "session:".into(),
            pool_size: Positive(4),
            connect_timeout: Timeout(Duration::from_secs(2)),
            command_timeout: Timeout(Duration::from_secs(1)),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            sentinel_urls: Vec::new(),
            sentinel_master: "mymaster".into(),
            sentinel_password: None,
            wait_replicas: 0,
        }
    }
}

impl RawRedis {
    pub(crate) fn validate(self, base: &Path) -> Result<RedisConfig, Invalid> {
        check_url("session.redis.url", &self.url, Mode::Single)?;
        // Compared by value: the default written out, as the shipped config.toml has it, is
        // still "left alone" when cluster_urls is set.
        if !self.cluster_urls.is_empty() && self.url != DEFAULT_URL {
            return Err(Invalid::new(
                "session.redis.url",
                shown(&self.url),
                "set either url (one Redis server) or cluster_urls (a Redis Cluster), not both",
            ));
        }
        for url in &self.cluster_urls {
            check_url("session.redis.cluster_urls", url, Mode::Cluster)?;
        }
        for url in &self.sentinel_urls {
            check_url("session.redis.sentinel_urls", url, Mode::Sentinel)?;
        }
        let schemes: Vec<Option<&str>> = self.sentinel_urls.iter().map(|u| url_scheme(u)).collect();
        if schemes.windows(2).any(|w| w[0] != w[1]) {
            return Err(Invalid::new(
                "session.redis.sentinel_urls",
                list(&self.sentinel_urls, shown),
                "all redis:// or all rediss://: the Sentinels are reached one way",
            ));
        }
        if !self.sentinel_urls.is_empty() {
            if !self.cluster_urls.is_empty() {
                return Err(Invalid::new(
                    "session.redis.sentinel_urls",
                    list(&self.sentinel_urls, shown),
                    "set either sentinel_urls (a primary the Sentinels name) or cluster_urls \
                     (a Redis Cluster), not both",
                ));
            }
            if url_scheme(&self.url).is_some_and(|s| s != "redis" && s != "rediss") {
                return Err(Invalid::new(
                    "session.redis.url",
                    shown(&self.url),
                    "with sentinel_urls, url gives the primary's password, database and TLS \
                     (redis:// or rediss://); the Sentinels give its address",
                ));
            }
        }
        if self.sentinel_master.is_empty() || self.sentinel_master.contains(char::is_whitespace)
        {
            return Err(Invalid::new(
                "session.redis.sentinel_master",
                format!("{:?}", self.sentinel_master),
                "expected the name the Sentinels monitor, such as \"mymaster\"",
            ));
        }
        if self.wait_replicas > 0 && !self.cluster_urls.is_empty() {
            return Err(Invalid::new(
                "session.redis.wait_replicas",
                self.wait_replicas.to_string(),
                "WAIT is for one primary (url or sentinel_urls); a Redis Cluster's writes go \
                 to many: leave it at 0",
            ));
        }
        let tls = TlsFiles {
            ca: self.tls_ca_file.map(|p| resolve(base, p)),
            cert: self.tls_cert_file.map(|p| resolve(base, p)),
            key: self.tls_key_file.map(|p| resolve(base, p)),
        };
        check_tls(&tls, &self.url, &self.cluster_urls, &self.sentinel_urls)?;
        key_prefix("session.redis.key_prefix", &self.key_prefix)?;
        let pool_size = pool_size("session.redis.pool_size", self.pool_size)?;
        let sentinel = (!self.sentinel_urls.is_empty()).then_some(SentinelConfig {
            urls: self.sentinel_urls,
            master: self.sentinel_master,
            password: self.sentinel_password,
        });
        Ok(RedisConfig {
            url: self.url,
            cluster_urls: self.cluster_urls,
            key_prefix: self.key_prefix,
            pool_size,
            connect_timeout: self.connect_timeout.0,
            command_timeout: self.command_timeout.0,
            tls,
            sentinel,
            wait_replicas: self.wait_replicas,
        })
    }
}

/// What the registry knows of the engine: its sessions' capabilities.
pub const CAPABILITIES: Capabilities = Capabilities {
    server_side: true,
    shared: true,
    can_list: true,
    expires_by_itself: true,
    our_clock: false,
};
/// Accounts may be kept in Redis (`[auth] users = "redis"`).
pub const HOLDS_ACCOUNTS: bool = true;

/// `[session.redis]` as written and validated, for the registry.
pub type Raw = RawRedis;
pub type Table = RedisConfig;

pub fn validate(raw: RawRedis, base: &Path) -> Result<RedisConfig, Invalid> {
    raw.validate(base)
}

/// The table's keys as `config check` prints them.
pub fn effective(r: &RedisConfig, keys: &mut Keys<'_>) {
    keys.add("url", url(&r.url), Some("SESSION_REDIS"));
    keys.add("cluster_urls", list(&r.cluster_urls, url), None);
    keys.add("key_prefix", s(&r.key_prefix), Some("SESSION_KEY_PREFIX"));
    keys.add("pool_size", r.pool_size.to_string(), None);
    keys.add("connect_timeout", secs(r.connect_timeout), None);
    keys.add("command_timeout", secs(r.command_timeout), None);
    let file = |p: &Option<PathBuf>| p.as_deref().map_or("(unset)".into(), path);
    keys.add("tls_ca_file", file(&r.tls.ca), None);
    keys.add("tls_cert_file", file(&r.tls.cert), None);
    keys.add("tls_key_file", file(&r.tls.key), None);
    let (urls, master, password) = match &r.sentinel {
        Some(s) => (
            s.urls.clone(),
            s.master.clone(),
            s.password.as_ref().map_or("(unset)", |_| "\"***\""),
        ),
        None => (Vec::new(), "mymaster".into(), "(unset)"),
    };
    keys.add("sentinel_urls", list(&urls, url), None);
    keys.add("sentinel_master", s(&master), None);
    keys.add("sentinel_password", password.into(), None);
    keys.add("wait_replicas", r.wait_replicas.to_string(), None);
}

/// The client's private key, if there is one: never to be served.
pub fn private_paths(r: &RedisConfig) -> Vec<(&'static str, PathBuf)> {
    r.tls
        .key
        .iter()
        .map(|p| ("the Redis TLS client key", p.clone()))
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
