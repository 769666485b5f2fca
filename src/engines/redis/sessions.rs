//! [`RedisSessionStore`]: sessions in Redis (one server or a Redis Cluster), shared by every
//! server process that points at it, with the file store's semantics.
//!
//! - The key is `key_prefix` + hex SHA-256 of the id (the file store's file name stem), so a
//!   `SCAN`, `KEYS` or an RDB dump reveals no usable cookie.
//! - The value is the record's JSON exactly as the file store writes it
//!   ([`SessionRecord::to_bytes`], which also applies the size limit): `redis-cli GET` shows
//!   what a session file shows.
//! - Redis keeps the expiry (`SET .. EXAT`, `EXPIREAT`): nothing needs sweeping. The record's
//!   own `expires_at` is when it was last written; a refresh without changes (`update_ttl`)
//!   moves only the key's expiry, which is the session's end ([`SessionBackend::expires_at`]).
//! - A value that is not a record is set aside under `<prefix>corrupt:<stem>` for
//!   [`QUARANTINE`] and the request is served without a session.
//!
//! Commands per request are actix-session's own Redis store's: `GET` on load, one `SET` when
//! the session changed, `EXPIREAT` on a refresh. An update must keep the session's creation
//! time, which actix-session does not hand back: the store remembers it from the load (or save)
//! of the same request, so the update is one `SET .. XX EXAT` (`XX`: a session that ended
//! meanwhile is not brought back). Only when this process has not seen the session (evicted
//! from memory) does the update run `update.lua`, which reads it inside Redis, still one round
//! trip.
//!
//! Beside it: `connection.rs` the engine handle, `nodes.rs` what the engine does on every node
//! (health, `SCAN`), `update.lua` the update of a session this process never saw,
//! `sessions/listing.rs` the listing, a `SCAN` step at a time.
//!
//! One file: each session call is one command or script, kept beside the others so that their
//! shared rules (expiry by `EXAT`, deletion wins, the remembered creation times) read together.

mod listing;

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::connection::{self, EngineOptions, RedisEngine};


use crate::store::backend::{Loaded, ended, Capabilities, SessionBackend, SessionSummary};
use crate::store::health::Health;
use crate::store::record::{expiry_after, SessionRecord, SessionState};
use crate::store::{SessionId, Store, StoreError};
use crate::config::SessionConfig;

/// The redis store `config` describes.
pub(crate) fn open(config: &SessionConfig) -> Result<Store, StoreError> {
    let options = RedisOptions::new(EngineOptions::from(&config.redis))
        .key_prefix(config.redis.key_prefix.clone())
        .max_session_bytes(config.max_session_bytes)
        .wait_replicas(config.redis.wait_replicas);
    Ok(Store::new(RedisSessionStore::new(options)?))
}

/// How long a value that is not a session record is kept aside for inspection.
pub const QUARANTINE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How many sessions' creation times are remembered (about 60 bytes each). A creation time
/// never changes, so a remembered one is never stale; a forgotten one costs that session's next
/// update a script instead of a plain `SET`.
const REMEMBERED_CREATIONS: usize = 100_000;

/// Everything a [`RedisSessionStore`] needs to know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    pub engine: EngineOptions,
    /// Put before every key (Flask-Session's `SESSION_KEY_PREFIX`).
    pub key_prefix: String,
    pub max_session_bytes: usize,
    /// Replicas that must hold each session write before it is acknowledged (`WAIT`).
    pub wait_replicas: u32,
}

impl RedisOptions {
    /// Keys under `session:`, sessions up to 64 KiB.
    pub fn new(engine: EngineOptions) -> Self {
        Self {
            engine,
            key_prefix: "session:".to_owned(),
            max_session_bytes: crate::store::DEFAULT_MAX_SESSION_BYTES,
            wait_replicas: 0,
        }
    }

    #[must_use]
    pub fn wait_replicas(mut self, replicas: u32) -> Self {
        self.wait_replicas = replicas;
        self
    }

    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    #[must_use]
    pub fn max_session_bytes(mut self, limit: usize) -> Self {
        self.max_session_bytes = limit;
        self
    }
}

static UPDATE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("update.lua")));

/// Sessions in Redis. Cheap to clone: clones share the engine.
#[derive(Clone)]
pub struct RedisSessionStore {
    engine: RedisEngine,
    prefix: std::sync::Arc<str>,
    max_bytes: usize,
    wait_replicas: u32,
    health: std::sync::Arc<Health>,
    /// Creation times of sessions this process loaded or saved, by digest.
    created: std::sync::Arc<quick_cache::sync::Cache<[u8; 32], OffsetDateTime>>,
}

