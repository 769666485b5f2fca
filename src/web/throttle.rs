//! Login throttling: after `max_failed_logins` failures for one user id within
//! `failed_login_window`, or four times as many from one client address, further attempts are
//! answered 429 with `Retry-After` until the oldest failure leaves the window. Counted per
//! process; behind a reverse proxy the client address is the proxy's.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many more failures an address may have than a user id (several users behind one NAT).
const ADDRESS_FACTOR: u32 = 4;
/// Past this many tracked keys, keys with no failure left in the window are dropped.
const PRUNE_AT: usize = 100_000;

/// Recent failed logins, by user id and by client address.
pub struct LoginThrottle {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(max_failed_logins: u32, window: Duration) -> Self {
        Self {
            max: max_failed_logins,
            window,
            failures: Mutex::default(),
        }
    }

    fn keys(user_id: &str, address: Option<&str>) -> [(String, u32); 2] {
        [
            (format!("user:{user_id}"), 1),
            (
                format!("addr:{}", address.unwrap_or("unknown")),
                ADDRESS_FACTOR,
            ),
        ]
    }

    /// How long to wait before another attempt for this user id from this address, if blocked.
    pub fn blocked_for(
        &self,
        user_id: &str,
        address: Option<&str>,
        now: Instant,
    ) -> Option<Duration> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::keys(user_id, address)
            .into_iter()
            .filter_map(|(key, factor)| {
                let recent = failures.get_mut(&key)?;
                self.forget_old(recent, now);
                let limit = usize::try_from(self.max.saturating_mul(factor)).unwrap_or(usize::MAX);
                if recent.len() < limit {
                    return None;
                }
                // Blocked until enough of the oldest failures leave the window.
                let oldest_that_counts = recent.get(recent.len() - limit)?;
                Some((*oldest_that_counts + self.window).saturating_duration_since(now))
            })
            .max()
    }

    /// Counts a failed attempt.
    pub fn record_failure(&self, user_id: &str, address: Option<&str>, now: Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= PRUNE_AT {
            failures.retain(|_, recent| {
                recent
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        for (key, _) in Self::keys(user_id, address) {
            let recent = failures.entry(key).or_default();
            self.forget_old(recent, now);
            recent.push_back(now);
        }
    }

    /// A successful login clears the user id's failures (not the address's).
    pub fn record_success(&self, user_id: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.remove(&format!("user:{user_id}"));
    }

    fn forget_old(&self, recent: &mut VecDeque<Instant>, now: Instant) {
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(
                t.blocked_for("alice", Some("1.2.3.4"), start),
                None,
                "attempt {i}"
            );
            t.record_failure("alice", Some("1.2.3.4"), start + Duration::from_secs(i));
        }
        let wait = t.blocked_for("alice", Some("5.6.7.8"), start + Duration::from_secs(10));
        assert_eq!(
            wait,
            Some(Duration::from_secs(50)),
            "per user id, from any address"
        );
        assert_eq!(
            t.blocked_for("bob", Some("1.2.3.4"), start),
            None,
            "address limit is higher"
        );
        assert_eq!(
            t.blocked_for("alice", None, start + Duration::from_secs(61)),
            None
        );
        t.record_success("alice");
        assert_eq!(t.blocked_for("alice", None, start), None);
    }

    #[test]
    fn one_address_is_limited_across_user_ids() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..8 {
            t.record_failure(&format!("user{i}"), Some("9.9.9.9"), now);
        }
        assert!(t
            .blocked_for("someone-else", Some("9.9.9.9"), now)
            .is_some());
        assert!(t
            .blocked_for("someone-else", Some("8.8.8.8"), now)
            .is_none());
    }
}
