//! The policy's tests, run against the counters in process memory here, and by
//! [`policy_tests!`] against each engine's counters that a unit test can open (in the engine's
//! folder; those behind a server in `tests/shared_state.rs`), so that each keeps the same policy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

const FROM_A: Origin<'static> = Origin {
    address: Some("1.2.3.4"),
    device: None,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A fixed wall-clock start, so that the tests do not depend on today's date.
fn start() -> SystemTime {
    UNIX_EPOCH + secs(1_800_000_000)
}

fn wait_of<T>(r: Result<T, Refused>) -> Option<Duration> {
    r.err().and_then(|e| e.wait())
}

pub(crate) fn free_attempts_then_doubling_delays_capped_at_the_window(t: LoginThrottle) {
    let start = start();
    for i in 0..3 {
        let r = t
            .reserve_login("alice", FROM_A, start)
            .expect("free attempt");
        assert_eq!(r.keys.len(), 3, "attempt {i}");
    }
    assert_eq!(
        wait_of(t.reserve_login("alice", FROM_A, start)),
        Some(secs(1))
    );
    let _ = t
        .reserve_login("alice", FROM_A, start + secs(1))
        .expect("after 1 s");
    assert_eq!(
        wait_of(t.reserve_login("alice", FROM_A, start + secs(1))),
        Some(secs(2))
    );
    let mut at = start + secs(3);
    for _ in 0..10 {
        let wait = match t.reserve_login("alice", FROM_A, at) {
            Ok(_) => Duration::ZERO,
            Err(refused) => refused.wait().expect("a wait"),
        };
        assert!(wait <= secs(60), "{wait:?}");
        at += wait;
    }
    // Another address is not slowed by this pair's failures (below the wide limits).
    let elsewhere = Origin {
        address: Some("5.6.7.8"),
        device: None,
    };
    assert!(t.reserve_login("alice", elsewhere, start + secs(2)).is_ok());
}

pub(crate) fn a_success_takes_back_its_attempt_and_clears_its_pair(t: LoginThrottle) {
    let now = start();
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
pub(crate) fn an_owner_on_a_new_browser_gets_in_whatever_others_guess(
    t: LoginThrottle,
    minutes: u64,
) {
    let start = start();
    let owner = Origin {
        address: Some("192.0.2.1"),
        device: None,
    };
    for minute in 0..minutes {
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
            .unwrap_or_else(|refused| panic!("minute {minute}: the owner waits: {refused:?}"));
        t.succeeded(attempt);
    }
}

pub(crate) fn a_known_device_is_counted_apart(t: LoginThrottle) {
    let now = start();
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

pub(crate) fn one_address_is_slowed_across_user_ids_and_for_registrations(t: LoginThrottle) {
    let now = start();
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
    assert_eq!(
        wait_of(t.reserve_registration(Some("8.8.8.8"), now)),
        Some(secs(1))
    );
}

pub(crate) fn attempts_leave_the_count_after_the_window(t: LoginThrottle) {
    let now = start();
    for _ in 0..2 {
        let _ = t.reserve_login("erin", FROM_A, now).expect("free");
    }
    let _ = t
        .reserve_login("erin", FROM_A, now + secs(59))
        .expect("a second after the last");
    // The first two left the window: one attempt is counted, then a second is free, then a
    // third waits 1 s (with the first two still counted it would wait 4 s).
    let _ = t
        .reserve_login("erin", FROM_A, now + secs(60))
        .expect("in the window: 1");
    assert_eq!(
        wait_of(t.reserve_login("erin", FROM_A, now + secs(60))),
        Some(secs(1))
    );
}

/// Every policy test against the throttles `make` builds (a fresh one each).
macro_rules! policy_tests {
    ($backend:ident, $make:expr, $minutes:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn free_attempts_then_doubling_delays_capped_at_the_window() {
                $crate::web::throttle::tests::free_attempts_then_doubling_delays_capped_at_the_window($make(3, 60));
            }

            #[test]
            fn a_success_takes_back_its_attempt_and_clears_its_pair() {
                $crate::web::throttle::tests::a_success_takes_back_its_attempt_and_clears_its_pair($make(2, 60));
            }

            #[test]
            fn an_owner_on_a_new_browser_gets_in_whatever_others_guess() {
                $crate::web::throttle::tests::an_owner_on_a_new_browser_gets_in_whatever_others_guess(
                    $make(5, 900),
                    $minutes,
                );
            }

            #[test]
            fn a_known_device_is_counted_apart() {
                $crate::web::throttle::tests::a_known_device_is_counted_apart($make(2, 60));
            }

            #[test]
            fn one_address_is_slowed_across_user_ids_and_for_registrations() {
                $crate::web::throttle::tests::one_address_is_slowed_across_user_ids_and_for_registrations($make(2, 60));
            }

            #[test]
            fn attempts_leave_the_count_after_the_window() {
                $crate::web::throttle::tests::attempts_leave_the_count_after_the_window($make(2, 60));
            }
        }
    };
}
pub(crate) use policy_tests;

fn memory(free: u32, window: u64) -> LoginThrottle {
    LoginThrottle::new(free, secs(window))
}

policy_tests!(in_memory, memory, 120);

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
    let counters = std::sync::Arc::new(InProcessCounters::default());
    struct Shared(std::sync::Arc<InProcessCounters>);
    impl Counters for Shared {
        fn reserve(&self, plan: &Plan) -> Result<Option<Duration>, ThrottleError> {
            self.0.reserve(plan)
        }
        fn give_back(&self, k: &[String], c: &[String], m: &str) -> Result<(), ThrottleError> {
            self.0.give_back(k, c, m)
        }
    }
    let t = LoginThrottle::with_counters(5, secs(900), Box::new(Shared(counters.clone())));
    let now = start();
    for i in 0..(100_000 / 3 + 10) {
        let address = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        let from = Origin {
            address: Some(&address),
            device: None,
        };
        drop(t.reserve_login(&format!("u{i}"), from, now));
    }
    let pruned_at = counters.pruned_at();
    assert!(pruned_at.is_some(), "pruned once past the size");
    drop(t.reserve_login("x", FROM_A, now));
    assert_eq!(
        counters.pruned_at(),
        pruned_at,
        "not again within the second"
    );
}
