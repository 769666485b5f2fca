//! Counters in PostgreSQL: the throttle of the `postgres` session type, shared by every server on
//! that database. One row per attempt in `<table>_throttle` (key, attempt name, time in unix ms).
//! A reservation is one transaction that first takes a transaction advisory lock per key (in a
//! fixed order, so two reservations never deadlock), then trims, counts, decides and adds: two
//! servers never both see the count under the limit. Times are the reserving server's, as with
//! the other engines' counters (the policy's tests drive them), so the servers' clocks must agree (NTP).

use std::time::Duration;

use crate::web::throttle::{Counters, Plan, Recent, ThrottleError};
use super::connection::{Postgres, Schema};

pub struct PostgresCounters {
    db: Postgres,
    schema: Schema,
    sql: Sql,
}

#[derive(Clone)]
struct Sql {
    trim: String,
    count: String,
    add: String,
    clear: String,
    take_back: String,
}

impl PostgresCounters {
    /// Counters in `<table>_throttle`, created at the first reservation.
    pub fn new(db: Postgres, table: &str) -> Self {
        let t = format!("{table}_throttle");
        Self {
            db,
            schema: Schema::new(format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n    \
                     key text NOT NULL,\n    \
                     member text NOT NULL,\n    \
                     at bigint NOT NULL,\n    \
                     PRIMARY KEY (key, member)\n);\n\
                     CREATE INDEX IF NOT EXISTS {t}_at ON {t} (at);"
            )),
            sql: Sql {
                trim: format!("DELETE FROM {t} WHERE key = $1 AND at < $2"),
                count: format!("SELECT count(*), max(at) FROM {t} WHERE key = $1"),
                add: format!(
                    "INSERT INTO {t} (key, member, at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING"
                ),
                clear: format!("DELETE FROM {t} WHERE key = $1"),
                take_back: format!("DELETE FROM {t} WHERE key = $1 AND member = $2"),
            },
        }
    }

    fn ready(&self) -> Result<(), ThrottleError> {
        Ok(self.schema.ensure_blocking(&self.db)?)
    }
}

/// Serializes the transactions touching `keys` across every server: one advisory lock per key,
/// taken in sorted order, held until the transaction ends.
async fn lock_keys(
    tx: &tokio_postgres::Transaction<'_>,
    keys: &[String],
) -> Result<(), tokio_postgres::Error> {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    sorted.dedup();
    for key in sorted {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[key],
        )
        .await?;
    }
    Ok(())
}

impl Counters for PostgresCounters {
    fn reserve(&self, plan: &Plan) -> Result<Option<Duration>, ThrottleError> {
        self.ready()?;
        let (sql, plan) = (self.sql.clone(), plan.clone());
        let wait = self.db.run_blocking(move |mut c| async move {
            let tx = c.transaction().await?;
            let names: Vec<String> = plan.entries.iter().map(|e| e.name.clone()).collect();
            lock_keys(&tx, &names).await?;
            let now = i64::try_from(plan.now).unwrap_or(i64::MAX);
            let window = i64::try_from(plan.window).unwrap_or(i64::MAX);
            let oldest_kept = now.saturating_sub(window).saturating_add(1);
            let mut recent = Vec::with_capacity(plan.entries.len());
            for name in &names {
                tx.execute(sql.trim.as_str(), &[name, &oldest_kept]).await?;
                let row = tx.query_one(sql.count.as_str(), &[name]).await?;
                let (count, latest): (i64, Option<i64>) = (row.get(0), row.get(1));
                recent.push(Recent {
                    count: u64::try_from(count).unwrap_or(0),
                    latest: latest.and_then(|t| u64::try_from(t).ok()).unwrap_or(0),
                });
            }
            if let Some(wait) = plan.wait(&recent) {
                tx.commit().await?;
                return Ok(Some(wait));
            }
            for entry in plan.counted() {
                tx.execute(sql.add.as_str(), &[&entry.name, &plan.member, &now])
                    .await?;
            }
            tx.commit().await?;
            Ok(None)
        })?;
        Ok(wait)
    }

    fn give_back(
        &self,
        keys: &[String],
        clear: &[String],
        member: &str,
    ) -> Result<(), ThrottleError> {
        self.ready()?;
        let sql = self.sql.clone();
        let (keys, clear, member) = (keys.to_vec(), clear.to_vec(), member.to_owned());
        self.db.run_blocking(move |mut c| async move {
            let tx = c.transaction().await?;
            let all: Vec<String> = keys.iter().chain(&clear).cloned().collect();
            lock_keys(&tx, &all).await?;
            for key in &clear {
                tx.execute(sql.clear.as_str(), &[key]).await?;
            }
            for key in &keys {
                tx.execute(sql.take_back.as_str(), &[key, &member]).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }
}
