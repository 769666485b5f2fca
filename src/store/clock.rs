//! The time by which the stores that judge expiry themselves decide whether a session has
//! ended. In a server it is the system clock; a test makes one it can move forward
//! ([`Clock::adjustable`]), so that a session's end is reached without waiting for it in real
//! time. An engine that judges expiry by its own clock (a key's expiry kept by the engine, a
//! database's `now()`) cannot follow one: its capabilities say so
//! ([`super::Capabilities::our_clock`]), and its tests wait.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::OffsetDateTime;

/// The system clock, or the system clock moved forward by a test.
#[derive(Clone, Default)]
pub struct Clock {
    /// Nanoseconds ahead of the system clock; `None` for the system clock itself.
    ahead: Option<Arc<AtomicI64>>,
}

/// Only a clock made by [`Clock::adjustable`] can be moved, and only by what `i64`
/// nanoseconds hold (about 292 years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this clock cannot be moved so (the system clock, or beyond 292 years)")]
pub struct CannotMove;

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that starts at the system time and that [`Clock::advance`] moves forward; every
    /// copy of it moves together.
    pub fn adjustable() -> Self {
        Self {
            ahead: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// The time now, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        match &self.ahead {
            None => now,
            Some(ahead) => {
                now.saturating_add(time::Duration::nanoseconds(ahead.load(Ordering::Relaxed)))
            }
        }
    }

    /// Moves this clock (and every copy of it) `by` forward.
    pub fn advance(&self, by: std::time::Duration) -> Result<(), CannotMove> {
        let ahead = self.ahead.as_ref().ok_or(CannotMove)?;
        let by = i64::try_from(by.as_nanos()).map_err(|_| CannotMove)?;
        ahead
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |was| {
                was.checked_add(by)
            })
            .map(drop)
            .map_err(|_| CannotMove)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ahead {
            None => f.write_str("Clock::system"),
            Some(ahead) => write!(
                f,
                "Clock::adjustable(+{} ns)",
                ahead.load(Ordering::Relaxed)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_system_clock_cannot_be_moved() {
        let clock = Clock::system();
        assert_eq!(clock.advance(Duration::from_secs(1)), Err(CannotMove));
        let before = OffsetDateTime::now_utc();
        assert!((clock.now() - before).abs() < time::Duration::seconds(5));
    }

    #[test]
    fn every_copy_moves_together_and_parallel_moves_all_count() {
        let clock = Clock::adjustable();
        let start = clock.now();
        std::thread::scope(|s| {
            for _ in 0..8 {
                let copy = clock.clone();
                s.spawn(move || {
                    for _ in 0..1000 {
                        copy.advance(Duration::from_millis(1)).expect("movable");
                    }
                });
            }
        });
        let moved = clock.now() - start;
        assert!(moved >= time::Duration::seconds(8), "{moved}");
        assert!(moved < time::Duration::seconds(13), "{moved}");
    }

    #[test]
    fn a_move_past_what_it_can_hold_is_refused_and_changes_nothing() {
        let clock = Clock::adjustable();
        clock.advance(Duration::from_secs(60)).expect("a minute");
        let far = Duration::from_secs(300 * 365 * 86_400);
        assert_eq!(clock.advance(far), Err(CannotMove));
        let ahead = clock.now() - OffsetDateTime::now_utc();
        assert!(ahead > time::Duration::seconds(55) && ahead <= time::Duration::seconds(60));
    }
}
