//! Counters in a table of the user database's SQLite file (`[auth] users_db`): the throttle of
//! every session type whose engine keeps no counters, shared by every server process on the
//! machine. A reservation
//! is one `BEGIN IMMEDIATE` transaction (trim, count, decide, add), so two processes never both
//! see the count under the limit. Rows older than the window are deleted as keys are touched,
//! and across the table at most once a second.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, TransactionBehavior};

use crate::engines::EngineError;
use crate::web::throttle::{Counters, Plan, Recent, ThrottleError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS throttle_attempts (
    key TEXT NOT NULL,
    at INTEGER NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (key, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS throttle_attempts_at ON throttle_attempts (at);
";

/// How often, at most, the whole table is cleared of attempts past the window.
const PRUNE_EVERY_MS: u64 = 1_000;

pub struct SqliteCounters {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// When this process last cleared the whole table (unix ms).
    pruned_at: Mutex<u64>,
}

impl SqliteCounters {
    /// Opens the database at `path` (created private as the user database is) and adds the
    /// table if it is missing.
    pub fn open(path: &Path) -> Result<Self, ThrottleError> {
        let conn = super::users::open(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            pruned_at: Mutex::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Counters for SqliteCounters {
    fn reserve(&self, plan: &Plan) -> Result<Option<Duration>, ThrottleError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let oldest_kept = plan.now.saturating_sub(plan.window).saturating_add(1);
        let oldest_kept = i64::try_from(oldest_kept).unwrap_or(i64::MAX);
        {
            let mut pruned_at = self.pruned_at.lock();
            if plan.now.saturating_sub(*pruned_at) >= PRUNE_EVERY_MS {
                *pruned_at = plan.now;
                tx.prepare_cached("DELETE FROM throttle_attempts WHERE at < ?1")?
                    .execute([oldest_kept])?;
            }
        }
        let mut recent = Vec::with_capacity(plan.entries.len());
        for entry in &plan.entries {
            tx.prepare_cached("DELETE FROM throttle_attempts WHERE key = ?1 AND at < ?2")?
                .execute(params![entry.name, oldest_kept])?;
            let (count, latest): (i64, Option<i64>) = tx
                .prepare_cached("SELECT count(*), max(at) FROM throttle_attempts WHERE key = ?1")?
                .query_row([&entry.name], |r| Ok((r.get(0)?, r.get(1)?)))?;
            recent.push(Recent {
                count: u64::try_from(count).unwrap_or(0),
                latest: latest.and_then(|t| u64::try_from(t).ok()).unwrap_or(0),
            });
        }
        if let Some(wait) = plan.wait(&recent) {
            tx.commit()?;
            return Ok(Some(wait));
        }
        let now = i64::try_from(plan.now).unwrap_or(i64::MAX);
        for entry in plan.counted() {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO throttle_attempts (key, at, member) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![entry.name, now, plan.member])?;
        }
        tx.commit()?;
        Ok(None)
    }

    fn give_back(
        &self,
        keys: &[String],
        clear: &[String],
        member: &str,
    ) -> Result<(), ThrottleError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for key in clear {
            tx.prepare_cached("DELETE FROM throttle_attempts WHERE key = ?1")?
                .execute([key])?;
        }
        for key in keys {
            tx.prepare_cached("DELETE FROM throttle_attempts WHERE key = ?1 AND member = ?2")?
                .execute([key, member])?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl From<rusqlite::Error> for ThrottleError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Engine(EngineError::new(e))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::SqliteCounters;
    use crate::web::throttle::{Counters, LoginThrottle, Plan, ThrottleError};

    /// SQLite counters with the folder of their file, removed when the throttle is dropped.
    struct InTempDir {
        counters: SqliteCounters,
        _dir: tempfile::TempDir,
    }

    impl Counters for InTempDir {
        fn reserve(&self, plan: &Plan) -> Result<Option<Duration>, ThrottleError> {
            self.counters.reserve(plan)
        }
        fn give_back(&self, k: &[String], c: &[String], m: &str) -> Result<(), ThrottleError> {
            self.counters.give_back(k, c, m)
        }
    }

    fn sqlite(free: u32, window: u64) -> LoginThrottle {
        let dir = tempfile::tempdir().expect("tempdir");
        let counters = SqliteCounters::open(&dir.path().join("users.db")).expect("open");
        let counters = InTempDir {
            counters,
            _dir: dir,
        };
        LoginThrottle::with_counters(free, Duration::from_secs(window), Box::new(counters))
    }

    // Fewer minutes: each attempt is a SQLite transaction, and 120 x 100 of them add nothing
    // the in-memory run does not show.
    crate::web::throttle::tests::policy_tests!(in_sqlite, sqlite, 20);
}
