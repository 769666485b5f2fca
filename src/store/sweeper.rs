//! The background thread every store with expiring sessions runs: it calls the store's sweep
//! every `cleanup_interval` (checking once a second whether the store is still there, so that a
//! dropped store's thread ends soon after it) and ends with the store.

use std::sync::{Arc, Weak};
use std::time::Duration;

/// Starts a thread named `name` that runs `sweep` on the store every `every`, for as long as the
/// store lives. `sweep` gets the store's `Arc`, so that it can hand the store to other threads.
pub(crate) fn spawn<T: Send + Sync + 'static>(
    name: &str,
    store: Weak<T>,
    every: Duration,
    sweep: fn(&Arc<T>),
) {
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let tick = every.min(Duration::from_secs(1));
            let mut waited = Duration::ZERO;
            loop {
                std::thread::sleep(tick);
                waited = waited.saturating_add(tick);
                let Some(store) = store.upgrade() else { return };
                if waited >= every {
                    waited = Duration::ZERO;
                    sweep(&store);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(thread = name, error = %e, "could not start the sweeper; expired sessions stay until read");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn sweeps_at_the_interval_not_every_tick_and_stops_with_the_store() {
        let every_second = Arc::new(AtomicUsize::new(0));
        let every_hour = Arc::new(AtomicUsize::new(0));
        let bump = |n: &Arc<AtomicUsize>| {
            n.fetch_add(1, Ordering::SeqCst);
        };
        spawn(
            "t-1s",
            Arc::downgrade(&every_second),
            Duration::from_secs(1),
            bump,
        );
        spawn(
            "t-1h",
            Arc::downgrade(&every_hour),
            Duration::from_secs(3600),
            bump,
        );
        std::thread::sleep(Duration::from_millis(2500));
        assert!(every_second.load(Ordering::SeqCst) >= 2);
        assert_eq!(
            every_hour.load(Ordering::SeqCst),
            0,
            "the interval is honoured"
        );
    }
}
