//! [`PostgresSessionStore`]: sessions as rows of one PostgreSQL table (`type = "postgres"`,
//! Flask-Session's `sqlalchemy`), shared by every server that reaches the database.
//!
//! The table (`[session.postgres] table`, default `sessions`) holds the id's hex SHA-256 (never
//! the id), `created_at`, `expires_at` and the record as `jsonb`: the session file's document,
//! which `psql` shows and SQL can query (`record->'data'->>'user_id'`).
//!
//! **Every time is the database's.** A session's end is `now() + lifetime` computed by the
//! database, every liveness test is `expires_at > now()`, and the sweeper deletes
//! `expires_at <= now()`: servers whose clocks disagree can neither resurrect nor end a session
//! early. The record's `created_at`/`expires_at` are written from the same clock.
//!
//! Each call is one statement, so one round trip: `update` keeps the row's creation time and
//! writes nothing to a row that is gone or expired (deletion wins).
//!
//! One file: each session call is one SQL statement prepared here with the others, so the
//! statements, the schema they share and the calls that send them are read together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;

use crate::store::backend::{
    ended, Capabilities, Loaded, SessionBackend, SessionSummary, LIST_BATCH,
};
use crate::store::health::Health;
use crate::store::record::{SessionRecord, SessionState};
use crate::store::{SessionId, Store, StoreError};
use crate::config::SessionConfig;
use super::connection::{Postgres, PostgresError, Schema};

/// Rows deleted per statement by a sweep: each batch is its own short transaction.
pub const SWEEP_BATCH: i64 = 500;

/// The least pause between two batches of a sweep.
const MIN_SWEEP_PAUSE: Duration = Duration::from_millis(2);

/// The postgres store `config` describes. The table is created now if the database answers; if
/// it does not, at the first session call.
pub(crate) fn open(config: &SessionConfig) -> Result<Store, StoreError> {
    let pg = &config.postgres;
    let db = Postgres::new(pg).map_err(|e| engine(e, &crate::config::shown::masked(&pg.url)))?;
    let store = PostgresSessionStore::new(db, &pg.table, config.max_session_bytes);
    match store.schema.ensure_blocking(&store.db) {
        Ok(()) => {}
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
            return Err(refused_schema(store.schema.sql(), e));
        }
        Err(e) => tracing::warn!(
            error = %e,
            "postgres is not reachable; the sessions table will be checked at the first session"
        ),
    }
    let store = Arc::new(store);
    Ok(Store::from_shared(store))
}

/// `e` from the database at `at` (its URL, password masked).
fn engine(e: PostgresError, at: &str) -> StoreError {
    match e {
        PostgresError::Timeout(after) => StoreError::EngineTimeout {
            engine: "postgres",
            at: at.to_owned(),
            after,
        },
        other => StoreError::Engine {
            engine: "postgres",
            source: Box::new(crate::store::At {
                address: at.to_owned(),
                source: Box::new(other),
            }),
        },
    }
}

/// The error for a role that may not create the table: what to run instead, as an owner.
fn refused_schema(schema: &str, e: PostgresError) -> StoreError {
    StoreError::Engine {
        engine: "postgres",
        source: format!(
            "this role may not create the sessions table ({e}); have the database owner run:\n{schema}"
        )
        .into(),
    }
}

/// Writes a timestamptz as the record's RFC 3339 (`2026-11-22T10:00:41Z`).
const RFC3339: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS"Z"'"#;

/// The statements, with the table's name in them.
struct Sql {
    load: String,
    save: String,
    update: String,
    update_ttl: String,
    delete: String,
    expires_at: String,
    set_aside: String,
    sweep: String,
    sweep_corrupt: String,
    list: String,
    inspect: String,
}

