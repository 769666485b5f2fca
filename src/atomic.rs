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
//! (other systems) or refused (NFS, many FUSE file systems), a check and a plain rename take its
//! place: a delete can then slip between the two and be undone by the rename. [`probe_swaps`]
//! finds out at start-up which case a folder is in, and warns once.
//!
//! One file: the crash-safe replacement protocol (write aside, swap, compare, clean up) and the
//! probe of what the file system supports are one set of invariants, tested together below.

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
                // `tmp` now names the old version. The new one is in place whatever happens to
                // the old: failing to remove it (or a crash right here) leaves it in the
                // temporary folder, which start-up and the sweeper clear.
                if let Err(e) = std::fs::remove_file(tmp) {
                    tracing::warn!(file = %tmp.display(), error = %e, "old session version left in the temporary folder");
                }
                Ok(Placed::Done)
            }
            // ENOENT is also the answer for a missing `tmp`: that is a failure, not an ended
            // session.
            Err(rustix::io::Errno::NOENT) if !tmp.exists() => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the new version vanished from the temporary folder before it was placed",
            )),
            Err(rustix::io::Errno::NOENT) => Ok(Placed::TargetMissing),
            Err(e) if exchange_refused(e) => rename_if_present(tmp, target),
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    rename_if_present(tmp, target)
}

/// Whether `renameat2(RENAME_EXCHANGE)` failed because the file system (or kernel) does not do
/// exchanges, as opposed to failing on these particular files.
#[cfg(target_os = "linux")]
fn exchange_refused(e: rustix::io::Errno) -> bool {
    matches!(e, rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS)
}

fn rename_if_present(tmp: &Path, target: &Path) -> io::Result<Placed> {
    if !target.exists() {
        return Ok(Placed::TargetMissing);
    }
    std::fs::rename(tmp, target)?;
    Ok(Placed::Done)
}

/// How [`exchange`] replaces files in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapSupport {
    /// By one atomic exchange: an update never undoes a concurrent delete.
    Atomic,
    /// By a check then a rename, because the file system refuses exchanges: a delete that lands
    /// between the two is undone by the rename.
    Fallback {
        /// The file system's name (`nfs`, `fuse`, ...), from `statfs`.
        file_system: String,
    },
}

/// Finds out whether [`exchange`] is atomic in `dir` by exchanging two probe files there, and
/// logs one warning naming the file system when it is not. The probe files are removed.
pub fn probe_swaps(dir: &Path) -> io::Result<SwapSupport> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(io::Error::other)?;
    let stem = format!(
        ".swap-probe-{}-{:016x}",
        std::process::id(),
        u64::from_ne_bytes(nonce)
    );
    let (a, b) = (dir.join(format!("{stem}-a")), dir.join(format!("{stem}-b")));
    let outcome = write_new(&a, b"a", None, Durability::Process)
        .and_then(|()| write_new(&b, b"b", None, Durability::Process))
        .and_then(|()| try_exchange(&a, &b));
    for probe in [&a, &b] {
        match std::fs::remove_file(probe) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let support = outcome?;
    if let SwapSupport::Fallback { file_system } = &support {
        tracing::warn!(
            dir = %dir.display(),
            file_system = %file_system,
            "this file system refuses atomic exchanges (renameat2 RENAME_EXCHANGE): a session \
             update replaces its file by a check then a rename, so a logout or expiry that lands \
             between the two can be undone; keep the session folder on a local file system \
             (ext4, xfs, btrfs, tmpfs)"
        );
    }
    Ok(support)
}

/// Exchanges `a` and `b` and says what that tells about the folder.
fn try_exchange(a: &Path, b: &Path) -> io::Result<SwapSupport> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        let dir = a.parent().unwrap_or(Path::new("."));
        support_from(renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE), || {
            file_system_name(dir)
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(SwapSupport::Fallback {
            file_system: "(no renameat2 on this system)".to_owned(),
        })
    }
}

