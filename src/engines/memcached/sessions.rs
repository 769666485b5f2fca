//! [`MemcachedSessionStore`]: sessions in memcached (`type = "memcached"`), shared by every
//! server that reaches the same memcached servers.
//!
//! A session lives under `key_prefix` + the hex SHA-256 of its id, on one of the servers chosen
//! by rendezvous hashing (adding a server moves only its share of the sessions); the value is
//! the session file's JSON. memcached keeps the expiry: an item's exptime is the session's end
//! (memcached reads an exptime over 30 days as an absolute unix time, so longer lifetimes are
//! sent as one).
//!
//! What memcached cannot promise, and the store does not pretend to: an item may be evicted
//! under memory pressure (that session ends early) and a restart forgets every session; the keys
//! cannot be listed. An update replaces only a session that is still there (the meta protocol's
//! replace mode), so a logout or an expiry always wins over a late write.

use std::sync::Arc;
use std::time::Duration;

use async_memcached::{MetaProtocol, Status};
use async_trait::async_trait;
use deadpool::managed::{self, Object, Pool};
use time::OffsetDateTime;

use crate::store::backend::{Loaded, ended, Capabilities, SessionBackend};
use crate::store::health::Health;
use crate::store::record::{SessionRecord, SessionState};
use crate::store::{SessionId, Store, StoreError};
use super::config::MemcachedConfig;
use super::connection::{
    seconds_until, seed, server_for, store_error, Manager, MemcachedError, Server,
};
pub(super) use super::connection::{exptime, status};
use crate::config::SessionConfig;
use crate::engines::runtime::EngineRuntime;


/// The memcached store `config` describes. Nothing connects yet.
pub(crate) fn open(config: &SessionConfig) -> Result<Store, StoreError> {
    Ok(Store::new(MemcachedSessionStore::new(
        &config.memcached,
        config.max_session_bytes,
    )?))
}

/// Sessions in memcached. Cheap to clone: clones share the pools.
#[derive(Clone)]
pub struct MemcachedSessionStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    servers: Vec<Server>,
    pub(super) prefix: String,
    max_bytes: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    health: Health,
    /// Declared last: dropped after the pools whose connections it drives.
    runtime: EngineRuntime,
}

