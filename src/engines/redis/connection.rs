//! [`RedisEngine`]: the async handle to one Redis or a Redis Cluster that the session store (and
//! anything else that keeps shared state in Redis from async code) sends its commands through.
//!
//! What it owns: where to connect, the connections themselves, and the two time bounds. Making
//! an engine connects to nothing; a connection is made when a command first needs it and made
//! again after it failed, so that a server started while Redis is down starts, answers 503 for
//! sessions, and recovers by itself when Redis is back. Every failure is a typed
//! [`StoreError`]: [`StoreError::EngineTimeout`] past a bound, [`StoreError::Engine`] otherwise.
//!
//! # Why connections belong to the thread that uses them
//! actix-web runs each worker on its own single-threaded tokio runtime, and one engine is shared
//! by all of them. A `redis` connection is driven by a task spawned on the runtime that made it,
//! so a connection shared across workers would make every command hop to another thread and back
//! (two cross-thread wake-ups), and would die with the runtime that happened to make it. Here each
//! thread (in fact each runtime: a thread whose runtime was dropped and replaced gets fresh ones)
//! lazily makes its own `pool_size` multiplexed connections and uses them round-robin: a command
//! is written and answered on the worker's own event loop, with no lock and no extra task. A
//! dedicated runtime thread shared by all workers would cost a task spawn and those two hops per
//! command, and would become the bottleneck on a busy machine. Measured on the 2-core dev machine
//! (2 threads x 64 concurrent `GET` loops, unix socket, two runs): per-thread connections 524k
//! and 421k commands/s; one connection driven by a dedicated runtime thread 386k and 436k; each
//! command spawned onto that thread 131k and 146k.
//!
//! One file: the per-thread connections, their reconnection and their timeouts are one
//! mechanism, measured as a whole above.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, FromRedisValue, RedisError, RedisFuture, RedisResult,
    ScriptInvocation, Value,
};

use crate::store::StoreError;

/// The engine's name in errors.
const ENGINE: &str = "redis";

/// Where an engine connects and how long it waits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineOptions {
    /// One Redis: `redis://host:port/db`, `unix:///path/to.sock` (or `redis+unix://`). Unused
    /// when `cluster_urls` is not empty.
    pub url: String,
    /// Seed nodes of a Redis Cluster; non-empty means cluster mode.
    pub cluster_urls: Vec<String>,
    /// Multiplexed connections per worker thread (see the module docs).
    pub pool_size: usize,
    /// Bound on making one connection.
    pub connect_timeout: Duration,
    /// Bound on one command, from sending it to its answer.
    pub command_timeout: Duration,
    /// Certificates for `rediss://` URLs.
    pub tls: super::config::TlsFiles,
    /// The Sentinels that name the primary (then `url` gives only its password, database and
    /// scheme).
    pub sentinel: Option<super::config::SentinelConfig>,
}

impl EngineOptions {
    /// One Redis at `url`, one connection per thread, 2 s to connect, 1 s per command.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            cluster_urls: Vec::new(),
            pool_size: 1,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            tls: super::config::TlsFiles::default(),
            sentinel: None,
        }
    }

    /// The Redis Cluster whose seed nodes are `urls`.
    pub fn cluster(urls: Vec<String>) -> Self {
        Self {
            cluster_urls: urls,
            ..Self::new(String::new())
        }
    }

    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    #[must_use]
    pub fn connect_timeout(mut self, bound: Duration) -> Self {
        self.connect_timeout = bound;
        self
    }

    #[must_use]
    pub fn command_timeout(mut self, bound: Duration) -> Self {
        self.command_timeout = bound;
        self
    }
}

impl EngineOptions {
    /// Where the engine connects, as error lines name it: the URL (or the nodes' or Sentinels'
    /// URLs), passwords masked.
    pub fn address(&self) -> String {
        super::blocking::address_of(&self.url, &self.cluster_urls, self.sentinel.as_ref())
    }
}

impl From<&super::config::RedisConfig> for EngineOptions {
    fn from(c: &super::config::RedisConfig) -> Self {
        Self {
            url: c.url.clone(),
            cluster_urls: c.cluster_urls.clone(),
            pool_size: c.pool_size,
            connect_timeout: c.connect_timeout,
            command_timeout: c.command_timeout,
            tls: c.tls.clone(),
            sentinel: c.sentinel.clone(),
        }
    }
}