/// The sessions table, its expiry index, and the tables of set-aside rows and of locks.
fn schema(t: &str) -> Schema {
    Schema::new(format!(
        "CREATE TABLE IF NOT EXISTS {t} (\n    \
         id text PRIMARY KEY,\n    \
         created_at timestamptz NOT NULL,\n    \
         expires_at timestamptz NOT NULL,\n    \
         record jsonb NOT NULL\n);\n\
         CREATE INDEX IF NOT EXISTS {t}_expires_at ON {t} (expires_at);\n\
         CREATE TABLE IF NOT EXISTS {t}_corrupt (\n    \
         id text NOT NULL,\n    \
         set_aside_at timestamptz NOT NULL DEFAULT now(),\n    \
         record text NOT NULL\n);\n\
         CREATE TABLE IF NOT EXISTS {t}_locks (\n    \
         id text PRIMARY KEY,\n    \
         token text NOT NULL,\n    \
         until timestamptz NOT NULL\n);"
    ))
}

impl Sql {
    fn new(t: &str) -> Self {
        // `$2` is the lifetime in seconds; a session ends at a whole second, rounded up, as
        // the other stores round it.
        let end = "to_timestamp(ceil(extract(epoch FROM now())) + $2::bigint)";
        let stamp = |at: &str| format!("to_jsonb(to_char({at} AT TIME ZONE 'UTC', {RFC3339}))");
        Self {
            load: format!("SELECT record::text FROM {t} WHERE id = $1 AND expires_at > now()"),
            save: format!(
                "INSERT INTO {t} (id, created_at, expires_at, record) \
                 SELECT $1, n.at, e.at, \
                   jsonb_set(jsonb_set($3::text::jsonb, '{{created_at}}', {}), '{{expires_at}}', {}) \
                 FROM (SELECT date_trunc('second', now()) AS at) n, (SELECT {end} AS at) e \
                 ON CONFLICT (id) DO NOTHING",
                stamp("n.at"),
                stamp("e.at"),
            ),
            update: format!(
                "UPDATE {t} SET expires_at = e.at, \
                   record = jsonb_set(jsonb_set($3::text::jsonb, '{{created_at}}', \
                     {t}.record->'created_at'), '{{expires_at}}', {}) \
                 FROM (SELECT {end} AS at) e \
                 WHERE id = $1 AND expires_at > now()",
                stamp("e.at"),
            ),
            update_ttl: format!(
                "UPDATE {t} SET expires_at = e.at, \
                   record = jsonb_set(jsonb_set(record, '{{expires_at}}', {}), \
                     '{{ttl_seconds}}', to_jsonb($2::bigint)) \
                 FROM (SELECT {end} AS at) e \
                 WHERE id = $1 AND expires_at > now() AND expires_at <> e.at",
                stamp("e.at"),
            ),
            delete: format!("DELETE FROM {t} WHERE id = $1"),
            expires_at: format!("SELECT expires_at FROM {t} WHERE id = $1 AND expires_at > now()"),
            set_aside: format!(
                "WITH moved AS (DELETE FROM {t} WHERE id = $1 RETURNING id, record) \
                 INSERT INTO {t}_corrupt (id, record) SELECT id, record::text FROM moved"
            ),
            // SKIP LOCKED: a row a request is updating right now is left for the next batch
            // instead of making the sweep wait for it.
            sweep: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= now() \
                 LIMIT $1 FOR UPDATE SKIP LOCKED)"
            ),
            sweep_corrupt: format!(
                "DELETE FROM {t}_corrupt WHERE set_aside_at <= now() - interval '7 days'"
            ),
            // Keyset pages: each a short query on the primary key, so that a listing of millions
            // holds no transaction or cursor open and no more than a page in memory.
            list: format!(
                "SELECT id, expires_at, octet_length(record::text)::bigint FROM {t} \
                 WHERE id > $1 ORDER BY id LIMIT $2"
            ),
            inspect: format!("SELECT record::text FROM {t} WHERE id = $1"),
        }
    }
}

/// Sessions in a PostgreSQL table. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresSessionStore {
    db: Postgres,
    sql: Arc<Sql>,
    max_bytes: usize,
    schema: Arc<Schema>,
    health: Arc<Health>,
}

impl PostgresSessionStore {
    /// A store on `table` through `db`; the table is created at the first call if needed.
    pub fn new(db: Postgres, table: &str, max_bytes: usize) -> Self {
        Self {
            db,
            sql: Arc::new(Sql::new(table)),
            max_bytes,
            schema: Arc::new(schema(table)),
            health: Arc::default(),
        }
    }