impl MemcachedSessionStore {
    /// Pools for each server of `config`; nothing connects until the first call.
    pub fn new(config: &MemcachedConfig, max_bytes: usize) -> Result<Self, StoreError> {
        let all = config.servers.join(", ");
        let runtime = EngineRuntime::start("memcached-io")
            .map_err(|e| store_error(MemcachedError::Runtime(e), &all))?;
        let mut servers = Vec::new();
        for (name, address) in config.servers.iter().zip(config.addresses()) {
            let pool = Pool::builder(Manager { address })
                .max_size(config.pool_size)
                .runtime(deadpool::Runtime::Tokio1)
                .wait_timeout(Some(config.connect_timeout))
                .create_timeout(Some(config.connect_timeout))
                .recycle_timeout(Some(config.connect_timeout))
                .build()
                .map_err(|e| store_error(MemcachedError::Pool(e.to_string()), name))?;
            servers.push(Server {
                pool,
                seed: seed(name),
                name: name.as_str().into(),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                servers,
                prefix: config.key_prefix.clone(),
                max_bytes,
                connect_timeout: config.connect_timeout,
                command_timeout: config.command_timeout,
                health: Health::default(),
                runtime,
            }),
        })
    }

    fn key(&self, id: &SessionId) -> String {
        self.key_of_digest(id.digest())
    }

    fn key_of_digest(&self, digest: &[u8; 32]) -> String {
        format!("{}{}", self.inner.prefix, crate::store::id::stem(digest))
    }

    /// The stored bytes of the session with `digest`, if any.
    async fn get(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key_of_digest(digest);
        let got = self
            .run(self.server_of(digest), move |mut c| async move {
                c.meta_get(&key, false, None, Some(&["v"])).await
            })
            .await?;
        Ok(got.and_then(|value| value.data))
    }

    /// Deletes the session with `digest`; one that is not there is not an error.
    async fn delete_digest(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        let key = self.key_of_digest(digest);
        self.run(self.server_of(digest), move |mut c| async move {
            match c.meta_delete(&key, false, None, None).await {
                Ok(_) => Ok(()),
                Err(e) if status(&e) == Some(&Status::NotFound) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    fn server(&self, id: &SessionId) -> &Server {
        self.server_of(id.digest())
    }

    /// `work` with a connection to `server`, bounded by the timeouts: a task for the store's
    /// runtime.
    fn task<T, F, Fut>(
        &self,
        server: &Server,
        work: F,
    ) -> impl std::future::Future<Output = Result<T, MemcachedError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(Object<Manager>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, async_memcached::Error>> + Send + 'static,
    {
        let pool = server.pool.clone();
        let name = std::sync::Arc::clone(&server.name);
        let (connect, command) = (self.inner.connect_timeout, self.inner.command_timeout);
        async move {
            let client = pool.get().await.map_err(|e| {
                // No connection could be made (not: all were busy): said once at warn with the
                // address, then summarised.
                if matches!(
                    e,
                    managed::PoolError::Backend(_)
                        | managed::PoolError::Timeout(managed::TimeoutType::Create)
                ) {
                    crate::telemetry::engine_unreachable("memcached", &name, &e);
                }
                match e {
                    managed::PoolError::Timeout(_) => MemcachedError::Timeout(connect),
                    managed::PoolError::Backend(e) => MemcachedError::Memcached(e),
                    other => MemcachedError::Pool(other.to_string()),
                }
            })?;
            match tokio::time::timeout(command, work(client)).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(MemcachedError::Timeout(command)),
            }
        }
    }

    /// A failure (at `server`) makes the next health check probe again.
    fn note<T>(&self, server: &Server, result: Result<T, MemcachedError>) -> Result<T, StoreError> {
        result.map_err(|e| {
            self.inner.health.forget();
            store_error(e, &server.name)
        })
    }

    /// Runs `work` with a connection to `server` on the store's runtime.
    async fn run<T, F, Fut>(&self, server: &Server, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Object<Manager>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, async_memcached::Error>> + Send + 'static,
    {
        let result = match self.inner.runtime.run(self.task(server, work)).await {
            Ok(result) => result,
            Err(e) => Err(MemcachedError::Runtime(e)),
        };
        self.note(server, result)
    }

    /// As [`Self::run`], from a blocking thread.
    pub(super) fn run_blocking<T, F, Fut>(&self, server: &Server, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Object<Manager>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, async_memcached::Error>> + Send + 'static,
    {
        let result = match self.inner.runtime.run_blocking(self.task(server, work)) {
            Ok(result) => result,
            Err(e) => Err(MemcachedError::Runtime(e)),
        };
        self.note(server, result)
    }

    /// The server holding keys named after `digest`.
    pub(super) fn server_of(&self, digest: &[u8; 32]) -> &Server {
        let seeds: Vec<u64> = self.inner.servers.iter().map(|s| s.seed).collect();
        &self.inner.servers[server_for(&seeds, digest)]
    }

    /// The stored record; a value that is not a record is deleted (memcached has nowhere to set
    /// it aside), logged, and is no session.
    async fn read(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let Some(data) = self.get(id.digest()).await? else {
            return Ok(None);
        };
        // memcached's expiry is the session's (a refresh moves it with a touch, not a write):
        // the record's own `expires_at` is when it was last written.
        match SessionRecord::from_bytes(&data) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                tracing::warn!(session = %id.log_tag(), error = %e, "stored session is not a record; deleted");
                self.delete(id).await?;
                Ok(None)
            }
        }
    }

    /// Stores `body` under `id` in the mode `extra` gives (add, replace); the protocol status of
    /// a refusal (not stored, exists, not found) is returned, not raised.
    async fn write(
        &self,
        id: &SessionId,
        body: Vec<u8>,
        expires_at: OffsetDateTime,
        extra: Option<String>,
    ) -> Result<Option<Status>, StoreError> {
        let key = self.key(id);
        let now = OffsetDateTime::now_utc();
        let ttl = format!("T{}", exptime(seconds_until(expires_at, now), now));
        self.run(self.server(id), move |mut c| async move {
            let mut flags = vec![ttl.as_str()];
            if let Some(extra) = &extra {
                flags.push(extra);
            }
            match c
                .meta_set(&key, body.as_slice(), false, None, Some(&flags))
                .await
            {
                Ok(_) => Ok(None),
                Err(e) => match status(&e) {
                    Some(s @ (Status::NotStored | Status::Exists | Status::NotFound)) => {
                        Ok(Some(s.clone()))
                    }
                    _ => Err(e),
                },
            }
        })
        .await
    }
}

#[async_trait]
impl SessionBackend for MemcachedSessionStore {
    fn kind(&self) -> &'static str {
        "memcached"
    }

    fn capabilities(&self) -> Capabilities {
        super::config::CAPABILITIES
    }

    async fn load_live(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        Ok(self.read(id).await?.as_ref().map(Loaded::from))
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let now = OffsetDateTime::now_utc();
        let record = SessionRecord::new(&state, now, now, ttl)?;
        let body = record.to_bytes(self.inner.max_bytes)?;
        let (id, ()) = crate::store::id::with_fresh_id_async(|id| {
            let body = body.clone();
            async move {
                // Mode E: add, refused when the key exists.
                let refused = self
                    .write(&id, body, record.expires_at, Some("ME".into()))
                    .await?;
                Ok(refused.is_none().then_some(()))
            }
        })
        .await?;
        Ok(id)
    }

    async fn update(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let Some(old) = self.read(&id).await? else {
            return ended(&id);
        };
        let now = OffsetDateTime::now_utc();
        let mut record = SessionRecord::new(&state, now, now, ttl)?;
        record.created_at = old.created_at;
        let body = record.to_bytes(self.inner.max_bytes)?;
        // Mode R: replace, refused when the key is gone. A logout or an expiry between the read
        // and this write wins; a parallel writer's record is replaced whole (the last write
        // wins, as with every store); the creation time read above never changes.
        match self
            .write(&id, body, record.expires_at, Some("MR".into()))
            .await?
        {
            None => Ok(id),
            Some(_) => ended(&id),
        }
    }

    async fn update_ttl(&self, id: &SessionId, ttl: &time::Duration) -> Result<(), StoreError> {
        let key = self.key(id);
        let now = OffsetDateTime::now_utc();
        let touch = format!("T{}", exptime(ttl.whole_seconds(), now));
        // `mg` with T touches an item that exists and never creates one.
        let result = self
            .run(self.server(id), move |mut c| async move {
                match c.meta_get(&key, false, None, Some(&[touch.as_str()])).await {
                    Ok(_) => Ok(()),
                    Err(e) if status(&e) == Some(&Status::Exists) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await;
        result
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.delete_digest(id.digest()).await
    }

    async fn expires_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        let key = self.key(id);
        let got = self
            .run(self.server(id), move |mut c| async move {
                c.meta_get(&key, false, None, Some(&["t", "v"])).await
            })
            .await?;
        let now = OffsetDateTime::now_utc();
        Ok(got
            .and_then(|v| v.ttl_remaining)
            .filter(|left| *left > 0)
            .and_then(|left| now.checked_add(time::Duration::seconds(left))))
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        if self.inner.health.fresh() {
            return Ok(());
        }
        for server in &self.inner.servers {
            self.run(server, |mut c| async move { c.version().await.map(drop) })
                .await?;
        }
        self.inner.health.passed();
        Ok(())
    }

    async fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        self.get(digest)
            .await?
            .map(|b| SessionRecord::from_bytes(&b).map_err(StoreError::NotARecord))
            .transpose()
    }

    async fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.delete_digest(digest).await
    }
}

crate::store::actix::actix_store!(MemcachedSessionStore, s => s);
