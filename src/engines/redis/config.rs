//! `[session.redis]`: which Redis (one server, or the nodes of a Redis Cluster), the prefix of
//! its keys, the connections per server process and their timeouts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::redis::IntoConnectionInfo;
use serde::Deserialize;

use crate::config::shown::{list, s, secs, url, Keys};
use crate::store::backend::Capabilities;

use crate::config::check::{key_prefix, pool_size, Invalid, Positive};
use crate::config::duration::Timeout;

/// Validated `[session.redis]`. The URLs parse with the `redis` crate; `rediss://` is refused
/// with its own message (this build has none of the crate's TLS features). Its `Debug` hides the
/// URLs' passwords, so that a logged config does not leak them.
#[derive(Clone)]
pub struct RedisConfig {
    /// One Redis server: `redis://` or `unix://` (also `redis+unix://`).
    /// Unused in cluster mode.
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
        }
    }
}

impl RawRedis {
    pub(crate) fn validate(self) -> Result<RedisConfig, Invalid> {
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
        key_prefix("session.redis.key_prefix", &self.key_prefix)?;
        let pool_size = pool_size("session.redis.pool_size", self.pool_size)?;
        Ok(RedisConfig {
            url: self.url,
            cluster_urls: self.cluster_urls,
            key_prefix: self.key_prefix,
            pool_size,
            connect_timeout: self.connect_timeout.0,
            command_timeout: self.command_timeout.0,
        })
    }
}

/// Which URLs a key takes: a cluster's nodes are reached over TCP only, in database 0.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Single,
    Cluster,
}

impl Mode {
    fn schemes(self) -> &'static [&'static str] {
        match self {
            Self::Single => &["redis", "unix", "redis+unix"],
            Self::Cluster => &["redis"],
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            Self::Single => {
                "expected redis://[user:password@]host[:port][/db] or \
                 unix:///path/to/redis.sock[?db=N] (also redis+unix://)"
            }
            Self::Cluster => {
                "expected redis://[user:password@]host[:port] for each cluster node (a unix \
                 socket cannot reach a cluster)"
            }
        }
    }
}

/// Checks that `url` is a Redis URL `mode` accepts, as the `redis` crate will read it.
fn check_url(key: &'static str, url: &str, mode: Mode) -> Result<(), Invalid> {
    let wrong = |allowed: &str| Invalid::new(key, shown(url), allowed);
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if scheme == Some("rediss") {
        return Err(wrong(
            "TLS (rediss://) is not available in this build: use redis:// on a trusted network, \
             or a unix:// socket on the same machine",
        ));
    }
    if !scheme.is_some_and(|s| mode.schemes().contains(&s)) {
        return Err(wrong(mode.allowed()));
    }
    let parsed = redis::parse_redis_url(url).ok_or_else(|| wrong(mode.allowed()))?;
    let info = parsed
        .into_connection_info()
        .map_err(|_| wrong(mode.allowed()))?;
    if mode == Mode::Cluster && info.redis_settings().db() != 0 {
        return Err(wrong(
            "Redis Cluster has database 0 only: leave the /db out",
        ));
    }
    Ok(())
}

/// `url` as an error may show it: quoted, with any password (`user:password@` or `?pass=`)
/// replaced by `***`.
fn shown(url: &str) -> String {
    let Some(mut parsed) = redis::parse_redis_url(url) else {
        // Not parsable: whatever stands between `://` and the last `@` may be a password.
        return match url.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') => {
                let host = rest.rsplit_once('@').map_or("", |(_, host)| host);
                format!("{:?}", format!("{scheme}://***@{host}"))
            }
            _ => format!("{url:?}"),
        };
    };
    let in_userinfo = parsed.password().is_some();
    let in_query = parsed.query_pairs().any(|(k, _)| k == "pass");
    if !in_userinfo && !in_query {
        return format!("{url:?}");
    }
    if in_userinfo && parsed.set_password(Some("***")).is_err() {
        return "(a URL with a password)".to_owned();
    }
    if in_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "pass" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    format!("{:?}", parsed.as_str())
}

/// What the registry knows of the engine: its sessions' capabilities.
pub const CAPABILITIES: Capabilities = Capabilities {
    server_side: true,
    shared: true,
    can_list: true,
    expires_by_itself: true,
};
/// Accounts may be kept in Redis (`[auth] users = "redis"`).
pub const HOLDS_ACCOUNTS: bool = true;

/// `[session.redis]` as written and validated, for the registry.
pub type Raw = RawRedis;
pub type Table = RedisConfig;

pub fn validate(raw: RawRedis, _: &Path) -> Result<RedisConfig, Invalid> {
    raw.validate()
}

/// The table's keys as `config check` prints them.
pub fn effective(r: &RedisConfig, keys: &mut Keys<'_>) {
    keys.add("url", url(&r.url), Some("SESSION_REDIS"));
    keys.add("cluster_urls", list(&r.cluster_urls, url), None);
    keys.add("key_prefix", s(&r.key_prefix), Some("SESSION_KEY_PREFIX"));
    keys.add("pool_size", r.pool_size.to_string(), None);
    keys.add("connect_timeout", secs(r.connect_timeout), None);
    keys.add("command_timeout", secs(r.command_timeout), None);
}

/// Nothing of Redis's is a file of this machine.
pub fn private_paths(_: &RedisConfig) -> Vec<(&'static str, PathBuf)> {
    Vec::new()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
