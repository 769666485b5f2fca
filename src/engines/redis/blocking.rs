//! Blocking connections to the Redis of `[session.redis]`, for the shared state that is read and
//! written on blocking threads beside bcrypt: user accounts, login throttling and
//! session locks. Sessions themselves use the async engine in `connection.rs`.
//!
//! One pool (r2d2) of connections to a single Redis, a Redis Cluster, or the primary the
//! Sentinels name; a connection is made when first needed and again after a failure, so that a
//! server started while Redis is down starts and recovers by itself, and one made after a
//! failover goes to the new primary.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Client, Connection, ConnectionLike, RedisError};

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisBlockingError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// A command's failure, with where it was sent.
    #[error("redis at {address}: {source}")]
    At {
        address: String,
        #[source]
        source: RedisError,
    },
    #[error("redis at {address}: no connection within {after:?}: {source}")]
    Pool {
        /// Where it was reached, password masked.
        address: String,
        after: Duration,
        #[source]
        source: r2d2::Error,
    },
}

/// Where to connect and how long to wait.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    /// `redis://`, `rediss://` or `unix://` URL of a single Redis; ignored when `cluster_urls`.
    pub url: String,
    /// Seed nodes of a Redis Cluster; empty for a single Redis.
    pub cluster_urls: Vec<String>,
    pub pool_size: u32,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Certificates for `rediss://` URLs.
    pub tls: super::config::TlsFiles,
    /// The Sentinels that name the primary.
    pub sentinel: Option<super::config::SentinelConfig>,
}

enum Pool {
    Single(r2d2::Pool<Client>),
    Cluster(r2d2::Pool<ClusterClient>),
    Sentinel(r2d2::Pool<super::reach::SentinelManager>),
}

/// A pool of blocking connections. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct RedisBlocking {
    pool: std::sync::Arc<Pool>,
    wait: Duration,
    command_timeout: Duration,
    /// Connections the pool may hold, all of which may have been closed by Redis at once.
    max_size: u32,
    /// Where the pool connects, password masked: for error lines.
    address: String,
}

impl RedisBlocking {
    /// Checks the URLs and builds the pool, without connecting.
    pub fn new(target: &RedisTarget) -> Result<Self, RedisBlockingError> {
        let address = target.address();
        let pool = if let Some(sentinel) = &target.sentinel {
            let manager = super::reach::SentinelManager::new(
                sentinel,
                &target.url,
                &target.tls,
                target.connect_timeout,
                target.command_timeout,
            )?;
            Pool::Sentinel(pool_builder(target, &address).build_unchecked(manager))
        } else if target.cluster_urls.is_empty() {
            let client = super::reach::client(&target.url, &target.tls)?;
            Pool::Single(pool_builder(target, &address).build_unchecked(client))
        } else {
            let client = super::reach::cluster(&target.cluster_urls, &target.tls)?
                .connection_timeout(target.connect_timeout)
                .response_timeout(target.command_timeout)
                .build()?;
            Pool::Cluster(pool_builder(target, &address).build_unchecked(client))
        };
        Ok(Self {
            pool: std::sync::Arc::new(pool),
            wait: target.connect_timeout,
            command_timeout: target.command_timeout,
            max_size: target.pool_size.max(1),
            address,
        })
    }

    /// Runs `work` on a pooled connection. A connection that broke is dropped by the pool (its
    /// `is_open` check), not reused. One that Redis closed while it sat idle (its `timeout`, a
    /// failover) fails its next command at once, through no fault of the engine: `work` is then
    /// tried again on another connection, as many times as the pool may hold dead ones, plus
    /// one on a new connection, while the command bound has not passed. A command that timed
    /// out is never tried again: an engine that stalls gets one `command_timeout`, not one per
    /// pooled connection. Everything sent here may run more than once that way: lookups, and
    /// scripts that check before they write.
    pub fn run<T>(
        &self,
        work: impl Fn(&mut dyn ConnectionLike) -> Result<T, RedisError>,
    ) -> Result<T, RedisBlockingError> {
        let started = std::time::Instant::now();
        let mut tries = self.max_size;
        loop {
            match self.run_once(&work) {
                Err(RedisBlockingError::Redis(e))
                    if tries > 0
                        && !e.is_timeout()
                        && (e.is_connection_dropped()
                            || e.is_io_error()
                            || e.code() == Some("READONLY"))
                        && started.elapsed() < self.command_timeout =>
                {
                    tries -= 1;
                }
                Err(RedisBlockingError::Redis(source)) => {
                    return Err(RedisBlockingError::At {
                        address: self.address.clone(),
                        source,
                    })
                }
                other => return other,
            }
        }
    }

