//! The one error type every store maps its failures into, and its translation into the error
//! kinds actix-session's middleware branches on. actix-session hides the cause of a store failure
//! from whoever sees its error, so each translation also records what failed in a task-local slot
//! that [`watch_failures`] sets up around a request: the web layer branches on that typed value.

use std::path::PathBuf;

use actix_session::storage::{LoadError, SaveError, UpdateError};

/// What went wrong inside a session store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("session store I/O failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("session data is {size} bytes once serialized, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("session value under {key:?} is not JSON: {source}")]
    NotJson {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the session record could not be encoded as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("the operating system's random source failed: {0}")]
    RandomSource(#[source] getrandom::Error),
    #[error("a freshly drawn session id was refused as a cookie value: {0}")]
    KeyRefused(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("eight fresh session ids in a row were already taken")]
    IdsExhausted,
    #[error("a session lifetime of {ttl} puts its end past the last date the store can hold")]
    Deadline { ttl: time::Duration },
    /// The store's I/O threads could not be started, or one has stopped.
    #[error("the store's I/O thread failed: {0}")]
    IoThread(String),
    /// A job panicked on an I/O thread: that one request fails, the thread goes on.
    #[error("a session store job panicked: {0}")]
    JobPanicked(String),
    /// The engine behind the store (a key-value server, a database) refused, failed or could not be reached.
    #[error("the {engine} session engine failed: {source}")]
    Engine {
        engine: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The engine did not answer within the configured time.
    #[error("the {engine} session engine at {at} did not answer within {after:?}")]
    EngineTimeout {
        engine: &'static str,
        /// Where the engine is, password masked.
        at: String,
        after: std::time::Duration,
    },
    /// What is stored under a session's key is not a session record this build reads.
    #[error("the stored session is not a session record: {0}")]
    NotARecord(#[source] super::record::RecordError),
    /// What is at a path in the session folder is not what the store keeps there (a FIFO, a
    /// link, a file over the size limit): a read-only look (`sessions show`) leaves it in place;
    /// the next sweep moves it to `.corrupt/`.
    #[error("{path} is not a session file: it is {what}")]
    NotASessionFile { path: PathBuf, what: Junk },
    /// The store type cannot do this (listing sessions of a cookie store, say).
    #[error("the {kind} store does not support {what}")]
    Unsupported {
        kind: &'static str,
        what: &'static str,
    },
}

/// What a store failure means for the page a client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The session's data was refused (too large, not JSON); the previous state is kept.
    RefusedData,
    /// The store could not do its job (I/O, randomness, its thread).
    Unavailable,
}

tokio::task_local! {
    static LAST_FAILURE: std::cell::Cell<Option<FailureKind>>;
}

/// Runs `request` and returns its output with the last store failure it recorded, if any.
pub async fn watch_failures<F: std::future::Future>(
    request: F,
) -> (F::Output, Option<FailureKind>) {
    LAST_FAILURE
        .scope(std::cell::Cell::new(None), async {
            let out = request.await;
            (out, LAST_FAILURE.with(std::cell::Cell::get))
        })
        .await
}

impl StoreError {
    /// Notes this failure for [`watch_failures`]; outside its scope (store tests), nothing to do.
    fn record(&self) {
        let kind = if self.is_data_problem() {
            FailureKind::RefusedData
        } else {
            FailureKind::Unavailable
        };
        let _ = LAST_FAILURE.try_with(|slot| slot.set(Some(kind)));
    }

    /// Notes this failure for [`watch_failures`] and hands it on, for errors that reach
    /// actix-session untyped.
    pub(crate) fn recorded(self) -> Self {
        self.record();
        self
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    fn is_data_problem(&self) -> bool {
        matches!(
            self,
            Self::TooLarge { .. } | Self::NotJson { .. } | Self::Encode(_)
        )
    }
}

impl From<StoreError> for LoadError {
    fn from(e: StoreError) -> Self {
        e.record();
        LoadError::Other(e.into())
    }
}

impl From<StoreError> for SaveError {
    fn from(e: StoreError) -> Self {
        e.record();
        if e.is_data_problem() {
            SaveError::Serialization(e.into())
        } else {
            SaveError::Other(e.into())
        }
    }
}

impl From<StoreError> for UpdateError {
    fn from(e: StoreError) -> Self {
        e.record();
        if e.is_data_problem() {
            UpdateError::Serialization(e.into())
        } else {
            UpdateError::Other(e.into())
        }
    }
}

impl From<StoreError> for crate::engines::error::EngineError {
    fn from(e: StoreError) -> Self {
        Self::new(e)
    }
}

/// Something in the session folder that is not what the store keeps there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Junk {
    #[error("a symbolic link")]
    Link,
    #[error("a FIFO")]
    Fifo,
    #[error("a socket")]
    Socket,
    #[error("a device")]
    Device,
    #[error("a folder")]
    Folder,
    #[error("a regular file")]
    File,
    #[error("{size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: usize },
}

/// An engine's failure with where the engine is (its address, password masked), so that every
/// line that reports it names the server to look at.
#[derive(Debug, thiserror::Error)]
#[error("{address}: {source}")]
pub struct At {
    pub address: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}
