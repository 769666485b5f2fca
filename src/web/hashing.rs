//! Password hashing (bcrypt, by design slow) runs on blocking threads, a bounded number at once:
//! a login flood must not take the cores the pages need. At most [`Hashing::permits`] checks
//! run together (half the cores, at least one); up to [`QUEUE_PER_PERMIT`] per permit wait for
//! their turn, each at most [`MAX_WAIT`]. Past that the request gets 503 with `Retry-After`,
//! at once: a refusal costs nothing, a queue without end costs every page its latency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use tokio::sync::Semaphore;

use super::AppState;

/// Waiting checks allowed per permit.
pub const QUEUE_PER_PERMIT: usize = 8;
/// Longest a check waits for its turn.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// What the refusal's `Retry-After` says, in seconds.
const RETRY_AFTER: u32 = 2;

/// The permits and the queue of password checks.
pub struct Hashing {
    permits: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// Why a password check did not run.
#[derive(Debug, thiserror::Error)]
pub enum Busy {
    #[error("{0} password checks are already waiting")]
    QueueFull(usize),
    #[error("no turn for a password check within {0:?}")]
    Waited(Duration),
    #[error("no thread for a password check: {0}")]
    Blocking(#[from] actix_web::error::BlockingError),
}

impl Hashing {
    /// `permits` checks at once, `max_waiting` waiting at most `max_wait` each.
    pub fn new(permits: usize, max_waiting: usize, max_wait: Duration) -> Self {
        let permits = permits.max(1);
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            size: permits,
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// Sized to this machine: half its cores (at least one), [`QUEUE_PER_PERMIT`] waiting each.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let permits = (cores / 2).max(1);
        Self::new(permits, permits.saturating_mul(QUEUE_PER_PERMIT), MAX_WAIT)
    }

    /// How many checks may run at once.
    pub fn permits(&self) -> usize {
        self.size
    }

    /// Runs `work` (a password check) on a blocking thread once it has a permit.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
                let _leave = Leave(&self.waiting);
                if queued >= self.max_waiting {
                    return Err(Busy::QueueFull(queued));
                }
                match tokio::time::timeout(self.max_wait, Arc::clone(&self.permits).acquire_owned())
                    .await
                {
                    Ok(Ok(permit)) => permit,
                    // The semaphore is never closed; a timeout is the only way here.
                    Ok(Err(_)) | Err(_) => return Err(Busy::Waited(self.max_wait)),
                }
            }
        };
        let done = web::block(work).await;
        drop(permit);
        Ok(done?)
    }
}

/// Leaves the queue when dropped, however the wait ended.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs a password check of `state`'s queue.
pub async fn run<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Busy> {
    state.hashing.run(work).await
}

/// The 503 page for a check that did not run, with `Retry-After`.
pub fn refused(state: &AppState, req: &HttpRequest, busy: &Busy) -> HttpResponse {
    tracing::warn!(reason = %busy, "password check refused: too many at once");
    crate::telemetry::login("busy");
    let mut res = state.error_page(req, StatusCode::SERVICE_UNAVAILABLE, "error-busy");
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(RETRY_AFTER));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Checks that each hold their permit until released, counting how many ran at once.
    #[actix_web::test]
    async fn no_more_than_the_permits_run_at_once_and_the_queue_is_bounded() {
        let hashing = Arc::new(Hashing::new(2, 3, Duration::from_secs(30)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(parking_lot::Mutex::new(gate));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (hashing, running, most, gate) = (
                Arc::clone(&hashing),
                Arc::clone(&running),
                Arc::clone(&most),
                Arc::clone(&gate),
            );
            tasks.push(actix_web::rt::spawn(async move {
                hashing
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        let _ = gate.lock().recv();
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        // Two run, three wait: wait until they are all in.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hashing.waiting.load(Ordering::SeqCst) < 3 || running.load(Ordering::SeqCst) < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the checks never queued"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let sixth = hashing.run(|| ()).await;
        assert!(matches!(sixth, Err(Busy::QueueFull(3))), "{sixth:?}");
        for _ in 0..5 {
            release.send(()).expect("release");
        }
        for task in tasks {
            assert!(task.await.expect("task").is_ok());
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(hashing.waiting.load(Ordering::SeqCst), 0);
    }

    #[actix_web::test]
    async fn a_check_that_waits_past_its_bound_is_refused() {
        let hashing = Arc::new(Hashing::new(1, 4, Duration::from_millis(200)));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let holder = {
            let hashing = Arc::clone(&hashing);
            actix_web::rt::spawn(async move {
                hashing
                    .run(move || {
                        let _ = gate.recv();
                    })
                    .await
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hashing.permits.available_permits() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first check never ran"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let waited = hashing.run(|| ()).await;
        assert!(matches!(waited, Err(Busy::Waited(_))), "{waited:?}");
        release.send(()).expect("release");
        assert!(holder.await.expect("task").is_ok());
        assert!(hashing.run(|| 1).await.is_ok_and(|n| n == 1));
    }
}
