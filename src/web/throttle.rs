//! Login and registration throttling. The policy (README, "Login protection"):
//!
//! - An attempt is counted *before* its password is checked (a [`Reservation`]), atomically
//!   with the check of the limits, so parallel guesses cannot all slip in under them. A
//!   success takes its own attempt back and clears the count it was made under.
//! - Failures are counted per (user id, address): `max_failed_logins` are free, after that each
//!   attempt waits 1 s, 2 s, 4 s, ... (at most `failed_login_window`) after the latest failure.
//!   A delay, not a wall: the owner can always get in, later.
//! - Per address across user ids, the same delays start after four times as many failures (a
//!   spray over many ids from one place). Addresses are counted by network for IPv6 (a /64,
//!   what one subscriber gets), so rotating through one's own addresses gains nothing.
//! - Per user id across addresses the same, but only for an attempt whose own (user id,
//!   address) has already failed in the window: an owner trying from a new browser at an
//!   address that has not been guessing from gets in, however many others guess; a distributed
//!   guesser gets one attempt per network before this delay holds it too.
//! - A browser holding the user's *known device* cookie (signed, set at a successful login) is
//!   counted only per (user id, device): failures of others, from anywhere, never slow it.
//! - Registrations count per address with the same delays, and wait while the address waits
//!   for login.
//!
//! Failures leave the counts `failed_login_window` after they happened. Counted per process;
//! behind a reverse proxy the client address is the proxy's.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How many more attempts an address (or a user id from all addresses) has than one
/// (user id, address) pair before delays start: several people behind one NAT.
const WIDE_FACTOR: u32 = 4;
/// Past this many tracked keys, keys with nothing left in the window are dropped, at most once
/// per [`PRUNE_EVERY`]: a flood of distinct keys must not make every attempt scan the table.
const PRUNE_AT: usize = 100_000;
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// The first delay; each further attempt doubles it.
const FIRST_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// One user id from one address, for browsers without the user's device cookie.
    UserAddress(String, String),
    /// One user id from one known device.
    UserDevice(String, String),
    /// One user id from every browser without its device cookie.
    User(String),
    /// One address, every user id, browsers without a device cookie.
    Address(String),
    /// Registrations from one address.
    Registrations(String),
}

/// Who is trying: the address, and the known-device id when the browser holds a device cookie
/// for this very user id.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub address: Option<&'a str>,
    pub device: Option<&'a str>,
}

/// A login attempt let through. It counts as a failure unless it is given back with
/// [`LoginThrottle::succeeded`] or [`LoginThrottle::abandoned`].
#[derive(Debug)]
#[must_use = "an attempt that is dropped counts as a failure"]
pub struct Reservation {
    keys: Vec<Key>,
    at: Instant,
}

/// Recent attempts, by the keys above.
pub struct LoginThrottle {
    free: u32,
    window: Duration,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    attempts: HashMap<Key, VecDeque<Instant>>,
    pruned_at: Option<Instant>,
}