    /// The sessions after the id `after`, in id order, at most [`LIST_BATCH`], and the id to
    /// go on from when the page was full.
    async fn list_page(
        &self,
        after: String,
    ) -> Result<(Vec<SessionSummary>, Option<String>), StoreError> {
        self.ready().await?;
        let text = self.sql.list.clone();
        let limit = i64::try_from(LIST_BATCH).unwrap_or(i64::MAX);
        let result = self
            .db
            .run(move |c| async move {
                let stmt = c.prepare_cached(&text).await?;
                let rows = c.query(&stmt, &[&after, &limit]).await?;
                Ok(rows
                    .iter()
                    .map(|r| SessionSummary {
                        stem: r.get(0),
                        expires_at: r.get(1),
                        bytes: u64::try_from(r.get::<_, i64>(2)).ok(),
                    })
                    .collect::<Vec<_>>())
            })
            .await;
        let page = self.note(result)?;
        let next = (page.len() == LIST_BATCH)
            .then(|| page.last().map(|s| s.stem.clone()))
            .flatten();
        Ok((page, next))
    }

    /// A failure to reach the database makes the next health check probe again, at once.
    fn note<T>(&self, result: Result<T, PostgresError>) -> Result<T, StoreError> {
        result.map_err(|e| {
            self.health.forget();
            engine(e, self.db.address())
        })
    }

    /// Creates the table if this process has not seen it yet (the database was down at start).
    async fn ready(&self) -> Result<(), StoreError> {
        match self.schema.ensure(&self.db).await {
            Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                Err(refused_schema(self.schema.sql(), e))
            }
            other => self.note(other),
        }
    }

    /// Runs one statement returning how many rows it changed.
    async fn execute(&self, sql: fn(&Sql) -> &String, args: Args) -> Result<u64, StoreError> {
        self.ready().await?;
        let text = sql(&self.sql).clone();
        let result = self
            .db
            .run(move |c| async move {
                let stmt = c.prepare_cached(&text).await?;
                match args {
                    Args::Id(id) => c.execute(&stmt, &[&id]).await,
                    Args::IdTtl(id, ttl) => c.execute(&stmt, &[&id, &ttl]).await,
                    Args::IdTtlRecord(id, ttl, record) => {
                        c.execute(&stmt, &[&id, &ttl, &record]).await
                    }
                }
            })
            .await;
        self.note(result)
    }

    /// The record of a live session, if any: its text and nothing else.
    async fn select_record(&self, stem: String) -> Result<Option<String>, StoreError> {
        self.select(|s| &s.load, stem).await
    }

    /// The one column `sql` selects for the session `stem` (its record's text, its end).
    async fn select<T>(&self, sql: fn(&Sql) -> &String, stem: String) -> Result<Option<T>, StoreError>
    where
        T: for<'r> tokio_postgres::types::FromSql<'r> + Send + 'static,
    {
        self.ready().await?;
        let text = sql(&self.sql).clone();
        let result = self
            .db
            .run(move |c| async move {
                let stmt = c.prepare_cached(&text).await?;
                Ok(c.query_opt(&stmt, &[&stem]).await?.map(|row| row.get(0)))
            })
            .await;
        self.note(result)
    }

    /// Deletes the expired rows in batches, from a plain thread (the sweeper). Each batch is
    /// its own statement, bounded by `command_timeout` like any other.
    fn delete_expired_blocking(&self) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let started = Instant::now();
            let sweep = self.sql.sweep.clone();
            let n = self.note(self.db.run_blocking(move |c| async move {
                let stmt = c.prepare_cached(&sweep).await?;
                c.execute(&stmt, &[&SWEEP_BATCH]).await
            }))?;
            total = total.saturating_add(n);
            if n < SWEEP_BATCH.unsigned_abs() {
                break;
            }
            // As long again between batches: the sweep takes at most half of what the database
            // (often on the same machine) can give, and requests go first.
            std::thread::sleep(started.elapsed().max(MIN_SWEEP_PAUSE));
        }
        let corrupt = self.sql.sweep_corrupt.clone();
        self.note(
            self.db
                .run_blocking(move |c| async move { c.execute(corrupt.as_str(), &[]).await }),
        )?;
        Ok(total)
    }
}

