//! Accounts in Redis (`[auth] users = "redis"`, the default for `type = "redis"`): one hash per
//! user at `<key_prefix>{users}:user:<case-folded id>` (fields `spelling`, `name`, `hash`,
//! `created`) and one hash `<key_prefix>{users}:costs` counting stored hashes per bcrypt cost,
//! so that the highest cost in use is the same for every server.
//!
//! Every write is one Lua script that checks and changes the user and the cost counts together:
//! of two servers registering one id at once exactly one wins, and a re-hash lands only if the
//! hash is still the one the login checked. A script may only touch keys of one Cluster slot,
//! hence the `{users}` hash tag: every account lives in one slot. Accounts are small and read
//! once per login, so one slot is no bottleneck; sessions, the heavy traffic, spread over all.

use std::collections::HashMap;

use redis::Script;

use crate::users::{NewUser, Row, UserStorage};
use crate::users::UserError;
use super::blocking::RedisBlocking;

/// Adds the user unless the key exists, and counts its hash's cost.
const INSERT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'spelling', ARGV[1], 'name', ARGV[2], 'hash', ARGV[3], 'created', ARGV[4])
redis.call('HINCRBY', KEYS[2], ARGV[5], 1)
return 1
"#;

/// Replaces the hash if it is still ARGV[1], moving the count from its cost to the new one's.
const REPLACE_HASH: &str = r#"
if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[3], -1)
redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
return 1
"#;

/// Deletes the user, taking its hash out of the cost counts.
const REMOVE: &str = r#"
local hash = redis.call('HGET', KEYS[1], 'hash')
if not hash then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
return 1
"#;

/// Accounts in one Redis (or Cluster).
pub struct RedisUsers {
    redis: RedisBlocking,
    prefix: String,
    insert: Script,
    replace_hash: Script,
    remove: Script,
}

impl RedisUsers {
    pub fn new(redis: RedisBlocking, key_prefix: &str) -> Self {
        Self {
            redis,
            prefix: key_prefix.to_owned(),
            insert: Script::new(INSERT),
            replace_hash: Script::new(REPLACE_HASH),
            remove: Script::new(REMOVE),
        }
    }

    fn user_key(&self, key: &str) -> String {
        format!("{}{{users}}:user:{key}", self.prefix)
    }

    fn costs_key(&self) -> String {
        format!("{}{{users}}:costs", self.prefix)
    }
}

/// The cost field a hash is counted under: its bcrypt cost, or 0 for anything else (never
/// the highest: costs below 4 are not bcrypt's).
fn cost_field(hash: &str) -> u32 {
    crate::users::cost_of(hash).unwrap_or(0)
}

impl UserStorage for RedisUsers {
    fn find(&self, key: &str) -> Result<Option<Row>, UserError> {
        let fields: Vec<Option<String>> = self.redis.run(|conn| {
            redis::cmd("HMGET")
                .arg(self.user_key(key))
                .arg(&["spelling", "name", "hash"])
                .query(conn)
        })?;
        match fields.as_slice() {
            [None, None, None] => Ok(None),
            [Some(id), Some(name), Some(hash)] => Ok(Some(Row {
                id: id.clone(),
                name: name.clone(),
                password_hash: hash.clone(),
            })),
            _ => Err(UserError::Damaged {
                key: key.to_owned(),
            }),
        }
    }

    fn insert(&self, user: &NewUser) -> Result<bool, UserError> {
        let added: i64 = self.redis.run(|conn| {
            self.insert
                .key(self.user_key(&user.key))
                .key(self.costs_key())
                .arg(&user.row.id)
                .arg(&user.row.name)
                .arg(&user.row.password_hash)
                .arg(&user.created_at)
                .arg(cost_field(&user.row.password_hash))
                .invoke(conn)
        })?;
        Ok(added == 1)
    }


    fn replace_hash(&self, key: &str, old: &str, new: &str) -> Result<bool, UserError> {
        let changed: i64 = self.redis.run(|conn| {
            self.replace_hash
                .key(self.user_key(key))
                .key(self.costs_key())
                .arg(old)
                .arg(new)
                .arg(cost_field(old))
                .arg(cost_field(new))
                .invoke(conn)
        })?;
        Ok(changed == 1)
    }

    fn list(&self) -> Result<Vec<(String, Row, String)>, UserError> {
        if self.redis.is_cluster() {
            return Err(UserError::Unsupported(
                "listing the accounts of a Redis Cluster (no single SCAN sees its keys)",
            ));
        }
        let prefix = format!("{}{{users}}:user:", self.prefix);
        let pattern = format!("{}*", super::blocking::glob_escape(&prefix));
        let keys: Vec<String> = self.redis.run(|conn| {
            let mut keys = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(conn)?;
                keys.extend(batch);
                if next == 0 {
                    return Ok(keys);
                }
                cursor = next;
            }
        })?;
        let mut users = Vec::with_capacity(keys.len());
        for full in keys {
            let Some(key) = full.strip_prefix(&prefix) else {
                continue;
            };
            let fields: Vec<Option<String>> = self.redis.run(|conn| {
                redis::cmd("HMGET")
                    .arg(&full)
                    .arg(&["spelling", "name", "hash", "created"])
                    .query(conn)
            })?;
            if let [Some(id), Some(name), Some(hash), created] = fields.as_slice() {
                let row = Row {
                    id: id.clone(),
                    name: name.clone(),
                    password_hash: hash.clone(),
                };
                users.push((key.to_owned(), row, created.clone().unwrap_or_default()));
            }
        }
        users.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(users)
    }

    fn remove(&self, key: &str) -> Result<bool, UserError> {
        let Some(row) = self.find(key)? else {
            return Ok(false);
        };
        let removed: i64 = self.redis.run(|conn| {
            self.remove
                .key(self.user_key(key))
                .key(self.costs_key())
                .arg(cost_field(&row.password_hash))
                .invoke(conn)
        })?;
        Ok(removed == 1)
    }

    fn highest_cost(&self) -> Result<Option<u32>, UserError> {
        let counts: HashMap<u32, i64> = self
            .redis
            .run(|conn| redis::cmd("HGETALL").arg(self.costs_key()).query(conn))?;
        Ok(counts
            .into_iter()
            .filter(|&(cost, users)| users > 0 && (4..=31).contains(&cost))
            .map(|(cost, _)| cost)
            .max())
    }
}

impl crate::users::UserDb {
    /// Accounts in the Redis of `redis`, keys starting with `key_prefix`; `legacy` is imported
    /// into it as into a file.
    pub fn open_redis(
        redis: RedisBlocking,
        key_prefix: &str,
        legacy: Option<&std::path::Path>,
        cost: u32,
    ) -> Result<Self, UserError> {
        Self::over(Box::new(RedisUsers::new(redis, key_prefix)), legacy, cost)
    }
}