/// The key a client address is counted under: an IPv4 address as it is (an IPv4-mapped IPv6
/// address as its IPv4 one), an IPv6 address by its /64 network.
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl LoginThrottle {
    pub fn new(max_failed_logins: u32, window: Duration) -> Self {
        Self {
            free: max_failed_logins,
            window,
            table: Mutex::default(),
        }
    }

    fn free_for(&self, key: &Key) -> u32 {
        match key {
            Key::UserAddress(..) | Key::UserDevice(..) => self.free,
            Key::User(_) | Key::Address(_) | Key::Registrations(_) => {
                self.free.saturating_mul(WIDE_FACTOR)
            }
        }
    }

    /// How long `key` must still wait, given its attempts within the window.
    fn wait(&self, key: &Key, recent: &VecDeque<Instant>, now: Instant) -> Option<Duration> {
        let count = u32::try_from(recent.len()).unwrap_or(u32::MAX);
        let over = count.checked_sub(self.free_for(key))?;
        let delay = FIRST_DELAY
            .checked_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
            .unwrap_or(self.window)
            .min(self.window);
        let until = recent.back()?.checked_add(delay)?;
        Some(until.saturating_duration_since(now)).filter(|w| !w.is_zero())
    }

    /// Lets a login attempt for `user_id` (case-folded) through and counts it, or says how long
    /// to wait.
    pub fn reserve_login(
        &self,
        user_id: &str,
        origin: Origin<'_>,
        now: Instant,
    ) -> Result<Reservation, Duration> {
        let keys = match origin.device {
            Some(device) => vec![Key::UserDevice(user_id.to_owned(), device.to_owned())],
            None => {
                let address = origin.address.unwrap_or("unknown").to_owned();
                vec![
                    Key::UserAddress(user_id.to_owned(), address.clone()),
                    Key::User(user_id.to_owned()),
                    Key::Address(address),
                ]
            }
        };
        self.reserve(keys, &[], now)
    }

    /// Counts a registration from `address`, or says how long to wait.
    pub fn reserve_registration(
        &self,
        address: Option<&str>,
        now: Instant,
    ) -> Result<(), Duration> {
        let address = address.unwrap_or("unknown").to_owned();
        self.reserve(
            vec![Key::Registrations(address.clone())],
            &[Key::Address(address)],
            now,
        )
        .map(drop)
    }

    /// Checks `counted` and `checked`, and if none must wait, adds an attempt to `counted`:
    /// under one lock, so that parallel attempts see each other.
    fn reserve(
        &self,
        counted: Vec<Key>,
        checked: &[Key],
        now: Instant,
    ) -> Result<Reservation, Duration> {
        let mut table = self.table.lock();
        let due = table
            .pruned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= PRUNE_EVERY);
        if table.attempts.len() >= PRUNE_AT && due {
            table.pruned_at = Some(now);
            table.attempts.retain(|_, recent| {
                recent
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < self.window)
            });
        }
        let attempts = &mut table.attempts;
        for key in counted.iter().chain(checked) {
            if let Some(recent) = attempts.get_mut(key) {
                forget_old(recent, now, self.window);
            }
        }
        // The user-wide count holds back only attempts from a pair that has failed itself.
        let pair_has_failed = counted.iter().any(|key| {
            matches!(key, Key::UserAddress(..))
                && attempts.get(key).is_some_and(|recent| !recent.is_empty())
        });
        let longest = counted
            .iter()
            .chain(checked)
            .filter(|key| pair_has_failed || !matches!(key, Key::User(_)))
            .filter_map(|key| self.wait(key, attempts.get(key)?, now))
            .max();
        if let Some(wait) = longest {
            return Err(wait);
        }
        for key in &counted {
            attempts.entry(key.clone()).or_default().push_back(now);
        }
        Ok(Reservation {
            keys: counted,
            at: now,
        })
    }

    /// The attempt was a successful login: it is taken back everywhere, and the failures of its
    /// (user id, address) or (user id, device) are forgotten.
    pub fn succeeded(&self, attempt: Reservation) {
        let attempts = &mut self.table.lock().attempts;
        for key in &attempt.keys {
            if matches!(key, Key::UserAddress(..) | Key::UserDevice(..)) {
                attempts.remove(key);
            } else if let Some(recent) = attempts.get_mut(key) {
                take_back(recent, attempt.at);
            }
        }
    }

    /// The attempt could not be judged (the user database failed): it does not count.
    pub fn abandoned(&self, attempt: Reservation) {
        let attempts = &mut self.table.lock().attempts;
        for key in &attempt.keys {
            if let Some(recent) = attempts.get_mut(key) {
                take_back(recent, attempt.at);
            }
        }
    }
}

fn forget_old(recent: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while recent
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        recent.pop_front();
    }
}

