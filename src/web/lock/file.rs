//! The lock across processes for the `filesystem` type: an exclusive `flock` on
//! `<session folder>/.locks/<file name>`, released when the file is closed (also when the process
//! dies). Lock files are removed by the sweeper once their session is gone and nobody holds them;
//! a request that was waiting on a removed file locks the new one instead (see
//! [`crate::atomic::lock_exclusive`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use actix_web::web;

use crate::store::id;

/// Takes an exclusive lock on `dir/<hex>`; released when the file is dropped.
fn lock_file(dir: &Path, digest: &[u8; 32]) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    crate::atomic::lock_exclusive(&dir.join(id::stem(digest)))
}

/// Waits for the lock of `digest` in `dir` on a blocking thread; `None` (logged) when it cannot
/// be had, and the request is served without it.
pub async fn acquire(dir: PathBuf, digest: [u8; 32]) -> Option<File> {
    match web::block(move || lock_file(&dir, &digest)).await {
        Ok(Ok(file)) => Some(file),
        // Serving unlocked beats refusing: the lock only guards against lost updates.
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "session lock file unavailable; serving without it");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "session lock unavailable; serving without it");
            None
        }
    }
}
