//! A small tokio runtime of its own for an engine's connections, for the engines whose clients
//! need one apart from actix's workers.
//!
//! actix-web runs one single-threaded runtime per worker, and a connection's I/O is driven by the
//! runtime that made it: a connection made on one worker would stall whenever that worker is
//! busy, and one made on a blocking thread (accounts, the sweeper) would have no runtime at all.
//! Here every engine call is a task on the engine's own runtime: async callers await it from any
//! runtime, blocking callers wait for it.

use std::future::Future;

/// Why a call could not run on the engine's runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the engine's runtime could not start: {0}")]
    Start(#[source] std::io::Error),
    #[error("the engine's task failed: {0}")]
    Task(String),
}

/// The runtime; dropped without waiting for its tasks.
pub struct EngineRuntime {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl EngineRuntime {
    /// Two worker threads named `name`: one engine call in flight does not hold up another.
    pub fn start(name: &str) -> Result<Self, RuntimeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(RuntimeError::Start)?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, RuntimeError> {
        self.runtime
            .as_ref()
            .ok_or_else(|| RuntimeError::Task("the runtime is being dropped".into()))
    }

    /// Runs `task` on the engine's runtime and waits for it without blocking the caller's
    /// thread.
    pub async fn run<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        self.runtime()?
            .spawn(task)
            .await
            .map_err(|e| RuntimeError::Task(e.to_string()))
    }

    /// As [`Self::run`], for a caller on a plain or blocking thread (never an async worker):
    /// blocks until done.
    pub fn run_blocking<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime()?.spawn(async move {
            let _ = tx.send(task.await);
        });
        rx.recv()
            .map_err(|_| RuntimeError::Task("the task was dropped".into()))
    }
}

impl Drop for EngineRuntime {
    fn drop(&mut self) {
        // The last handle may go inside another runtime (a test, a worker): a runtime dropped
        // there would panic, so its threads are told to stop without being waited for.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