/// A handle to one Redis or a Redis Cluster. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct RedisEngine {
    inner: Arc<Inner>,
}

enum Target {
    Single(Client, AsyncConnectionConfig),
    Cluster(ClusterClient),
    /// Asked anew at each connection: the primary may have changed since the last.
    Sentinel(Box<SentinelTarget>),
}

struct SentinelTarget {
    sentinel: super::config::SentinelConfig,
    url: String,
    certs: Option<redis::TlsCertificates>,
    config: AsyncConnectionConfig,
}

struct Inner {
    /// Tells this engine's entry in a thread's [`POOLS`] from another engine's.
    id: u64,
    /// Where it connects (URLs, passwords masked), for error lines.
    address: String,
    target: Target,
    pool_size: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    /// Every thread's pool, owned here so that dropping the engine closes its connections (the
    /// threads keep weak references only).
    pools: Mutex<Vec<Arc<ThreadPool>>>,
}

/// One thread's (one runtime's) connections.
struct ThreadPool {
    slots: Vec<Slot>,
    next: AtomicUsize,
    /// Its receiver lives in a task on the runtime that made this pool: closed once that runtime
    /// is gone, and with it the tasks driving these connections.
    runtime_alive: tokio::sync::oneshot::Sender<()>,
}

impl ThreadPool {
    fn is_dead(&self) -> bool {
        self.runtime_alive.is_closed()
    }
}

/// One connection, made on first use and again after a failure.
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<(u64, Conn)>>,
    /// Held while connecting, so that the requests waiting for this slot make one connection.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

/// A connection to a single Redis or to a Cluster.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

