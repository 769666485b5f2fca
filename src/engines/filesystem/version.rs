//! [`FileVersion`]: which version of a session file a path holds, the version the read cache
//! ([`crate::store::cache`]) compares at every load.
//!
//! Why a version can be trusted: every write of a session makes a new file (a new inode) and
//! swaps it in, and a change made by hand changes the file's inode, size, modification or change
//! time. Whoever made it (this process, another server process, a person with an editor, a
//! restore), one `stat` of the path tells whether the file is still the version that was read.

use std::fs::Metadata;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
