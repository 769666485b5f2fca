//! How long a store's successful health probe stands: `/healthz` and load balancers may ask many
//! times a second, and one probe a second per process is enough to see an engine go away. A
//! failed call of the store forgets the last success, so the next check probes at once.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a success stands.
const HEALTHY_FOR: Duration = Duration::from_secs(1);

/// When the store last passed its probe.
#[derive(Default)]
pub struct Health {
    passed_at: Mutex<Option<Instant>>,
}

impl Health {
    /// Whether a probe passed less than [`HEALTHY_FOR`] ago.
    pub fn fresh(&self) -> bool {
        self.passed_at
            .lock()
            .is_some_and(|at| at.elapsed() < HEALTHY_FOR)
    }

    pub fn passed(&self) {
        *self.passed_at.lock() = Some(Instant::now());
    }

    /// The engine failed a call: the next check probes again.
    pub fn forget(&self) {
        *self.passed_at.lock() = None;
    }
}
