//! What the server counts, in one place: the names and labels of every metric, through the
//! `metrics` facade. With `[metrics] bind` set, a Prometheus recorder takes them and
//! `GET /metrics` on that address renders them (see `web::observe`); without it every call here
//! is a no-op costing one atomic load.
//!
//! Cookies that are forged, malformed or stale are counted here and summed up in one log line
//! a minute ([`IgnoredCookies`]), never logged one line each: a flood must not fill the disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// Buckets of the store latency histograms, in seconds: from a cached read (tens of µs) to an
/// engine timing out (seconds).
const STORE_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Installs the Prometheus recorder for this process; the handle renders the text format.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("session_store_operation_seconds".into()),
            STORE_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "sessions_created_total",
        "Sessions stored for the first time"
    );
    describe_counter!("sessions_loaded_total", "Requests that found their session");
    describe_counter!("sessions_updated_total", "Sessions written with new data");
    describe_counter!(
        "sessions_renewed_total",
        "Sessions whose end moved without new data"
    );
    describe_counter!(
        "sessions_deleted_total",
        "Sessions ended by a logout or an id change"
    );
    describe_counter!(
        "sessions_expired_total",
        "Expired sessions deleted by the sweeper"
    );
    describe_gauge!(
        "sessions_live",
        "Live sessions in the store (types that can list)"
    );
    describe_histogram!(
        "session_store_operation_seconds",
        Unit::Seconds,
        "Store calls by operation and store type"
    );
    describe_counter!("logins_total", "Login attempts by outcome");
    describe_counter!(
        "errors_total",
        "Requests answered with an error page, by kind"
    );
    describe_counter!(
        "session_cookies_ignored_total",
        "Session cookies not used, by reason"
    );
    describe_counter!(
        "http_requests_total",
        "Requests by method class and status class"
    );
}

/// One store call of `op` on a store of type `kind`, started at `started`.
pub fn store_call(op: &'static str, kind: &'static str, started: Instant) {
    histogram!("session_store_operation_seconds", "op" => op, "type" => kind)
        .record(started.elapsed().as_secs_f64());
}

/// A session-life event: `created`, `loaded`, `updated`, `renewed`, `deleted`, `expired`.
pub fn sessions(event: Event, n: u64) {
    if n == 0 {
        return;
    }
    let name = match event {
        Event::Created => "sessions_created_total",
        Event::Loaded => "sessions_loaded_total",
        Event::Updated => "sessions_updated_total",
        Event::Renewed => "sessions_renewed_total",
        Event::Deleted => "sessions_deleted_total",
        Event::Expired => "sessions_expired_total",
    };
    counter!(name).increment(n);
}

/// What happened to sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Created,
    Loaded,
    Updated,
    Renewed,
    Deleted,
    Expired,
}

pub fn live_sessions(n: usize) {
    #[allow(clippy::cast_precision_loss)]
    gauge!("sessions_live").set(n as f64);
}

/// A login attempt's outcome: `success`, `failure` or `throttled`.
pub fn login(outcome: &'static str) {
    counter!("logins_total", "outcome" => outcome).increment(1);
}

/// An error page of `kind` (`store_unavailable`, `session_too_large`, `csrf`, `not_found`, ...).
pub fn error(kind: &'static str) {
    counter!("errors_total", "kind" => kind).increment(1);
}

/// A request answered: counted by status class.
pub fn request(status: u16) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    counter!("http_requests_total", "status" => class).increment(1);
}

/// Why a session cookie was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Its signature (or encryption) does not verify with the server's key.
    Forged,
    /// Verified, but no live session has that id (ended, expired, or from another store).
    Stale,
}

/// Counts of ignored cookies since the last summary line.
pub struct IgnoredCookies {
    forged: AtomicU64,
    stale: AtomicU64,
}

/// The process's counts: one per process, whatever the number of workers.
pub static IGNORED: IgnoredCookies = IgnoredCookies {
    forged: AtomicU64::new(0),
    stale: AtomicU64::new(0),
};

impl IgnoredCookies {
    pub fn count(&self, why: Ignored) {
        let (slot, reason) = match why {
            Ignored::Forged => (&self.forged, "forged"),
            Ignored::Stale => (&self.stale, "stale"),
        };
        slot.fetch_add(1, Ordering::Relaxed);
        counter!("session_cookies_ignored_total", "reason" => reason).increment(1);
    }

    /// The counts since the last call, reset to zero.
    pub fn take(&self) -> (u64, u64) {
        (
            self.forged.swap(0, Ordering::Relaxed),
            self.stale.swap(0, Ordering::Relaxed),
        )
    }

    /// Logs one line every `every` when any cookie was ignored meanwhile; runs until the
    /// process ends.
    pub fn summarise_every(&'static self, every: Duration) {
        let spawned = std::thread::Builder::new()
            .name("ignored-cookies".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                let (forged, stale) = self.take();
                if forged + stale > 0 {
                    tracing::info!(
                        forged,
                        stale,
                        "session cookies ignored in the last {}s (counted, not logged one by one)",
                        every.as_secs()
                    );
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the ignored-cookie summary");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_cookies_counted_from_many_threads_are_all_taken_once() {
        let counts = IgnoredCookies {
            forged: AtomicU64::new(0),
            stale: AtomicU64::new(0),
        };
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for n in 0..1000 {
                        counts.count(if n % 4 == 0 {
                            Ignored::Stale
                        } else {
                            Ignored::Forged
                        });
                    }
                });
            }
        });
        assert_eq!(counts.take(), (6000, 2000));
        assert_eq!(counts.take(), (0, 0));
    }
}