/// The parameters of one statement: the stem, then the lifetime in seconds, then the record.
enum Args {
    Id(String),
    IdTtl(String, i64),
    IdTtlRecord(String, i64, String),
}

fn seconds(ttl: &time::Duration) -> i64 {
    ttl.whole_seconds().max(0)
}

fn record_text(
    state: &SessionState,
    ttl: &time::Duration,
    limit: usize,
) -> Result<String, StoreError> {
    let now = OffsetDateTime::now_utc();
    SessionRecord::new(state, now, now, ttl)?.to_text(limit)
}

#[async_trait]
impl SessionBackend for PostgresSessionStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn capabilities(&self) -> Capabilities {
        super::config::CAPABILITIES
    }

    async fn load_live(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        let Some(text) = self.select_record(id.stem()).await? else {
            return Ok(None);
        };
        match SessionRecord::from_bytes(text.as_bytes()) {
            Ok(record) => Ok(Some(Loaded::from(&record))),
            Err(e) => {
                tracing::warn!(session = %id.log_tag(), error = %e, "stored session is not a record; set aside in the _corrupt table");
                self.execute(|s| &s.set_aside, Args::Id(id.stem())).await?;
                Ok(None)
            }
        }
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        let record = record_text(&state, ttl, self.max_bytes)?;
        let (id, ()) = crate::store::id::with_fresh_id_async(|id| {
            let record = record.clone();
            async move {
                let args = Args::IdTtlRecord(id.stem(), seconds(ttl), record);
                Ok((self.execute(|s| &s.save, args).await? == 1).then_some(()))
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
        let record = match record_text(&state, ttl, self.max_bytes) {
            // Nothing is written to a session that has ended, so no size is refused either:
            // the other stores' order.
            Err(e @ StoreError::TooLarge { .. }) => {
                return match self.expires_at(&id).await? {
                    Some(_) => Err(e),
                    None => ended(&id),
                };
            }
            other => other?,
        };
        let args = Args::IdTtlRecord(id.stem(), seconds(ttl), record);
        if self.execute(|s| &s.update, args).await? == 1 {
            Ok(id)
        } else {
            ended(&id)
        }
    }

    async fn update_ttl(&self, id: &SessionId, ttl: &time::Duration) -> Result<(), StoreError> {
        self.execute(|s| &s.update_ttl, Args::IdTtl(id.stem(), seconds(ttl)))
            .await?;
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.execute(|s| &s.delete, Args::Id(id.stem())).await?;
        Ok(())
    }

    async fn expires_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        self.select(|s| &s.expires_at, id.stem()).await
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        if self.health.fresh() {
            return Ok(());
        }
        self.ready().await?;
        let result = self
            .db
            .run(|c| async move { c.batch_execute("SELECT 1").await })
            .await;
        self.note(result)?;
        self.health.passed();
        Ok(())
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.ready().await?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.delete_expired_blocking())
            .await
            .map_err(|e| StoreError::JobPanicked(e.to_string()))?
    }

    async fn list(&self) -> Result<Vec<SessionSummary>, StoreError> {
        crate::store::backend::collect_listing(self.list_batches()).await
    }

    /// Page after page by id ([`LIST_BATCH`] rows each), until a short page.
    fn list_batches(&self) -> crate::store::backend::Listing<'_> {
        crate::store::backend::keyset_listing(move |after| self.list_page(after))
    }

    async fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let text: Option<String> =
            self.select(|s| &s.inspect, crate::store::id::stem(digest)).await?;
        text.map(|t| SessionRecord::from_bytes(t.as_bytes()).map_err(StoreError::NotARecord))
            .transpose()
    }

    async fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.execute(|s| &s.delete, Args::Id(crate::store::id::stem(digest)))
            .await
            .map(drop)
    }
}

crate::store::actix::actix_store!(PostgresSessionStore, s => s);
