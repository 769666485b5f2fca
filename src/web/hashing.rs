//! Password hashing (bcrypt, by design slow) runs on blocking threads, a bounded number at once:
//! a login flood must not take the cores the pages need. At most [`Hashing::permits`] checks
//! run together (half the cores, at least one); up to [`QUEUE_PER_PERMIT`] per permit wait for
//! their turn, each at most [`MAX_WAIT`]. Past that the request gets 503 with `Retry-After`
//! after [`REFUSAL_DELAY`] (a tarpit: a refusal costs no CPU, and a flooding client sends no
//! faster than it is answered), never a queue without end that costs every page its latency.
//! The turn is taken before the throttle counts the attempt, so a refusal costs no database
//! write either.
//!
//! The checks run on threads of their own, one per permit, at a lower scheduling priority
//! (nice +10): when a flood keeps them busy, the workers serving pages still get the cores first
//! (measured in `scripts/bench-login-flood.sh`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use tokio::sync::Semaphore;

use super::AppState;

/// Waiting checks allowed per permit.
pub const QUEUE_PER_PERMIT: usize = 8;
/// Longest a check waits for its turn.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// How long a refused check's answer is held back (asleep: it costs no CPU). A flooding client
/// waits for each answer before sending again, so this caps what a flood of N connections can
/// send past the queue at N refusals a second, instead of as many as the server can answer.
pub const REFUSAL_DELAY: Duration = Duration::from_secs(1);
/// What the refusal's `Retry-After` says, in seconds.
const RETRY_AFTER: u32 = 2;

/// A password check, as its thread runs it.
type Job = Box<dyn FnOnce() + Send>;

/// How much lower than the workers' the hashing threads' priority is (a nice value).
const NICER_BY: i32 = 10;

/// The permits and the queue of password checks.
pub struct Hashing {
    permits: Arc<Semaphore>,
    /// The hashing threads' queue: a job is sent only with a permit, so one of them is free.
    jobs: std::sync::mpsc::Sender<Job>,
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
    #[error("the password check did not finish (its thread failed)")]
    Stopped,
}

impl Hashing {
    /// `permits` checks at once, `max_waiting` waiting at most `max_wait` each.
    pub fn new(permits: usize, max_waiting: usize, max_wait: Duration) -> Self {
        let permits = permits.max(1);
        Self {
            jobs: start_threads(permits),
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
        self.turn().await?.run(work).await
    }

    /// Waits for a turn to check a password (within the queue's bounds). Handlers take it
    /// before anything else costs (the throttle's count is a database write), so that a flood
    /// past the bound is refused for next to nothing.
    pub async fn turn(&self) -> Result<Turn, Busy> {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
                let leave = Leave(&self.waiting);
                if queued >= self.max_waiting {
                    drop(leave);
                    tokio::time::sleep(REFUSAL_DELAY).await;
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
        Ok(Turn {
            _permit: permit,
            jobs: self.jobs.clone(),
        })
    }
}

/// A turn to check a password: one of the hashing threads is free for it.
pub struct Turn {
    _permit: tokio::sync::OwnedSemaphorePermit,
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Turn {
    /// Runs `work` on a hashing thread; the turn ends with it.
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (answer, done) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A panic ends this check only: the thread goes on, the caller gets `Stopped`.
            if let Ok(value) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
                let _ = answer.send(value);
            }
        });
        if self.jobs.send(job).is_err() {
            return Err(Busy::Stopped);
        }
        done.await.map_err(|_| Busy::Stopped)
    }
}

/// Starts `n` hashing threads at a lower priority, fed by the returned sender.
fn start_threads(n: usize) -> std::sync::mpsc::Sender<Job> {
    let (sender, receiver) = std::sync::mpsc::channel::<Job>();
    let receiver = Arc::new(parking_lot::Mutex::new(receiver));
    for i in 0..n {
        let receiver = Arc::clone(&receiver);
        let started = std::thread::Builder::new()
            .name(format!("password-check-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let job = receiver.lock().recv();
                    match job {
                        Ok(job) => job(),
                        // Every sender is gone: the server is stopping.
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start a password check thread");
        }
    }
    sender
}

/// Makes this thread yield the cores to the workers when both want them.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        if let Err(e) =
            rustix::process::setpriority_process(Some(tid), now.saturating_add(NICER_BY))
        {
            tracing::warn!(error = %e, "password checks run at the workers' priority");
        }
    }
}

/// Leaves the queue when dropped, however the wait ended.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The 503 page for a check that did not run, with `Retry-After`.
pub fn refused(state: &AppState, req: &HttpRequest, busy: &Busy) -> HttpResponse {
    // Counted (logins_total{outcome="busy"}), logged only at debug: a flood must not fill the log.
    tracing::debug!(reason = %busy, "password check refused: too many at once");
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

    /// The checks run below the workers' priority, so that a flood leaves the cores to pages.
    #[cfg(target_os = "linux")]
    #[actix_web::test]
    async fn checks_run_at_a_lower_priority_than_the_caller() {
        let hashing = Hashing::new(1, 1, Duration::from_secs(5));
        let mine =
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).expect("priority");
        let theirs = hashing
            .run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
            .await
            .expect("ran")
            .expect("priority");
        assert_eq!(theirs, (mine + NICER_BY).min(19));
        // A check that panics fails alone; the thread serves the next one.
        let panicked = hashing.run(|| panic!("a check that panics")).await;
        assert!(matches!(panicked, Err(Busy::Stopped)), "{panicked:?}");
        assert!(hashing.run(|| 7).await.is_ok_and(|n| n == 7));
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
