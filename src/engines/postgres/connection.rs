//! Connections to the PostgreSQL database of `[session.postgres]`, for everything kept there:
//! sessions (`store::postgres`), user accounts, login throttling and session locks.
//!
//! One pool (deadpool-postgres) whose connections all live on this handle's own runtime
//! ([`EngineRuntime`]: why).
//!
//! Nothing connects at start: a connection is made when first needed and again after a failure,
//! so that a server started while the database is down starts and recovers by itself. Every
//! query is bounded by `command_timeout` (on the server too: `statement_timeout`), and
//! connecting by `connect_timeout`.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;

use super::config::PostgresConfig;
use crate::engines::runtime::{EngineRuntime, RuntimeError};

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The database refused or failed a statement, or the connection broke.
    #[error("postgres: {}", with_causes(.0))]
    Db(#[from] tokio_postgres::Error),
    /// No connection, or no answer, within the configured time.
    #[error("postgres: no answer within {0:?}")]
    Timeout(Duration),
    /// No connection could be made.
    #[error("postgres: no connection: {0}")]
    Connect(String),
    /// The handle's runtime could not be started, or its task was lost.
    #[error("postgres: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("postgres: the pool could not be built: {0}")]
    Pool(String),
    #[error("postgres: {0}")]
    Tls(#[from] super::tls::PgTlsError),
}

/// `e` and what caused it: tokio-postgres says "error performing TLS handshake" and keeps the
/// reason (which certificate check failed) in its source.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

impl PostgresError {
    /// The SQLSTATE the database answered with, if it answered.
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            Self::Db(e) => e.code(),
            _ => None,
        }
    }
}

/// A pool of connections to one database. Cheap to clone: clones share the pool and runtime.
#[derive(Clone)]
pub struct Postgres {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The URL, password masked, for error lines.
    address: String,
    runtime: EngineRuntime,
    command_timeout: Duration,
    connect_timeout: Duration,
}

impl Postgres {
    /// Checks the URL and builds the pool, without connecting.
    pub fn new(config: &PostgresConfig) -> Result<Self, PostgresError> {
        let (driver_url, tls) = super::tls::split(&config.url)?;
        let connector = super::tls::connector(&tls)?;
        if tls.unverified() && tls.mode == super::tls::SslMode::Require {
            tracing::warn!(
                "[session.postgres] url: {}; anyone between here and the database could read \
                 and change the sessions: add sslrootcert and sslmode=verify-full",
                tls.describe()
            );
        }
        let mut pg = tokio_postgres::Config::from_str(&driver_url)?;
        pg.connect_timeout(config.connect_timeout);
        // A database that vanished (a failover, a dropped NAT entry) is noticed by the kernel
        // within a minute instead of the default two hours.
        pg.keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        pg.application_name("session-server");
        // The server ends a statement the client has stopped waiting for.
        let statement_ms = config.command_timeout.as_millis();
        pg.options(format!("-c statement_timeout={statement_ms}"));
        let manager = Manager::from_config(
            pg,
            connector,
            ManagerConfig {
                // A connection the server closed is seen as closed and replaced; one that broke
                // silently fails one query and is then replaced.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let runtime = EngineRuntime::start("postgres-io")?;
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| PostgresError::Pool(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                address: crate::config::shown::masked(&config.url),
                runtime,
                command_timeout: config.command_timeout,
                connect_timeout: config.connect_timeout,
            }),
        })
    }

    /// Where the database is (its URL, password masked), for error lines.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// Runs `work` with a pooled connection on the handle's runtime, from any async context.
    pub async fn run<T, F, Fut>(&self, work: F) -> Result<T, PostgresError>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        self.inner.runtime.run(self.task(work)).await?
    }

    /// As [`Self::run`], for a caller on a plain or blocking thread (never an async worker):
    /// blocks until done.
    pub fn run_blocking<T, F, Fut>(&self, work: F) -> Result<T, PostgresError>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        self.inner.runtime.run_blocking(self.task(work))?
    }

    fn task<T, F, Fut>(&self, work: F) -> impl Future<Output = Result<T, PostgresError>> + Send
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        async move {
            let client = inner.pool.get().await.map_err(|e| {
                use deadpool_postgres::{PoolError, TimeoutType};
                // No connection could be made (not: all were busy): said once at warn with the
                // address, then summarised.
                if matches!(e, PoolError::Backend(_) | PoolError::Timeout(TimeoutType::Create)) {
                    crate::telemetry::engine_unreachable("postgres", &inner.address, &e);
                }
                match e {
                    PoolError::Timeout(_) => PostgresError::Timeout(inner.connect_timeout),
                    PoolError::Backend(e) => PostgresError::Db(e),
                    other => PostgresError::Connect(other.to_string()),
                }
            })?;
            match tokio::time::timeout(inner.command_timeout, work(client)).await {
                Ok(result) => Ok(result?),
                Err(_) => Err(PostgresError::Timeout(inner.command_timeout)),
            }
        }
    }
}

/// Tables a module needs, made once per process by the first call that reaches the database
/// (`CREATE ... IF NOT EXISTS`), so that a server starts while the database is down.
pub struct Schema {
    sql: String,
    ready: std::sync::atomic::AtomicBool,
}

/// What `CREATE ... IF NOT EXISTS` answers when another session creates the same object at the
/// same moment (PostgreSQL checks existence before it takes the catalog's lock): the row in
/// `pg_type` or `pg_class` already taken, the type or the table already there.
fn is_creation_race(e: &PostgresError) -> bool {
    [
        SqlState::UNIQUE_VIOLATION,
        SqlState::DUPLICATE_OBJECT,
        SqlState::DUPLICATE_TABLE,
    ]
    .iter()
    .any(|code| e.code() == Some(code))
}

impl Schema {
    pub fn new(sql: String) -> Self {
        Self {
            sql,
            ready: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The statements, for an error that asks the database's owner to run them.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Two servers creating the tables at once: one of them wins, and so they are there.
    fn made(&self, result: Result<(), PostgresError>) -> Result<(), PostgresError> {
        match result {
            Err(e) if !is_creation_race(&e) => Err(e),
            _ => {
                self.ready.store(true, std::sync::atomic::Ordering::Release);
                Ok(())
            }
        }
    }

    pub async fn ensure(&self, db: &Postgres) -> Result<(), PostgresError> {
        if self.is_ready() {
            return Ok(());
        }
        let run = || {
            let sql = self.sql.clone();
            db.run(move |c| async move { c.batch_execute(&sql).await })
        };
        match run().await {
            // Another server (or another request of this one) was creating them at the same
            // moment: once more, now that they are there or being made, to be sure all are.
            Err(e) if is_creation_race(&e) => self.made(run().await),
            other => self.made(other),
        }
    }

    /// As [`Self::ensure`], from a blocking thread.
    pub fn ensure_blocking(&self, db: &Postgres) -> Result<(), PostgresError> {
        if self.is_ready() {
            return Ok(());
        }
        let run = || {
            let sql = self.sql.clone();
            db.run_blocking(move |c| async move { c.batch_execute(&sql).await })
        };
        match run() {
            Err(e) if is_creation_race(&e) => self.made(run()),
            other => self.made(other),
        }
    }
}