thread_local! {
    /// This thread's pools, by engine id.
    static POOLS: RefCell<Vec<(u64, Weak<ThreadPool>)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ENGINE: AtomicU64 = AtomicU64::new(0);

/// `e` with the address of the Redis it came from.
fn engine_error_at(address: &str, e: RedisError) -> StoreError {
    StoreError::Engine {
        engine: ENGINE,
        source: Box::new(crate::store::At {
            address: address.to_owned(),
            source: Box::new(e),
        }),
    }
}

pub(super) fn engine_error(e: RedisError) -> StoreError {
    StoreError::Engine {
        engine: ENGINE,
        source: Box::new(e),
    }
}

/// Whether Redis refused the command because the key holds another type than the command works
/// on (its `WRONGTYPE` error code): a key in our namespace that some other program wrote.
pub(super) fn is_wrong_type(e: &StoreError) -> bool {
    match e {
        StoreError::Engine { source, .. } => {
            let redis = match source.downcast_ref::<crate::store::At>() {
                Some(at) => at.source.downcast_ref::<RedisError>(),
                None => source.downcast_ref::<RedisError>(),
            };
            redis.is_some_and(|e| e.code() == Some("WRONGTYPE"))
        }
        _ => false,
    }
}

fn timeout_error(address: &str, after: Duration) -> StoreError {
    StoreError::EngineTimeout {
        engine: ENGINE,
        at: address.to_owned(),
        after,
    }
}

/// A write the primary holds but too few replicas confirmed (`wait_replicas`).
#[derive(Debug, thiserror::Error)]
#[error("written on the primary, but {acked} of the {replicas} replicas wait_replicas asks for confirmed it within {within:?}")]
struct NotReplicated {
    acked: i64,
    replicas: u32,
    within: Duration,
}

/// A message as an engine error, for failures that are not the `redis` crate's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct EngineFault(&'static str);

impl RedisEngine {
    /// Checks the URLs and reads the TLS files; connects to nothing (see the module docs).
    pub fn new(options: &EngineOptions) -> Result<Self, StoreError> {
        let address = options.address();
        let engine_error = |e| engine_error_at(&address, e);
        // The crate's own bounds too, so that a connection that stops answering fails its
        // commands (and is replaced) even when a caller drops the request first.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout));
        let target = if let Some(sentinel) = &options.sentinel {
            // Read and checked now, so that a wrong URL or file stops the start rather than
            // each request, and no connection reads the files again.
            let certs = super::reach::certificates(&options.tls).map_err(engine_error)?;
            super::reach::sentinel(sentinel, &options.url, certs.as_ref()).map_err(engine_error)?;
            Target::Sentinel(Box::new(SentinelTarget {
                sentinel: sentinel.clone(),
                url: options.url.clone(),
                certs,
                config,
            }))
        } else if options.cluster_urls.is_empty() {
            let client = super::reach::client(&options.url, &options.tls).map_err(engine_error)?;
            Target::Single(client, config)
        } else {
            let client = super::reach::cluster(&options.cluster_urls, &options.tls)
                .map_err(engine_error)?
                .connection_timeout(options.connect_timeout)
                .response_timeout(options.command_timeout)
                // A few quick retries (a MOVED after a resharding or towards a node that just
                // came back costs one each), not the crate's 16 waits from 1.28 s up: the
                // command bound caps the whole attempt anyway.
                .retries(4)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .build()
                .map_err(engine_error)?;
            Target::Cluster(client)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                id: NEXT_ENGINE.fetch_add(1, Ordering::Relaxed),
                address,
                target,
                pool_size: options.pool_size.max(1),
                connect_timeout: options.connect_timeout,
                command_timeout: options.command_timeout,
                pools: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Whether this engine talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster(_))
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.run(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs one write, then, when `replicas` is above 0, `WAIT`s on the same connection until
    /// that many replicas hold it: a write the primary alone holds is lost if it fails before
    /// replicating it. Fewer replicas within half the command bound is an error, so that the
    /// caller does not acknowledge the write (the primary keeps it: the next write repeats it).
    pub async fn write<T: FromRedisValue>(&self, cmd: &Cmd, replicas: u32) -> Result<T, StoreError> {
        if replicas == 0 {
            return self.query(cmd).await;
        }
        self.acknowledged(replicas, |mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// As [`Self::write`], for a script.
    pub async fn invoke_write<T: FromRedisValue>(
        &self,
        script: &ScriptInvocation<'_>,
        replicas: u32,
    ) -> Result<T, StoreError> {
        if replicas == 0 {
            return self.invoke(script).await;
        }
        self.acknowledged(replicas, |mut conn| async move {
            script.invoke_async(&mut conn).await
        })
        .await
    }

    /// `write` on a connection, then `WAIT` for `replicas` on the same one.
    async fn acknowledged<T, F, Fut>(&self, replicas: u32, write: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let wait = self.wait_command(replicas);
        let (value, acked): (T, i64) = self
            .run(|mut conn| {
                let (wait, written) = (&wait, write(conn.clone()));
                async move {
                    let value = written.await?;
                    let acked: i64 = wait.query_async(&mut conn).await?;
                    Ok((value, acked))
                }
            })
            .await?;
        self.replicated(value, acked, replicas)
    }

    fn wait_command(&self, replicas: u32) -> Cmd {
        let half = self.inner.command_timeout / 2;
        let ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(ms);
        wait
    }

    fn replicated<T>(&self, value: T, acked: i64, replicas: u32) -> Result<T, StoreError> {
        if acked >= i64::from(replicas) {
            return Ok(value);
        }
        Err(StoreError::Engine {
            engine: ENGINE,
            source: Box::new(NotReplicated {
                acked,
                replicas,
                within: self.inner.command_timeout / 2,
            }),
        })
    }

    /// Runs a Lua script on its keys (`EVALSHA`, loading the script first if Redis does not
    /// know it yet).
    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.run(|mut conn| async move { script.invoke_async(&mut conn).await })
            .await
    }

    /// Runs `work` on one of this thread's connections, within the command bound. A connection
    /// that failed in a way it cannot recover from (or did not answer in time) is dropped, and
    /// the next command makes a new one. A connection Redis closed while idle (its `timeout`, a
    /// failover, a proxy restart) fails its next command with no fault of the engine: that
    /// command is tried once more on a fresh connection. Every command sent here may run twice
    /// that way (`GET`, `SET XX`, `EXPIREAT`, `DEL`, the update script; a repeated `SET NX` finds
    /// its key taken and the store draws another id).
    pub(super) async fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let pool = self.pool()?;
        let slot = &pool.slots[pool.next.fetch_add(1, Ordering::Relaxed) % pool.slots.len()];
        let bound = self.inner.command_timeout;
        let mut retried = false;
        loop {
            let (generation, conn) = self.connection(slot).await?;
            match tokio::time::timeout(bound, work(conn)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => {
                    // A primary demoted to a replica (a failover it lived through) refuses
                    // writes: the connection is dropped, and the next one goes to the primary
                    // the Sentinels name now.
                    let demoted = e.code() == Some("READONLY");
                    if is_broken(&e) || demoted {
                        forget(slot, generation);
                    }
                    if e.is_timeout() {
                        return Err(timeout_error(&self.inner.address, bound));
                    }
                    if !retried && (e.is_connection_dropped() || e.is_io_error() || demoted) {
                        retried = true;
                        continue;
                    }
                    return Err(engine_error_at(&self.inner.address, e));
                }
                Err(_) => {
                    forget(slot, generation);
                    return Err(timeout_error(&self.inner.address, bound));
                }
            }
        }
    }

    /// The slot's connection, made now if it has none.
    async fn connection(&self, slot: &Slot) -> Result<(u64, Conn), StoreError> {
        if let Some(found) = slot.conn.lock().clone() {
            return Ok(found);
        }
        let bound = self.inner.connect_timeout;
        let made = tokio::time::timeout(bound, async {
            let _one_at_a_time = slot.connecting.lock().await;
            if let Some(found) = slot.conn.lock().clone() {
                return Ok(found);
            }
            let conn = match &self.inner.target {
                Target::Single(client, config) => client
                    .get_multiplexed_async_connection_with_config(config)
                    .await
                    .map(Conn::Single),
                Target::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
                Target::Sentinel(target) => target.connect().await.map(Conn::Single),
            }
            .map_err(|e| {
                let address = &self.inner.address;
                if e.is_timeout() {
                    timeout_error(address, bound)
                } else {
                    crate::telemetry::engine_unreachable(ENGINE, address, &e);
                    engine_error_at(address, e)
                }
            })?;
            let generation = slot.generation.fetch_add(1, Ordering::Relaxed);
            *slot.conn.lock() = Some((generation, conn.clone()));
            Ok((generation, conn))
        })
        .await;
        made.unwrap_or_else(|_| {
            let address = &self.inner.address;
            crate::telemetry::engine_unreachable(ENGINE, address, &"no connection in time");
            Err(timeout_error(address, bound))
        })
    }

    /// This thread's pool, made on first use (and again when the runtime that made the last one
    /// is gone).
    fn pool(&self) -> Result<Arc<ThreadPool>, StoreError> {
        let id = self.inner.id;
        let found = POOLS.with_borrow(|pools| {
            pools
                .iter()
                .find(|(engine, _)| *engine == id)
                .and_then(|(_, pool)| pool.upgrade())
        });
        if let Some(pool) = found.filter(|p| !p.is_dead()) {
            return Ok(pool);
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| engine_error_text("redis commands need a tokio runtime"))?;
        let (runtime_alive, receiver) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            let _held_until_the_runtime_stops = receiver;
            std::future::pending::<()>().await;
        });
        let pool = Arc::new(ThreadPool {
            slots: (0..self.inner.pool_size).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            runtime_alive,
        });
        {
            let mut pools = self.inner.pools.lock();
            pools.retain(|p| !p.is_dead());
            pools.push(Arc::clone(&pool));
        }
        POOLS.with_borrow_mut(|pools| {
            pools.retain(|(engine, p)| *engine != id && p.strong_count() > 0);
            pools.push((id, Arc::downgrade(&pool)));
        });
        Ok(pool)
    }
}

impl SentinelTarget {
    /// A connection to the primary the Sentinels name now.
    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        let mut sentinel = super::reach::sentinel(&self.sentinel, &self.url, self.certs.as_ref())?;
        let client = sentinel.async_get_client().await?;
        client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }
}

fn engine_error_text(text: &'static str) -> StoreError {
    StoreError::Engine {
        engine: ENGINE,
        source: Box::new(EngineFault(text)),
    }
}

/// Whether `e` means the connection itself is unusable (as opposed to a refused command).
fn is_broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}

/// Drops the slot's connection if it is still the one that failed.
fn forget(slot: &Slot, generation: u64) {
    let mut conn = slot.conn.lock();
    if conn.as_ref().is_some_and(|(g, _)| *g == generation) {
        *conn = None;
    }
}
