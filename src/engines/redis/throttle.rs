//! Counters in Redis: the throttle of the `redis` session type, shared by every server using
//! that Redis. Each key is a sorted set of its attempts (member: a unique attempt name, score:
//! its unix ms) at `<key_prefix>{throttle}:<key name>`, expiring a window after its latest
//! attempt. A reservation is one Lua script (trim, count, decide, add), which Redis runs
//! alone, so two servers never both see the count under the limit. A script may only touch
//! keys of one Cluster slot: the `{throttle}` hash tag puts every counter in one.
//!
//! The script decides as [`Plan::wait`] does; the same policy tests run against it
//! (`tests/shared_state.rs`).

use std::time::Duration;

use redis::Script;

use crate::web::throttle::{Counters, Plan, Role, ThrottleError};
use super::blocking::RedisBlocking;

/// KEYS: the plan's keys. ARGV: now, window, member, then per key: free, role (p, c, g, k as
/// in [`role_code`]). Returns the wait in ms, 0 when the attempt was added.
const RESERVE: &str = r#"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local member = ARGV[3]
local counts, latest, free, role = {}, {}, {}, {}
local pair_failed = false
for i, key in ipairs(KEYS) do
  free[i] = tonumber(ARGV[2 + 2 * i])
  role[i] = ARGV[3 + 2 * i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  counts[i] = redis.call('ZCARD', key)
  latest[i] = 0
  if counts[i] > 0 then
    latest[i] = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    if role[i] == 'p' then pair_failed = true end
  end
end
local longest = 0
for i = 1, #KEYS do
  if (pair_failed or role[i] ~= 'g') and counts[i] >= free[i] then
    local over = counts[i] - free[i]
    local delay = window
    if over < 52 then delay = math.min(1000 * 2 ^ over, window) end
    local wait = latest[i] + delay - now
    if wait > longest then longest = wait end
  end
end
if longest > 0 then return longest end
for i, key in ipairs(KEYS) do
  if role[i] ~= 'k' then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
  end
end
return 0
"#;

/// KEYS: the keys to clear, then those to take ARGV[2] from; ARGV[1]: how many to clear.
const GIVE_BACK: &str = r#"
local clear = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if i <= clear then redis.call('DEL', key) else redis.call('ZREM', key, ARGV[2]) end
end
return 0
"#;

pub struct RedisCounters {
    redis: RedisBlocking,
    prefix: String,
    reserve: Script,
    give_back: Script,
}

impl RedisCounters {
    pub fn new(redis: RedisBlocking, key_prefix: &str) -> Self {
        Self {
            redis,
            prefix: format!("{key_prefix}{{throttle}}:"),
            reserve: Script::new(RESERVE),
            give_back: Script::new(GIVE_BACK),
        }
    }
}

fn role_code(role: Role) -> &'static str {
    match role {
        Role::Pair => "p",
        Role::Counted => "c",
        Role::Gated => "g",
        Role::Checked => "k",
    }
}

impl Counters for RedisCounters {
    fn reserve(&self, plan: &Plan) -> Result<Option<Duration>, ThrottleError> {
        let mut call = self.reserve.prepare_invoke();
        call.arg(plan.now).arg(plan.window).arg(&plan.member);
        for entry in &plan.entries {
            call.key(format!("{}{}", self.prefix, entry.name))
                .arg(entry.free)
                .arg(role_code(entry.role));
        }
        let wait: u64 = self.redis.run(|conn| call.invoke(conn))?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }

    fn give_back(
        &self,
        keys: &[String],
        clear: &[String],
        member: &str,
    ) -> Result<(), ThrottleError> {
        let mut call = self.give_back.prepare_invoke();
        call.arg(clear.len()).arg(member);
        for key in clear.iter().chain(keys) {
            call.key(format!("{}{key}", self.prefix));
        }
        let _: i64 = self.redis.run(|conn| call.invoke(conn))?;
        Ok(())
    }
}
