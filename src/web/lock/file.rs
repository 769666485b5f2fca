//! The lock across processes for the `filesystem` type: an exclusive `flock` on
//! `<session folder>/.locks/<file name>`, released when the file is closed (also when the process
//! dies). Lock files are removed by the sweeper once their session is gone and nobody holds them;
//! a request that was waiting on a removed file locks the new one instead (see
//! [`crate::atomic::lock_exclusive`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::web;

use super::Acquired;
use crate::store::id;

/// The pause between two tries of a held lock file.
const PAUSE: Duration = Duration::from_millis(5);

/// Takes an exclusive lock on `dir/<hex>` if it is free; released when the file is dropped.
fn try_lock_file(dir: &Path, digest: &[u8; 32]) -> std::io::Result<Option<File>> {
    std::fs::create_dir_all(dir)?;
    crate::atomic::try_lock_exclusive(&dir.join(id::stem(digest)))
}

/// Waits at most `within` for the lock of `digest` in `dir`, trying on a blocking thread and
/// pausing on the worker between tries. When the lock file cannot be had at all, the request is
/// served without it (logged).
pub(super) async fn acquire(dir: PathBuf, digest: [u8; 32], within: Duration) -> Acquired<File> {
    let deadline = Instant::now().checked_add(within);
    loop {
        let dir = dir.clone();
        match web::block(move || try_lock_file(&dir, &digest)).await {
            Ok(Ok(Some(file))) => return Acquired::Held(file),
            Ok(Ok(None)) => {}
            // Serving unlocked beats refusing: the lock only guards against lost updates.
            Ok(Err(e)) => {
                crate::telemetry::engine_failure("locks", &e);
                return Acquired::Unavailable;
            }
            Err(e) => {
                crate::telemetry::engine_failure("locks", &e);
                return Acquired::Unavailable;
            }
        }
        if deadline.is_none_or(|d| Instant::now() >= d) {
            return Acquired::TimedOut;
        }
        actix_web::rt::time::sleep(PAUSE).await;
    }
}