impl RedisSessionStore {
    /// A store on the engine `options` names. Connects to nothing yet (see [`connection`]).
    pub fn new(options: RedisOptions) -> Result<Self, StoreError> {
        let mut store = Self::on(
            RedisEngine::new(&options.engine)?,
            &options.key_prefix,
            options.max_session_bytes,
        );
        store.wait_replicas = options.wait_replicas;
        Ok(store)
    }

    /// A store on an engine made elsewhere (and maybe shared with other users of that Redis).
    pub fn on(engine: RedisEngine, key_prefix: &str, max_session_bytes: usize) -> Self {
        Self {
            engine,
            prefix: key_prefix.into(),
            max_bytes: max_session_bytes,
            wait_replicas: 0,
            health: std::sync::Arc::default(),
            created: std::sync::Arc::new(quick_cache::sync::Cache::new(REMEMBERED_CREATIONS)),
        }
    }

    /// The engine, for other shared state kept in the same Redis.
    pub fn engine(&self) -> &RedisEngine {
        &self.engine
    }

    /// The key a session is kept under: the prefix and the id's digest, never the id.
    pub fn key_of(&self, id: &SessionId) -> String {
        self.key_of_digest(id.digest())
    }

    fn key_of_digest(&self, digest: &[u8; 32]) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 64);
        key.push_str(&self.prefix);
        key.push_str(&crate::store::id::stem(digest));
        key
    }

    /// Where an unreadable value under `key`'s session is set aside.
    fn corrupt_key_of(&self, id: &SessionId) -> String {
        format!("{}corrupt:{}", self.prefix, id.stem())
    }

    /// A failure to reach Redis makes the next health check probe again, at once.
    fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if matches!(
            result,
            Err(StoreError::Engine { .. } | StoreError::EngineTimeout { .. })
        ) {
            self.health.forget();
        }
        result
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.note(self.engine.query(cmd).await)
    }

    /// A command that writes a session: acknowledged once `wait_replicas` replicas hold it.
    async fn write<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.note(self.engine.write(cmd, self.wait_replicas).await)
    }

    /// Moves an unreadable value out of the way (kept for [`QUARANTINE`]) so that it is looked
    /// at once, logged, and kept for a person to inspect. Two single-key commands rather than a
    /// `RENAME`: in a Cluster the two keys live in different slots.
    async fn set_aside(&self, id: &SessionId, key: &str, bytes: &[u8], why: &str) {
        let corrupt = self.corrupt_key_of(id);
        let mut keep = redis::cmd("SET");
        keep.arg(&corrupt)
            .arg(bytes)
            .arg("EX")
            .arg(QUARANTINE.as_secs());
        let moved = match self.query::<()>(&keep).await {
            Ok(()) => self.query::<()>(redis::cmd("DEL").arg(key)).await,
            Err(e) => Err(e),
        };
        match moved {
            Ok(()) => tracing::warn!(
                session = %id.log_tag(), moved_to = %corrupt, reason = why,
                "unreadable session value set aside; the request is served without a session"
            ),
            Err(e) => tracing::warn!(
                session = %id.log_tag(), reason = why, error = %e,
                "unreadable session value could not be set aside"
            ),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.query(redis::cmd("EXISTS").arg(key)).await
    }
}

/// The byte offset of the record's `created_at` timestamp in its JSON: the first such field,
/// since it comes before the session's data.
fn created_at_offset(json: &[u8]) -> Option<usize> {
    const FIELD: &[u8] = b"\"created_at\": \"";
    json.windows(FIELD.len())
        .position(|w| w == FIELD)
        .map(|at| at + FIELD.len())
}

