//! The session folder's housekeeping: private folders, each process's locked temporary folder
//! and the removal of dead processes' ones, and size-capped reads.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// Reads an open file of at most `limit` bytes; larger ones fail with `FileTooLarge` unread.
pub(super) fn read_capped(file: File, limit: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(1024);
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(cap).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "session file over the size limit",
        ));
    }
    Ok(bytes)
}

pub(super) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(StoreError::io(dir))?;
    let meta = std::fs::metadata(dir).map_err(StoreError::io(dir))?;
    if !meta.is_dir() {
        return Err(StoreError::Io {
            path: dir.to_owned(),
            source: io::Error::new(
                io::ErrorKind::NotADirectory,
                "exists and is not a directory",
            ),
        });
    }
    // A folder that already existed (a git checkout makes it 0755) is narrowed too: the listing
    // tells who has sessions and when they end.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot make the session folder private (0700)");
            }
        }
    }
    Ok(())
}

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
    let lock = File::open(&dir).map_err(StoreError::io(&dir))?;
    lock.try_lock().map_err(|e| StoreError::Io {
        path: dir.clone(),
        source: io::Error::other(e.to_string()),
    })?;
    Ok((dir, lock))
}

/// Removes the temporary folders whose lock no live process holds; returns how many.
pub(super) fn remove_dead_temp_dirs(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(handle) = File::open(&path) else {
            continue;
        };
        if handle.try_lock().is_ok() && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}
