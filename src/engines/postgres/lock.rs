//! `lock = true` across servers in PostgreSQL: rows of `<table>_locks`, taken by an upsert that
//! succeeds only if the row is free, expired (by the database's clock) or already this token's,
//! and deleted only while they hold this request's token.

use std::time::Duration;

use super::Postgres;
use crate::web::lock::{EngineLocks, LockError};

/// Rows of `<table>_locks`.
pub struct PostgresLocks {
    db: Postgres,
    take: String,
    release: String,
}

impl PostgresLocks {
    /// Locks in `<table>_locks`, which the sessions store's schema creates.
    pub fn new(db: Postgres, table: &str) -> Self {
        let locks = format!("{table}_locks");
        Self {
            db,
            take: format!(
                "INSERT INTO {locks} (id, token, until) \
                 VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond') \
                 ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token, until = EXCLUDED.until \
                 WHERE {locks}.until <= now() OR {locks}.token = EXCLUDED.token"
            ),
            release: format!("DELETE FROM {locks} WHERE id = $1 AND token = $2"),
        }
    }
}

impl EngineLocks for PostgresLocks {
    fn try_take(&self, stem: &str, token: &str, ttl: Duration) -> Result<bool, LockError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let (sql, stem, token) = (self.take.clone(), stem.to_owned(), token.to_owned());
        let taken = self.db.run_blocking(move |c| async move {
            c.execute(sql.as_str(), &[&stem, &token, &ttl_ms]).await
        })?;
        Ok(taken == 1)
    }

    fn release(&self, stem: &str, token: &str) -> Result<bool, LockError> {
        let (sql, stem, token) = (self.release.clone(), stem.to_owned(), token.to_owned());
        let deleted = self
            .db
            .run_blocking(move |c| async move { c.execute(sql.as_str(), &[&stem, &token]).await })?;
        Ok(deleted == 1)
    }
}
