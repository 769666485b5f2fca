//! `lock = true` across servers in Redis: `SET <key_prefix>lock:<stem> <token> NX PX <ttl> GET`,
//! released by a script that deletes the key only while it holds this request's token. The
//! retry loop and the release in the background are [`crate::web::lock::EngineLock`]'s.

use std::time::Duration;

use redis::Script;

use super::RedisBlocking;
use crate::web::lock::{EngineLocks, LockError};

/// Deletes KEYS[1] if it holds ARGV[1].
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// Keys `<key_prefix>lock:<stem>` in one Redis (or Cluster).
pub struct RedisLocks {
    redis: RedisBlocking,
    prefix: String,
    release: Script,
}

impl RedisLocks {
    pub fn new(redis: RedisBlocking, key_prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{key_prefix}lock:"),
            release: Script::new(RELEASE),
        }
    }
}

impl EngineLocks for RedisLocks {
    /// `GET` makes a try whose answer was lost (and that was sent again on another connection)
    /// find its own token: taken, not "held by another".
    fn try_take(&self, stem: &str, token: &str, ttl: Duration) -> Result<bool, LockError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let before: Option<String> = self.redis.run(|conn| {
            redis::cmd("SET")
                .arg(format!("{}{stem}", self.prefix))
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .arg("GET")
                .query(conn)
        })?;
        Ok(before.is_none_or(|held| held == token))
    }

    fn release(&self, stem: &str, token: &str) -> Result<bool, LockError> {
        let key = format!("{}{stem}", self.prefix);
        let deleted: i64 = self
            .redis
            .run(|conn| self.release.key(&key).arg(token).invoke(conn))?;
        Ok(deleted == 1)
    }
}