#[async_trait]
impl SessionBackend for RedisSessionStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn capabilities(&self) -> Capabilities {
        super::config::CAPABILITIES
    }

    async fn load_live(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let key = self.key_of(id);
        let bytes = match self
            .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(&key))
            .await
        {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            // Not a string at all (a hash, a list someone wrote there): no session, and removed
            // so that the visitor is not refused on every request.
            Err(e) if connection::is_wrong_type(&e) => {
                tracing::warn!(session = %id.log_tag(), "a session key held another Redis type; removed");
                self.query::<i64>(redis::cmd("DEL").arg(&key)).await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        match SessionRecord::from_bytes(&bytes) {
            Ok(record) => {
                self.created.insert(*id.digest(), record.created_at);
                Ok(Some(Loaded::from(&record)))
            }
            Err(e) => {
                self.set_aside(id, &key, &bytes, &e.to_string()).await;
                Ok(None)
            }
        }
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let now = OffsetDateTime::now_utc();
        let record = SessionRecord::new(&state, now, now, ttl)?;
        let bytes = record.to_bytes(self.max_bytes)?;
        let ends = record.expires_at.unix_timestamp();
        let (id, ()) = crate::store::id::with_fresh_id_async(|id| {
            let mut set = redis::cmd("SET");
            set.arg(self.key_of(&id))
                .arg(&bytes)
                .arg("NX")
                .arg("EXAT")
                .arg(ends);
            async move { self.write::<Option<()>>(&set).await }
        })
        .await?;
        self.created.insert(*id.digest(), record.created_at);
        Ok(id)
    }

    async fn update(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let now = OffsetDateTime::now_utc();
        let created = self.created.get(id.digest());
        let record = SessionRecord::new(&state, created.unwrap_or(now), now, ttl)?;
        let key = self.key_of(&id);
        let bytes = match record.to_bytes(self.max_bytes) {
            Ok(bytes) => bytes,
            // Refused only if it would be written: a session that has ended just stays ended
            // (the file store's order). The extra round trip is paid by refused writes only.
            Err(e @ StoreError::TooLarge { .. }) => {
                return if self.exists(&key).await? {
                    Err(e)
                } else {
                    ended(&id)
                };
            }
            Err(e) => return Err(e),
        };
        let ends = record.expires_at.unix_timestamp();
        if created.is_some() {
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(&bytes).arg("XX").arg("EXAT").arg(ends);
            return if self.write::<Option<()>>(&set).await?.is_some() {
                Ok(id)
            } else {
                self.created.remove(id.digest());
                ended(&id)
            };
        }
        let Some(at) = created_at_offset(&bytes) else {
            return Err(StoreError::Encode(serde::ser::Error::custom(
                "the record has no created_at field",
            )));
        };
        let written: i64 = self.note(
            self.engine
                .invoke_write(
                    UPDATE.key(&key).arg(&bytes).arg(at).arg(ends),
                    self.wait_replicas,
                )
                .await,
        )?;
        if written == 1 {
            Ok(id)
        } else {
            ended(&id)
        }
    }

    async fn update_ttl(&self, id: &SessionId, ttl: &time::Duration) -> Result<(), StoreError> {
        let at = expiry_after(OffsetDateTime::now_utc(), ttl)?;
        let mut cmd = redis::cmd("EXPIREAT");
        cmd.arg(self.key_of(id)).arg(at.unix_timestamp());
        self.write::<i64>(&cmd).await.map(drop)
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.created.remove(id.digest());
        self.write::<i64>(redis::cmd("DEL").arg(self.key_of(id)))
            .await
            .map(drop)
    }

    async fn expires_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        let at: i64 = self
            .query(redis::cmd("EXPIRETIME").arg(self.key_of(id)))
            .await?;
        // -2: no such key; -1: a key without an end, which this store never writes.
        if at < 0 {
            return Ok(None);
        }
        Ok(OffsetDateTime::from_unix_timestamp(at).ok())
    }

    /// PING (every master of a Cluster). A success stands for a second, so that a health
    /// checker polling `/healthz` costs Redis at most one PING a second per process.
    async fn check_health(&self) -> Result<(), StoreError> {
        if self.health.fresh() {
            return Ok(());
        }
        self.note(self.engine.ping().await)?;
        self.health.passed();
        Ok(())
    }

    async fn list(&self) -> Result<Vec<SessionSummary>, StoreError> {
        crate::store::backend::collect_listing(self.list_batches()).await
    }

    /// `SCAN` for the prefix on every node, a step per batch (see `listing.rs`).
    fn list_batches(&self) -> crate::store::backend::Listing<'_> {
        self.scan_batches()
    }

    async fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let key = self.key_of_digest(digest);
        let bytes: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&key)).await?;
        bytes
            .map(|b| SessionRecord::from_bytes(&b).map_err(StoreError::NotARecord))
            .transpose()
    }

    async fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.created.remove(digest);
        self.query::<i64>(redis::cmd("DEL").arg(self.key_of_digest(digest)))
            .await
            .map(drop)
    }
}

crate::store::actix::actix_store!(RedisSessionStore, s => s);
