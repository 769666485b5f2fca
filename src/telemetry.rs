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

/// Failures of an engine the server depends on (the session store, the accounts, the session
/// locks), by cause: the first of each cause is logged at once, the repeats are counted and
/// summed up in one line a minute. An outage fails every request the same way: one line per
/// request would fill the disk, and a cause's Debug form (with `RUST_BACKTRACE` set, a
/// backtrace) is never logged.
pub struct EngineFailures {
    /// Repeats of each cause since its first line or its last summary.
    seen: parking_lot::Mutex<Option<std::collections::HashMap<String, u64>>>,
}

/// Distinct causes kept between two summaries; more are counted under one line.
const MAX_CAUSES: usize = 64;
const OTHER_CAUSES: &str = "other causes";

/// The process's failures.
pub static FAILURES: EngineFailures = EngineFailures {
    seen: parking_lot::Mutex::new(None),
};

/// One failure of `what` (`sessions`, `accounts`, `locks`, `health`) for `error`.
pub fn engine_failure(what: &'static str, error: &dyn std::fmt::Display) {
    counter!("engine_failures_total", "what" => what).increment(1);
    if FAILURES.count(what, error) {
        tracing::error!(
            what,
            error = %error,
            "engine failure (repeats of this cause are counted and logged once a minute)"
        );
    }
}

/// A connection to `engine` at `address` (password masked) failed: told once per cause at
/// warn, then counted into the summary, so that an engine down at start-up, or for an hour,
/// fills no log.
pub fn engine_unreachable(engine: &'static str, address: &str, error: &dyn std::fmt::Display) {
    counter!("engine_failures_total", "what" => "connections").increment(1);
    let cause = format!("{engine} at {address}: {error}");
    if FAILURES.count("connections", &cause) {
        tracing::warn!(
            engine,
            address,
            error = %error,
            "engine unreachable (repeats are counted and logged once a minute)"
        );
    }
}

impl EngineFailures {
    /// Counts a failure; `true` when its cause is new since the last summary (log it).
    pub fn count(&self, what: &'static str, error: &dyn std::fmt::Display) -> bool {
        let cause = format!("{what}: {error}");
        let mut seen = self.seen.lock();
        let seen = seen.get_or_insert_with(Default::default);
        if let Some(n) = seen.get_mut(&cause) {
            *n = n.saturating_add(1);
            return false;
        }
        if seen.len() >= MAX_CAUSES {
            let n = seen.entry(OTHER_CAUSES.to_owned()).or_insert(0);
            *n = n.saturating_add(1);
            return false;
        }
        seen.insert(cause, 0);
        true
    }

    /// The causes and their repeats since the last call; forgotten, so each logs anew.
    pub fn take(&self) -> Vec<(String, u64)> {
        let mut taken: Vec<_> = self
            .seen
            .lock()
            .take()
            .unwrap_or_default()
            .into_iter()
            .collect();
        taken.sort();
        taken
    }

    /// Logs one line per repeated cause every `every`; runs until the process ends.
    pub fn summarise_every(&'static self, every: Duration) {
        let spawned = std::thread::Builder::new()
            .name("engine-failures".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                for (cause, repeats) in self.take() {
                    if repeats > 0 {
                        tracing::error!(
                            repeats,
                            cause = %cause,
                            "engine failure repeated in the last {}s",
                            every.as_secs()
                        );
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the engine failure summary");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_logs_each_cause_once_and_counts_its_repeats_from_many_threads() {
        let failures = EngineFailures {
            seen: parking_lot::Mutex::new(None),
        };
        let first = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for n in 0..1000 {
                        let cause = if n % 2 == 0 { "refused" } else { "timed out" };
                        if failures.count("sessions", &cause) {
                            first.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(first.load(Ordering::Relaxed), 2, "one line per cause");
        assert_eq!(
            failures.take(),
            vec![
                ("sessions: refused".to_owned(), 3999),
                ("sessions: timed out".to_owned(), 3999)
            ]
        );
        assert!(failures.take().is_empty());
        assert!(
            failures.count("sessions", &"refused"),
            "logged anew after a summary"
        );
    }

    #[test]
    fn causes_past_the_limit_are_counted_under_one_line() {
        let failures = EngineFailures {
            seen: parking_lot::Mutex::new(None),
        };
        let logged = (0..MAX_CAUSES + 10)
            .filter(|n| failures.count("accounts", n))
            .count();
        assert_eq!(logged, MAX_CAUSES);
        let taken = failures.take();
        assert!(taken.contains(&(OTHER_CAUSES.to_owned(), 10)), "{taken:?}");
    }

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
