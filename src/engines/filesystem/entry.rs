//! The one way anything in the session folder is opened: a request's read of its session, the
//! start-up's and the sweeper's look at `.tmp/` and `.locks/`, and the operator's commands
//! (`sessions list | stats | show | gc`). An open never follows a link and never waits (a FIFO
//! opens at once, non-blocking, and is then told apart by `fstat`), and a read never goes past
//! the session size cap. What is not what the store keeps at that place is [`Junk`]: the caller
//! moves it aside to `.corrupt/` ([`set_aside`]) or, when it only reads, skips it.
//!
//! Removing an entry (`unlink`, `remove_dir_all`) never opens it, so it never blocks either.

pub use crate::store::error::Junk;
use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::store::StoreError;

/// What the caller expects at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    /// A regular file: a session, a lock file.
    File,
    /// A folder: a process's temporary folder.
    Folder,
}


impl Junk {
    /// What `kind` is, when it is not what `want` asks for.
    pub(super) fn of(kind: std::fs::FileType, want: Want) -> Option<Self> {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_symlink() {
            Some(Self::Link)
        } else if kind.is_fifo() {
            Some(Self::Fifo)
        } else if kind.is_socket() {
            Some(Self::Socket)
        } else if kind.is_block_device() || kind.is_char_device() {
            Some(Self::Device)
        } else if kind.is_dir() {
            (want != Want::Folder).then_some(Self::Folder)
        } else {
            (want != Want::File).then_some(Self::File)
        }
    }
}

/// What an open found.
pub(super) enum Opened {
    Missing,
    Junk(Junk),
    /// What was wanted, open for reading (a folder: for its lock).
    Open(File, Metadata),
}

/// Opens `path` for reading without following a link or waiting on a FIFO, and says what it
/// found. Only an I/O failure (permissions, a vanished folder) is an error.
pub(super) fn open(path: &Path, want: Want) -> io::Result<Opened> {
    #[cfg(not(target_os = "linux"))]
    {
        // No O_NOFOLLOW | O_NONBLOCK here: look first (an entry swapped in between the look
        // and the open is not caught).
        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                if let Some(junk) = Junk::of(meta.file_type(), want) {
                    return Ok(Opened::Junk(junk));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::Missing),
            Err(e) => return Err(e),
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::OFlags;
        let flags = OFlags::NONBLOCK.union(OFlags::NOFOLLOW).bits();
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            i32::try_from(flags).unwrap_or_default(),
        );
    }
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::Missing),
        #[cfg(target_os = "linux")]
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Ok(Opened::Junk(Junk::Link))
        }
        // A socket (or a device without a driver) cannot be opened at all: say what it is.
        #[cfg(target_os = "linux")]
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
            return match std::fs::symlink_metadata(path) {
                Ok(meta) => Junk::of(meta.file_type(), want).map(Opened::Junk).ok_or(e),
                Err(gone) if gone.kind() == io::ErrorKind::NotFound => Ok(Opened::Missing),
                Err(_) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    Ok(match Junk::of(meta.file_type(), want) {
        Some(junk) => Opened::Junk(junk),
        None => Opened::Open(file, meta),
    })
}

/// What reading a file found.
pub(super) enum Found {
    Missing,
    Junk(Junk),
    /// The whole file, at most the limit, and its metadata as opened.
    Bytes(Vec<u8>, Metadata),
}

/// Reads the regular file at `path` if it is at most `limit` bytes, opened as [`open`] does.
/// A larger one is [`Junk::TooLarge`], told by its size before a byte is read, and a file that
/// grows meanwhile is still read no further than the limit.
pub(super) fn read(path: &Path, limit: usize) -> io::Result<Found> {
    use std::io::Read;
    let (file, meta) = match open(path, Want::File)? {
        Opened::Missing => return Ok(Found::Missing),
        Opened::Junk(junk) => return Ok(Found::Junk(junk)),
        Opened::Open(file, meta) => (file, meta),
    };
    let cap = u64::try_from(limit).unwrap_or(u64::MAX);
    if meta.len() > cap {
        return Ok(Found::Junk(Junk::TooLarge {
            size: meta.len(),
            limit,
        }));
    }
    let size = usize::try_from(meta.len()).unwrap_or(0);
    // One byte more than `fstat` said, read until the end or the size `fstat` said: a file that
    // has not grown is read whole by one call (a listing of a million reads them all), and a
    // short read (a network file system) only reads on.
    let mut bytes = vec![0; size.saturating_add(1)];
    let mut filled = 0;
    loop {
        match (&file).read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if filled == size {
            break;
        }
        if filled < bytes.len() {
            continue;
        }
        // Grown since the `fstat`: read on, up to one byte past the cap.
        let more = bytes.len().saturating_mul(2).min(limit.saturating_add(1));
        if more <= filled {
            break;
        }
        bytes.resize(more, 0);
    }
    bytes.truncate(filled);
    if bytes.len() > limit {
        return Ok(Found::Junk(Junk::TooLarge {
            size: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            limit,
        }));
    }
    Ok(Found::Bytes(bytes, meta))
}

/// Moves `path` into `corrupt` (made 0700 if missing) as `<prefix><name>.<nanoseconds>`: the
/// time is when it was moved, by which the sweeper deletes it after
/// [`super::QUARANTINE_DAYS`]. Returns where it went.
pub(super) fn set_aside(corrupt: &Path, path: &Path, prefix: &str) -> Result<PathBuf, StoreError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let target = corrupt.join(format!("{prefix}{name}.{nanos}"));
    create_private_dir(corrupt)?;
    std::fs::rename(path, &target).map_err(StoreError::io(path))?;
    Ok(target)
}

/// [`set_aside`] for what housekeeping (start-up, the sweeper) finds in `.tmp/` or `.locks/`,
/// logged either way; whether it was moved.
pub(super) fn set_aside_logged(corrupt: &Path, path: &Path, prefix: &str, junk: &Junk) -> bool {
    match set_aside(corrupt, path, prefix) {
        Ok(target) => {
            tracing::warn!(
                file = %path.display(), what = %junk, moved_to = %target.display(),
                "not something the store keeps here: moved aside"
            );
            true
        }
        Err(e) => {
            tracing::warn!(
                file = %path.display(), what = %junk, error = %e,
                "not something the store keeps here, and it could not be moved aside"
            );
            false
        }
    }
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
