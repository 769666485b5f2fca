//! The lock across processes in lock files, for the engines that keep sessions in files: an exclusive `flock` on
//! `<session folder>/.locks/<file name>`, released when the file is closed (also when the process
//! dies). Lock files are removed by the sweeper once their session is gone and nobody holds them;
//! a request that was waiting on a removed file locks the new one instead (see
//! [`crate::atomic::lock_exclusive`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Acquired;
use crate::store::id;

/// The pause between two tries of a held lock file.
const PAUSE: Duration = Duration::from_millis(5);

/// Takes an exclusive lock on `dir/<hex>` if it is free; released when the file is dropped.
fn try_lock_file(dir: &Path, digest: &[u8; 32]) -> std::io::Result<Option<File>> {
    std::fs::create_dir_all(dir)?;
    crate::atomic::try_lock_exclusive(&dir.join(id::stem(digest)))
}

/// Waits at most `within` for the lock of `digest` in `dir` (see [`super::poll`]). When the
/// lock file cannot be had at all, the request is served without it: serving unlocked beats
/// refusing, since the lock only guards against lost updates.
pub(super) async fn acquire(dir: PathBuf, digest: [u8; 32], within: Duration) -> Acquired<File> {
    super::poll(
        within,
        PAUSE,
        PAUSE,
        move || try_lock_file(&dir, &digest),
        || {},
    )
    .await
}
