//! The one sweeper, for every store whose engine does not expire sessions by itself
//! ([`super::Capabilities::expires_by_itself`]): a thread that calls the backend's
//! `delete_expired` every `cleanup_interval`, checking once a second whether the store is still
//! there, so that a dropped store's thread ends soon after it. The registry starts it when it
//! opens a store (`crate::engines::open`), from the engine's own interval.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::SessionBackend;
use crate::telemetry::{self, Event};

/// Starts the sweeper of `backend`, every `every`, for as long as the backend lives.
pub(crate) fn start(backend: Weak<dyn SessionBackend>, kind: &'static str, every: Duration) {
    // The backends' sweeps are async (some hand the work to blocking threads): a small runtime
    // of the sweeper's own drives them, apart from the server's workers.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(store = kind, error = %e, "could not start the sweeper; expired sessions stay until read");
            return;
        }
    };
    spawn(
        &format!("{kind}-sweeper"),
        backend,
        every,
        move |backend| match runtime.block_on(backend.delete_expired()) {
            Ok(n) => telemetry::sessions(Event::Expired, n),
            Err(e) => {
                tracing::warn!(store = kind, error = %e, "sweep failed; expired sessions stay until the next one")
            }
        },
    );
}

/// Starts a thread named `name` that runs `sweep` on the store every `every`, for as long as the
/// store lives.
fn spawn<T: ?Sized + Send + Sync + 'static>(
    name: &str,
    store: Weak<T>,
    every: Duration,
    sweep: impl Fn(&Arc<T>) + Send + 'static,
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
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while every_second.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(every_second.load(Ordering::SeqCst) >= 2);
        assert_eq!(
            every_hour.load(Ordering::SeqCst),
            0,
            "the interval is honoured"
        );
    }
}
