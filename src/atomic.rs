//! File primitives shared by the session store and the user database.
//!
//! Crash-safe replacement: a new version
//! is written whole to a temporary file on the same file system and then swapped into place by a
//! single rename, so a reader sees the old version or the new one, never a mix.
//!
//! Why not always `rename` over the old file: on ext4 a rename that *replaces* a file makes the
//! kernel start writing the new file's data out at once (`auto_da_alloc`), which costs hundreds
//! of microseconds per update. Exchanging the two names (`renameat2(RENAME_EXCHANGE)`) and then
//! unlinking the old version is just as atomic and skips that flush. Where that call is missing
//! (other systems), a plain rename takes its place.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

/// Whether a write must reach the disk (survive power loss) before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Atomic against process crashes (kill -9): the kernel's page cache holds the new version.
    #[default]
    Process,
    /// Also against power loss: file and directory are fsynced before the call returns.
    Fsync,
}

/// Writes `bytes` to a new file at `path` (which must not exist), mode 0600, with the given
/// modification time, synced when `durability` asks.
pub fn write_new(
    path: &Path,
    bytes: &[u8],
    modified: Option<SystemTime>,
    durability: Durability,
) -> io::Result<()> {
    write_new_file(path, bytes, modified, durability).map(drop)
}

/// As [`write_new`], keeping the file open: its handle still names the written version after it
/// is renamed, so the caller can `fstat` what it placed.
pub fn write_new_file(
    path: &Path,
    bytes: &[u8],
    modified: Option<SystemTime>,
    durability: Durability,
) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let result = (|| {
        file.write_all(bytes)?;
        if let Some(t) = modified {
            file.set_modified(t)?;
        }
        if durability == Durability::Fsync {
            file.sync_data()?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(file),
        Err(e) => {
            let _ = std::fs::remove_file(path);
            Err(e)
        }
    }
}

/// What became of a placement.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    Done,
    /// `place_new`: the target already exists; the temporary file is left where it was.
    TargetExists,
    /// `exchange`: the target does not exist; the temporary file is left where it was.
    TargetMissing,
}

/// Moves `tmp` to `target` only if `target` does not exist yet.
pub fn place_new(tmp: &Path, target: &Path) -> io::Result<Placed> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, tmp, CWD, target, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(Placed::Done),
            Err(rustix::io::Errno::EXIST) => Ok(Placed::TargetExists),
            // Some file systems (and old kernels) lack renameat2: fall back to link + unlink.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                link_then_unlink(tmp, target)
            }
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    link_then_unlink(tmp, target)
}

fn link_then_unlink(tmp: &Path, target: &Path) -> io::Result<Placed> {
    match std::fs::hard_link(tmp, target) {
        Ok(()) => {
            std::fs::remove_file(tmp)?;
            Ok(Placed::Done)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Placed::TargetExists),
        Err(e) => Err(e),
    }
}

/// Puts `tmp` in place of an existing `target` and removes the old version.
pub fn exchange(tmp: &Path, target: &Path) -> io::Result<Placed> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, tmp, CWD, target, RenameFlags::EXCHANGE) {
            Ok(()) => {
                // `tmp` now names the old version. A crash right here leaves it behind in the
                // temporary folder, which start-up and the sweeper clear.
                std::fs::remove_file(tmp)?;
                Ok(Placed::Done)
            }
            Err(rustix::io::Errno::NOENT) => Ok(Placed::TargetMissing),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                rename_if_present(tmp, target)
            }
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    rename_if_present(tmp, target)
}

fn rename_if_present(tmp: &Path, target: &Path) -> io::Result<Placed> {
    if !target.exists() {
        return Ok(Placed::TargetMissing);
    }
    std::fs::rename(tmp, target)?;
    Ok(Placed::Done)
}

/// Opens (creating it 0600 if needed) and exclusively `flock`s `path`, waiting for any other
/// holder; the lock is released when the returned file is dropped.
pub fn lock_exclusive(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    file.lock()?;
    Ok(file)
}

/// Makes a directory's entries (a rename, an unlink) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `target` with `bytes` in one step, through a temporary sibling, fsynced: for rare,
/// precious writes such as the user database.
pub fn replace_synced(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(io::Error::other)?;
    let tmp = dir.join(format!(".{name}.tmp-{}", u64::from_ne_bytes(nonce)));
    write_new(&tmp, bytes, None, Durability::Fsync)?;
    if let Err(e) = std::fs::rename(&tmp, target) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_new_refuses_to_overwrite_and_exchange_needs_a_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tmp, target) = (dir.path().join("t"), dir.path().join("f"));
        write_new(&tmp, b"one", None, Durability::Process).expect("write");
        assert_eq!(
            exchange(&tmp, &target).expect("exchange"),
            Placed::TargetMissing
        );
        assert_eq!(place_new(&tmp, &target).expect("place"), Placed::Done);
        write_new(&tmp, b"two", None, Durability::Fsync).expect("write");
        assert_eq!(
            place_new(&tmp, &target).expect("place"),
            Placed::TargetExists
        );
        assert_eq!(exchange(&tmp, &target).expect("exchange"), Placed::Done);
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(&target).expect("read"), b"two");
        assert!(write_new(&target, b"x", None, Durability::Process).is_err());
        replace_synced(&target, b"three").expect("replace");
        assert_eq!(std::fs::read(&target).expect("read"), b"three");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