fn take_back(recent: &mut VecDeque<Instant>, at: Instant) {
    if let Some(i) = recent.iter().rposition(|t| *t == at) {
        recent.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM_A: Origin<'static> = Origin {
        address: Some("1.2.3.4"),
        device: None,
    };

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn free_attempts_then_doubling_delays_capped_at_the_window() {
        let t = LoginThrottle::new(3, secs(60));
        let start = Instant::now();
        for i in 0..3 {
            let r = t
                .reserve_login("alice", FROM_A, start)
                .expect("free attempt");
            assert_eq!(r.keys.len(), 3, "attempt {i}");
        }
        assert_eq!(
            t.reserve_login("alice", FROM_A, start).map(drop),
            Err(secs(1))
        );
        let _ = t
            .reserve_login("alice", FROM_A, start + secs(1))
            .expect("after 1 s");
        assert_eq!(
            t.reserve_login("alice", FROM_A, start + secs(1)).map(drop),
            Err(secs(2))
        );
        let mut at = start + secs(3);
        for _ in 0..10 {
            let wait = match t.reserve_login("alice", FROM_A, at) {
                Ok(_) => Duration::ZERO,
                Err(w) => w,
            };
            assert!(wait <= secs(60), "{wait:?}");
            at += wait;
        }
        // Another address is not slowed by this pair's failures (below the wide limits).
        assert!(t
            .reserve_login(
                "alice",
                Origin {
                    address: Some("5.6.7.8"),
                    device: None
                },
                start + secs(2)
            )
            .is_ok());
    }

    #[test]
    fn a_success_takes_back_its_attempt_and_clears_its_pair() {
        let t = LoginThrottle::new(2, secs(60));
        let now = Instant::now();
        let _ = t.reserve_login("bob", FROM_A, now).expect("1");
        let ok = t.reserve_login("bob", FROM_A, now).expect("2");
        t.succeeded(ok);
        assert!(t.reserve_login("bob", FROM_A, now).is_ok());
        let failed = t
            .reserve_login("bob", FROM_A, now)
            .expect("4: the pair was cleared");
        t.abandoned(failed);
        assert!(
            t.reserve_login("bob", FROM_A, now).is_ok(),
            "an abandoned one does not count"
        );
    }

    /// The review's starvation: an attacker polling from rotating addresses all day long must
    /// not keep the owner out, even on a browser that is not a known device.
    #[test]
    fn an_owner_on_a_new_browser_gets_in_whatever_others_guess() {
        let t = LoginThrottle::new(5, secs(900));
        let start = Instant::now();
        let owner = Origin {
            address: Some("192.0.2.1"),
            device: None,
        };
        for minute in 0..120u64 {
            let now = start + secs(minute * 60);
            for i in 0..100u32 {
                let address = format!("10.{}.{}.1", i, minute % 250);
                let from = Origin {
                    address: Some(&address),
                    device: None,
                };
                if let Ok(guess) = t.reserve_login("dave", from, now) {
                    drop(guess);
                }
            }
            let attempt = t
                .reserve_login("dave", owner, now + secs(1))
                .unwrap_or_else(|wait| panic!("minute {minute}: the owner waits {wait:?}"));
            t.succeeded(attempt);
        }
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let key = |s: &str| address_key(s.parse().expect("ip"));
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), key("2001:db8:1:2:ffff::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn a_flood_of_keys_prunes_at_most_once_a_second() {
        let t = LoginThrottle::new(5, secs(900));
        let now = Instant::now();
        for i in 0..(PRUNE_AT as u32 / 3 + 10) {
            let address = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            let from = Origin {
                address: Some(&address),
                device: None,
            };
            drop(t.reserve_login(&format!("u{i}"), from, now));
        }
        let pruned_at = t.table.lock().pruned_at;
        assert!(pruned_at.is_some(), "pruned once past the size");
        drop(t.reserve_login("x", FROM_A, now));
        assert_eq!(
            t.table.lock().pruned_at,
            pruned_at,
            "not again within the second"
        );
    }

    #[test]
    fn a_known_device_is_counted_apart() {
        let t = LoginThrottle::new(2, secs(60));
        let now = Instant::now();
        // A spread attack: every address has free attempts, the user id as a whole does not.
        for i in 0..8 {
            let address = format!("10.0.0.{i}");
            let from = Origin {
                address: Some(&address),
                device: None,
            };
            let _ = t.reserve_login("carol", from, now).expect("free");
        }
        let guessed_before = Origin {
            address: Some("10.0.0.0"),
            device: None,
        };
        assert!(
            t.reserve_login("carol", guessed_before, now).is_err(),
            "user-wide delay for an address that has guessed"
        );
        assert!(
            t.reserve_login("carol", FROM_A, now).is_ok(),
            "not for a new browser at an address that has not"
        );
        let device = Origin {
            address: Some("6.6.6.6"),
            device: Some("d1"),
        };
        assert!(t.reserve_login("carol", device, now).is_ok());
    }

    #[test]
    fn one_address_is_slowed_across_user_ids_and_for_registrations() {
        let t = LoginThrottle::new(2, secs(60));
        let now = Instant::now();
        for i in 0..8 {
            let _ = t.reserve_login(&format!("user{i}"), FROM_A, now);
        }
        assert!(t.reserve_login("someone-else", FROM_A, now).is_err());
        assert!(t.reserve_registration(Some("1.2.3.4"), now).is_err());
        let other = Origin {
            address: Some("8.8.8.8"),
            device: None,
        };
        assert!(t.reserve_login("someone-else", other, now).is_ok());
        for _ in 0..8 {
            assert!(t.reserve_registration(Some("8.8.8.8"), now).is_ok());
        }
        assert_eq!(t.reserve_registration(Some("8.8.8.8"), now), Err(secs(1)));
    }
}
