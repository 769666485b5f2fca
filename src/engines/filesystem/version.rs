//! [`FileVersion`]: which version of a session file a path holds, the version the read cache
//! ([`crate::store::cache`]) compares at every load.
//!
//! Why a version can be trusted: every write of a session makes a new file (a new inode) and
//! swaps it in, and a change made by hand changes the file's inode, size, modification or change
//! time. Whoever made it (this process, another server process, a person with an editor, a
//! restore), one `stat` of the path tells whether the file is still the version that was read.
//! Also the time every version is written with ([`stamp`]): its expiry, marked as the store's.

use std::fs::Metadata;
use std::time::SystemTime;

use time::OffsetDateTime;

/// Which version of a file a path holds: equal only if nothing has replaced or changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileVersion {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileVersion {
    /// Whether `other` is the same file as this, after a rename (which changes the change time
    /// only): same inode, size and modification time.
    pub(super) fn is_same_file(&self, other: &Self) -> bool {
        (self.dev, self.ino, self.size, self.mtime)
            == (other.dev, other.ino, other.size, other.mtime)
    }

    pub(super) fn of(meta: &Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The modification time a version is written with: its expiry (so the sweeper finds due files
/// from metadata, and `ls -l` shows when each session ends), plus a fraction of a millisecond
/// that is both random and the store's mark. Expiries are whole seconds, so the fraction costs
/// nothing visible. Random: one of a thousand, so that two versions are not taken for one by the
/// read cache even with the inode number reused and a file system clock too coarse to tell their
/// change times apart. A mark: a multiple of [`MARK`] nanoseconds plus the expiry's seconds modulo
/// [`MARK`], which a time set any other way (`touch`, `cp`, a restore, an editor) has about once
/// in a million, so that the sweeper may trust the time alone ([`written_as_expiry`]).
pub(super) fn stamp(expires_at: OffsetDateTime) -> SystemTime {
    let seconds = u64::try_from(expires_at.unix_timestamp()).unwrap_or(0);
    let random = 1 + getrandom::u64().map_or(0, |r| r % 1001);
    let nanos = random * MARK + seconds % MARK;
    SystemTime::from(expires_at) + std::time::Duration::from_nanos(nanos)
}

/// The modulus of the store's mark on a modification time (a prime, below a thousand).
const MARK: u64 = 997;

/// Whether a modification time carries the store's mark (see [`stamp`]): the store wrote it as
/// the session's expiry, so that the time alone says whether the version has expired. Any other
/// time is only a hint, and the file is read before it is judged.
pub(super) fn written_as_expiry(modified: SystemTime) -> bool {
    modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .is_ok_and(|since| {
            let nanos = u64::from(since.subsec_nanos());
            (MARK..1_000_000).contains(&nanos) && nanos % MARK == since.as_secs() % MARK
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_version_is_trusted_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        std::fs::write(&path, b"one").expect("write");
        let v1 = FileVersion::of(&std::fs::metadata(&path).expect("stat"));
        assert_eq!(
            v1,
            FileVersion::of(&std::fs::metadata(&path).expect("stat"))
        );
        // Edited in place: same inode, other size and times.
        std::fs::write(&path, b"three").expect("edit");
        let v2 = FileVersion::of(&std::fs::metadata(&path).expect("stat"));
        assert_ne!(v1, v2);
        assert!(!v1.is_same_file(&v2));
    }

/// Times set any other way almost never carry the mark: none of a whole second's, and about
    /// one in a million of the others.
    #[test]
    fn times_set_by_hand_do_not_carry_the_stores_mark() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let mut marked = 0;
        for i in 0..2_000_000u64 {
            let at = base + Duration::from_nanos(i.wrapping_mul(2_654_435_761) % 1_000_000_000);
            marked += usize::from(written_as_expiry(at + Duration::from_secs(i % 1000)));
            assert!(!written_as_expiry(base + Duration::from_secs(i)));
        }
        assert!(marked <= 10, "{marked} of 2,000,000 times taken for the store's");
    }
}