/// The verdict on one probe exchange: `file_system` names the folder's file system when needed.
#[cfg(target_os = "linux")]
fn support_from(
    exchanged: rustix::io::Result<()>,
    file_system: impl FnOnce() -> String,
) -> io::Result<SwapSupport> {
    match exchanged {
        Ok(()) => Ok(SwapSupport::Atomic),
        Err(e) if exchange_refused(e) => Ok(SwapSupport::Fallback {
            file_system: file_system(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The name of the file system holding `dir`, from `statfs`'s magic number.
#[cfg(target_os = "linux")]
fn file_system_name(dir: &Path) -> String {
    match rustix::fs::statfs(dir) {
        // Magic numbers are 32 bits; `f_type`'s width and sign vary by architecture.
        #[allow(clippy::unnecessary_cast)]
        Ok(stat) => magic_name(stat.f_type as u32),
        Err(e) => format!("unknown (statfs failed: {e})"),
    }
}

/// The file system a `statfs` magic number stands for (from linux/magic.h and the file systems'
/// own headers), the ones a session folder may plausibly live on.
#[cfg(target_os = "linux")]
fn magic_name(magic: u32) -> String {
    let name = match magic {
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x517b => "smb",
        0xff53_4d42 => "cifs",
        0xfe53_4d42 => "smb2",
        0x0102_1997 => "9p",
        0x00c3_6400 => "ceph",
        0x6b41_4653 => "afs",
        0x4750_4653 => "gpfs",
        0x0bd0_0bd0 => "lustre",
        0x4d44 => "vfat",
        0x2011_bab0 => "exfat",
        0x5346_544e => "ntfs",
        0x7366_746e => "ntfs3",
        0xf15f => "ecryptfs",
        0xef53 => "ext2/3/4",
        0x5846_5342 => "xfs",
        0x9123_683e => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794c_7630 => "overlayfs",
        0x2fc1_2fc1 => "zfs",
        0xca45_1a4e => "bcachefs",
        _ => return format!("unknown (statfs type {magic:#x})"),
    };
    name.to_owned()
}

/// Opens (creating it 0600 if needed) and exclusively `flock`s `path`, waiting for any other
/// holder; the lock is released when the returned file is dropped.
///
/// A lock file may be unlinked (the sweeper removes those of ended sessions) while someone waits
/// on it; the waiter would then hold a lock on a file nobody else can reach, beside a newcomer
/// locking the new file at `path`. So, once locked, the path must still name the locked file;
/// if not, the lock is dropped and taken again on what the path names now.
///
/// Anything but a regular file at `path` (a FIFO, a link) is an error at once, never waited on:
/// the open neither blocks nor follows a link.
pub fn lock_exclusive(path: &Path) -> io::Result<File> {
    lock_at(path, true)?.ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))
}

/// [`lock_exclusive`] without the wait: `Ok(None)` when another holds the lock, so that a
/// caller can bound its wait (`[session] lock_timeout`).
pub fn try_lock_exclusive(path: &Path) -> io::Result<Option<File>> {
    lock_at(path, false)
}

fn lock_at(path: &Path, wait: bool) -> io::Result<Option<File>> {
    use std::os::unix::fs::MetadataExt;
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // A FIFO without a reader then fails with ENXIO instead of holding the request; `flock`
    // still waits for another holder (it ignores O_NONBLOCK).
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::OFlags;
        let flags = OFlags::NONBLOCK.union(OFlags::NOFOLLOW).bits();
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            i32::try_from(flags).unwrap_or_default(),
        );
    }
    loop {
        let file = options.open(path)?;
        let held = file.metadata()?;
        if !held.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        if wait {
            file.lock()?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(Some(file)),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Makes a directory's entries (a rename, an unlink) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The folder `path` is in (`.` for a bare file name).
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Replaces `target` with `bytes` in one step, through a temporary sibling, fsynced: for rare,
/// precious writes such as the user database.
pub fn replace_synced(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = folder_of(target);
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
    fn a_waiter_on_an_unlinked_lock_file_locks_the_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        let first = lock_exclusive(&path).expect("first holder");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let held = lock_exclusive(&path).expect("waiter");
                tx.send(()).expect("send");
                std::thread::sleep(std::time::Duration::from_millis(50));
                drop(held);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        // The sweeper removes the lock file; a newcomer locks the new file at the path.
        std::fs::remove_file(&path).expect("unlink");
        let newcomer = lock_exclusive(&path).expect("newcomer");
        drop(first);
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "the waiter ran beside the newcomer"
        );
        drop(newcomer);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the waiter gets the lock once the newcomer is done");
        waiter.join().expect("no panic");
    }

    /// A FIFO at a session's lock path (`.locks/<hex>`) held every request of that session in
    /// `open()` until a reader came, with `lock = true`; a link there was followed. Both are
    /// refused at once now (the request is then served without the lock, logged).
    #[test]
    fn a_fifo_or_a_link_at_a_lock_path_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let link = dir.path().join("link");
        std::fs::write(dir.path().join("target"), b"").expect("write");
        std::os::unix::fs::symlink(dir.path().join("target"), &link).expect("symlink");
        let (tx, rx) = std::sync::mpsc::channel();
        let (f, l) = (fifo.clone(), link.clone());
        std::thread::spawn(move || {
            let _ = tx.send((lock_exclusive(&f).is_err(), lock_exclusive(&l).is_err()));
        });
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(refused) => assert_eq!(refused, (true, true), "(FIFO, link) refused"),
            Err(_) => {
                // Wakes the open() stuck on the FIFO, so that the test ends either way.
                let _reader = std::os::unix::fs::OpenOptionsExt::custom_flags(
                    OpenOptions::new().read(true),
                    0o4000,
                )
                .open(&fifo);
                panic!("locking a FIFO was still blocked after 10 s");
            }
        }
    }

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

    #[test]
    fn a_local_folder_swaps_atomically_and_the_probe_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(probe_swaps(dir.path()).expect("probe"), SwapSupport::Atomic);
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
        assert!(probe_swaps(&dir.path().join("missing")).is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_refused_exchange_means_the_fallback_on_that_file_system() {
        use rustix::io::Errno;
        for refused in [Errno::INVAL, Errno::NOSYS] {
            assert_eq!(
                support_from(Err(refused), || magic_name(0x6969)).expect("verdict"),
                SwapSupport::Fallback {
                    file_system: "nfs".into()
                }
            );
        }
        assert_eq!(
            support_from(Ok(()), || unreachable!("named only on refusal")).expect("verdict"),
            SwapSupport::Atomic
        );
        let other = support_from(Err(Errno::ACCESS), || "nfs".into()).expect_err("an I/O error");
        assert_eq!(other.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(magic_name(0x6573_5546), "fuse");
        assert_eq!(magic_name(0x1234_abcd), "unknown (statfs type 0x1234abcd)");
    }
}