    /// Whether this is a Redis Cluster (whose keys no single `SCAN` sees).
    pub fn is_cluster(&self) -> bool {
        matches!(&*self.pool, Pool::Cluster(_))
    }

    fn run_once<T>(
        &self,
        work: &impl Fn(&mut dyn ConnectionLike) -> Result<T, RedisError>,
    ) -> Result<T, RedisBlockingError> {
        let pool_error = |source| RedisBlockingError::Pool {
            address: self.address.clone(),
            after: self.wait,
            source,
        };
        match &*self.pool {
            Pool::Single(pool) => {
                let mut conn = pool.get_timeout(self.wait).map_err(pool_error)?;
                // r2d2 makes plain connections: bound each command here, as the cluster's are.
                conn.set_read_timeout(Some(self.command_timeout))?;
                conn.set_write_timeout(Some(self.command_timeout))?;
                Ok(work(&mut *conn as &mut Connection)?)
            }
            Pool::Cluster(pool) => {
                let mut conn = pool.get_timeout(self.wait).map_err(pool_error)?;
                Ok(work(&mut *conn as &mut ClusterConnection)?)
            }
            Pool::Sentinel(pool) => {
                let mut conn = pool.get_timeout(self.wait).map_err(pool_error)?;
                conn.set_read_timeout(Some(self.command_timeout))?;
                conn.set_write_timeout(Some(self.command_timeout))?;
                let done = work(&mut *conn as &mut Connection);
                if let Err(e) = &done {
                    if e.code() == Some("READONLY") {
                        // A primary demoted by a failover: closed, so that the pool drops it
                        // (r2d2 keeps a connection unless it reads as closed) and the next one
                        // goes to the primary the Sentinels name now.
                        let _ = redis::cmd("QUIT").query::<()>(&mut *conn);
                        let _ = redis::cmd("PING").query::<()>(&mut *conn);
                    }
                }
                Ok(done?)
            }
        }
    }
}

fn pool_builder<M: r2d2::ManageConnection>(target: &RedisTarget, address: &str) -> r2d2::Builder<M> {
    r2d2::Pool::builder()
        .max_size(target.pool_size.max(1))
        .min_idle(Some(0))
        .connection_timeout(target.connect_timeout)
        .test_on_check_out(false)
        .error_handler(Box::new(Unreachable {
            address: address.to_owned(),
        }))
}

/// r2d2's failed connects, told once per cause at warn with the engine's address and then
/// counted into the once-a-minute summary, instead of r2d2's own bare line at error for every
/// attempt (one a second while Redis is down).
#[derive(Debug)]
struct Unreachable {
    address: String,
}

impl<E: std::fmt::Display> r2d2::HandleError<E> for Unreachable {
    fn handle_error(&self, error: E) {
        crate::telemetry::engine_unreachable("redis", &self.address, &error);
    }
}

impl RedisTarget {
    /// Where the target is, as error lines name it: its URL (or its nodes' or Sentinels'
    /// URLs), passwords masked.
    pub fn address(&self) -> String {
        address_of(&self.url, &self.cluster_urls, self.sentinel.as_ref())
    }
}

impl From<&super::config::RedisConfig> for RedisTarget {
    fn from(c: &super::config::RedisConfig) -> Self {
        Self {
            url: c.url.clone(),
            cluster_urls: c.cluster_urls.clone(),
            pool_size: u32::try_from(c.pool_size).unwrap_or(u32::MAX),
            connect_timeout: c.connect_timeout,
            command_timeout: c.command_timeout,
            tls: c.tls.clone(),
            sentinel: c.sentinel.clone(),
        }
    }
}

/// URLs as error lines show them: passwords masked, comma-separated.
/// Where a Redis target is, as error lines name it: the Sentinels' URLs, the cluster's nodes, or
/// the one server's URL, passwords masked.
pub(super) fn address_of(
    url: &str,
    cluster_urls: &[String],
    sentinel: Option<&super::config::SentinelConfig>,
) -> String {
    let urls: Vec<&str> = match sentinel {
        Some(sentinel) => sentinel.urls.iter().map(String::as_str).collect(),
        None if cluster_urls.is_empty() => vec![url],
        None => cluster_urls.iter().map(String::as_str).collect(),
    };
    urls.iter()
        .map(|u| crate::config::shown::masked(u))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `text` with `SCAN MATCH`'s glob characters escaped.
pub(crate) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
