//! The session folder's housekeeping: private folders, each process's locked temporary folder
//! and the removal of dead processes' ones (anything else in `.tmp/` is moved aside).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::entry::{create_private_dir, self, Junk, Opened, Want};
use crate::store::StoreError;


/// Creates and locks a temporary folder for this process.
pub(super) fn claim_temp_dir(root: &Path) -> Result<(PathBuf, File), StoreError> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(StoreError::RandomSource)?;
    let dir = root.join(format!(
        "{}-{:016x}",
        std::process::id(),
        u64::from_ne_bytes(nonce)
    ));
    create_private_dir(&dir)?;
    // Opened as everything in the folder is: something swapped in for the folder just made is
    // refused, never waited on.
    let lock = match entry::open(&dir, Want::Folder).map_err(StoreError::io(&dir))? {
        Opened::Open(handle, _) => handle,
        Opened::Junk(what) => return Err(StoreError::NotASessionFile { path: dir, what }),
        Opened::Missing => {
            return Err(StoreError::Io {
                path: dir,
                source: io::Error::from(io::ErrorKind::NotFound),
            })
        }
    };
    lock.try_lock().map_err(|e| StoreError::Io {
        path: dir.clone(),
        source: io::Error::other(e.to_string()),
    })?;
    Ok((dir, lock))
}

/// What one look at the temporary folders did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct TempSweep {
    /// Folders of dead processes, removed.
    pub removed: usize,
    /// Anything else (a FIFO, a socket, a link, a file), moved to `corrupt`.
    pub set_aside: usize,
}

/// Removes the temporary folders under `root` whose lock no live process holds, and moves
/// whatever is not a folder to `corrupt`: nothing there is ever waited on.
pub(super) fn remove_dead_temp_dirs(root: &Path, corrupt: &Path) -> TempSweep {
    let mut done = TempSweep::default();
    let Ok(entries) = std::fs::read_dir(root) else {
        return done;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // The listing's own type (no open, no link followed) settles most junk for free.
        let listed = entry
            .file_type()
            .ok()
            .and_then(|t| Junk::of(t, Want::Folder));
        let handle = match listed
            .map_or_else(|| entry::open(&path, Want::Folder), |j| Ok(Opened::Junk(j)))
        {
            Ok(Opened::Open(handle, _)) => handle,
            Ok(Opened::Junk(junk)) => {
                if entry::set_aside_logged(corrupt, &path, "tmp-", &junk) {
                    done.set_aside += 1;
                }
                continue;
            }
            Ok(Opened::Missing) | Err(_) => continue,
        };
        if handle.try_lock().is_ok() && std::fs::remove_dir_all(&path).is_ok() {
            done.removed += 1;
        }
    }
    done
}
