//! The threads that do a store's file work, so that none of it runs on an actix worker.
//!
//! Why not `spawn_blocking`: it wakes an idle pool thread (a futex wake and two context switches)
//! for every call, and under load those switches cost more CPU than the file work itself. Here
//! each store owns a few long-lived threads, each draining its own queue: a thread that is busy
//! takes the next job without being woken, so under load the switches are shared by many jobs.
//! Jobs for one session always go to the same thread, so they run in the order they were sent.
//! A job that panics fails alone: its caller gets [`StoreError::JobPanicked`] and the thread takes
//! the next job, so one bad request cannot stop the store.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;

use super::StoreError;

type Job = Box<dyn FnOnce() + Send>;

/// What becomes of a job whose caller no longer waits for it (the client went away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// Carried out all the same: a write that was sent is done.
    StillRun,
    /// Skipped: work that only reads (a load, a health probe) must not queue up ahead of live
    /// requests.
    Skip,
}

fn dropped() -> StoreError {
    StoreError::IoThread("the store's I/O thread dropped a job".into())
}

/// A fixed set of named threads, each with its own queue. Dropping it ends them once their queues
/// are empty.
pub struct IoThreads {
    queues: Vec<mpsc::Sender<Job>>,
}

impl IoThreads {
    /// Starts `count` (at least 1) threads named `name-N`.
    pub fn start(name: &str, count: usize) -> Result<Self, StoreError> {
        let queues = (0..count.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel::<Job>();
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            job();
                        }
                    })
                    .map(|_| tx)
                    .map_err(|e| StoreError::IoThread(format!("cannot start an I/O thread: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { queues })
    }

    /// Runs `work` on the thread chosen by `affinity` (e.g. a byte of the session's digest) and
    /// waits for its result without blocking the caller's thread. What happens to work whose
    /// caller stops waiting is `abandoned`'s to say.
    pub async fn run<T: Send + 'static>(
        &self,
        affinity: u8,
        abandoned: Abandoned,
        work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            affinity,
            Box::new(move || {
                if abandoned == Abandoned::Skip && tx.is_closed() {
                    return;
                }
                let _ = tx.send(run_caught(work));
            }),
        )?;
        rx.await.map_err(|_| dropped())?
    }

    /// As [`Self::run`], for a caller that is a plain thread (the sweeper): blocks until done.
    /// Never call it from one of these threads.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        affinity: u8,
        work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            affinity,
            Box::new(move || {
                let _ = tx.send(run_caught(work));
            }),
        )?;
        rx.recv().map_err(|_| dropped())?
    }

    fn submit(&self, affinity: u8, job: Job) -> Result<(), StoreError> {
        self.queues[usize::from(affinity) % self.queues.len()]
            .send(job)
            .map_err(|_| StoreError::IoThread("the store's I/O thread has stopped".into()))
    }

    /// How many threads there are: a session's thread is its affinity modulo this.
    pub fn count(&self) -> usize {
        self.queues.len()
    }
}

/// Runs `work`, turning a panic into that job's error.
fn run_caught<T>(work: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    // Unwind safety: the unwind drops the job's own state; what it shares with other jobs sits
    // behind the store's mutexes (`parking_lot`, which a panic does not poison). A half-done
    // change there concerns this job's session; stopping the thread would fail every session.
    panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| {
        let message = panic_message(payload.as_ref());
        tracing::error!(panic = %message, "a session store job panicked; its request fails");
        Err(StoreError::JobPanicked(message))
    })
}

/// The text a panic was raised with (`panic!` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn jobs_run_off_thread_and_return_results() {
        let threads = IoThreads::start("test-io", 2).expect("start");
        let caller = std::thread::current().id();
        let ran_on = threads
            .run(1, Abandoned::StillRun, move || {
                Ok(std::thread::current().id())
            })
            .await
            .expect("ran");
        assert_ne!(ran_on, caller);
        let err = threads
            .run(0, Abandoned::StillRun, || {
                Err::<(), _>(StoreError::IdsExhausted)
            })
            .await
            .expect_err("error passed through");
        assert!(matches!(err, StoreError::IdsExhausted));
    }

    #[actix_web::test]
    async fn reads_whose_caller_has_gone_are_skipped_but_writes_are_not() {
        use futures_util::FutureExt;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let threads = IoThreads::start("test-io", 1).expect("start");
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        // Hold the thread so that the jobs below queue up behind this one.
        let held = threads.run(0, Abandoned::StillRun, move || {
            let _ = gate_rx.recv();
            Ok(())
        });
        let mut held = Box::pin(held);
        assert!(held.as_mut().now_or_never().is_none());
        let (reads, writes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        for _ in 0..100 {
            let (r, w) = (Arc::clone(&reads), Arc::clone(&writes));
            // Polled once (queued), then dropped: a client that went away.
            let read = threads.run(0, Abandoned::Skip, move || {
                r.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
            assert!(read.now_or_never().is_none());
            let write = threads.run(0, Abandoned::StillRun, move || {
                w.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
            assert!(write.now_or_never().is_none());
        }
        gate_tx.send(()).expect("release");
        held.await.expect("held job");
        let r = Arc::clone(&reads);
        threads
            .run(0, Abandoned::Skip, move || {
                r.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .expect("a read someone waits for runs");
        assert_eq!(reads.load(Ordering::SeqCst), 1, "abandoned reads skipped");
        assert_eq!(
            writes.load(Ordering::SeqCst),
            100,
            "every write carried out"
        );
    }

    #[actix_web::test]
    async fn a_panicking_job_fails_alone_and_the_thread_keeps_serving() {
        let threads = IoThreads::start("test-io", 1).expect("start");
        let err = threads
            .run(0, Abandoned::StillRun, || -> Result<(), StoreError> {
                panic!("job exploded")
            })
            .await
            .expect_err("the panic is that job's error");
        assert!(
            matches!(&err, StoreError::JobPanicked(m) if m.contains("job exploded")),
            "{err:?}"
        );
        let after = threads
            .run(0, Abandoned::StillRun, || Ok(7))
            .await
            .expect("the same thread still serves");
        assert_eq!(after, 7);
    }

    #[test]
    fn a_panicking_blocking_job_fails_alone_too() {
        let threads = IoThreads::start("test-io", 1).expect("start");
        let err = threads
            .run_blocking(0, || -> Result<(), StoreError> { panic!("sweep exploded") })
            .expect_err("the panic is that job's error");
        assert!(
            matches!(&err, StoreError::JobPanicked(m) if m.contains("sweep exploded")),
            "{err:?}"
        );
        assert_eq!(threads.run_blocking(0, || Ok(7)).expect("still serves"), 7);
    }

    #[actix_web::test]
    async fn parallel_panics_fail_only_their_own_jobs() {
        let threads = IoThreads::start("test-io", 1).expect("start");
        let results = futures_util::future::join_all((0..64u32).map(|i| {
            threads.run(0, Abandoned::StillRun, move || {
                assert!(i % 2 == 0, "odd job {i}");
                Ok(i)
            })
        }))
        .await;
        for (i, result) in (0..64u32).zip(results) {
            if i % 2 == 0 {
                assert_eq!(result.expect("even jobs succeed"), i);
            } else {
                assert!(
                    matches!(&result, Err(StoreError::JobPanicked(m)) if m.contains(&format!("odd job {i}"))),
                    "{result:?}"
                );
            }
        }
    }
}
