//! What this process remembers of each session file: which version of the file it last read or
//! wrote (its [`FileVersion`]), that version's expiry and creation time, and, with the read cache
//! on, its data. Bounded by weight, with S3-FIFO eviction (`quick_cache`), so that a server with
//! more live sessions than fit keeps its hottest ones instead of forgetting everything at once.
//!
//! Why a remembered version can be trusted: every write of a session makes a new file (a new
//! inode) and swaps it in, and a change made by hand changes the file's inode, size, modification
//! or change time. Whoever made it (this process, another server process, a person with an
//! editor, a restore), one `stat` of the path tells whether the file is still the version that
//! was remembered. So a read served from memory is exactly what the file holds now.

use std::fs::Metadata;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::store::record::{SessionRecord, SessionState};

/// Weight of a remembered session besides its data (key, times, version, bookkeeping), in bytes.
const ENTRY_OVERHEAD: u64 = 160;
/// Expected weight of one remembered session, to size the table up front.
const TYPICAL_WEIGHT: u64 = 512;

/// Which version of a file a path holds: equal only if nothing has replaced or changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileVersion {
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

/// One remembered session file.
#[derive(Debug)]
pub(super) struct Remembered {
    pub version: FileVersion,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The session's data as in that version, when the read cache is on.
    pub state: Option<SessionState>,
}

#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<[u8; 32], Arc<Remembered>> for ByBytes {
    fn weight(&self, _key: &[u8; 32], entry: &Arc<Remembered>) -> u64 {
        let data: usize = entry
            .state
            .as_ref()
            .map_or(0, |s| s.iter().map(|(k, v)| k.len() + v.len() + 48).sum());
        ENTRY_OVERHEAD.saturating_add(u64::try_from(data).unwrap_or(u64::MAX))
    }
}

/// The remembered versions, by session digest.
pub(super) struct Memo {
    entries: quick_cache::sync::Cache<[u8; 32], Arc<Remembered>, ByBytes>,
    keep_state: bool,
}

impl Memo {
    /// A memo of at most `capacity_bytes` (approximately); `keep_state` is the read cache.
    pub(super) fn new(capacity_bytes: u64, keep_state: bool) -> Self {
        let items = usize::try_from(capacity_bytes / TYPICAL_WEIGHT)
            .unwrap_or(usize::MAX)
            .max(16);
        Self {
            entries: quick_cache::sync::Cache::with_weighter(items, capacity_bytes.max(1), ByBytes),
            keep_state,
        }
    }

    /// Remembers that the session's file is now `version`, holding `record`.
    pub(super) fn remember(&self, digest: [u8; 32], version: FileVersion, record: &SessionRecord) {
        let entry = Remembered {
            version,
            created_at: record.created_at,
            expires_at: record.expires_at,
            state: self.keep_state.then(|| record.state()),
        };
        self.entries.insert(digest, Arc::new(entry));
    }

    pub(super) fn forget(&self, digest: &[u8; 32]) {
        self.entries.remove(digest);
    }

    pub(super) fn get(&self, digest: &[u8; 32]) -> Option<Arc<Remembered>> {
        self.entries.get(digest)
    }

    /// What is remembered of the session if its file is still `version`.
    pub(super) fn current(
        &self,
        digest: &[u8; 32],
        version: FileVersion,
    ) -> Option<Arc<Remembered>> {
        self.get(digest).filter(|e| e.version == version)
    }

    /// How many sessions are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(visits: u32) -> SessionRecord {
        let state: SessionState = [("visits".to_owned(), visits.to_string())].into();
        let now = OffsetDateTime::now_utc();
        SessionRecord::new(&state, now, now, &time::Duration::hours(1)).expect("record")
    }

    #[test]
    fn a_version_is_trusted_only_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        std::fs::write(&path, b"one").expect("write");
        let v1 = FileVersion::of(&std::fs::metadata(&path).expect("stat"));
        let memo = Memo::new(1 << 20, true);
        memo.remember([1; 32], v1, &record(1));
        assert!(memo.current(&[1; 32], v1).is_some());
        // Edited in place: same inode, other size and times.
        std::fs::write(&path, b"three").expect("edit");
        let v2 = FileVersion::of(&std::fs::metadata(&path).expect("stat"));
        assert_ne!(v1, v2);
        assert!(memo.current(&[1; 32], v2).is_none());
    }

    #[test]
    fn bounded_with_eviction_not_a_collapse() {
        let memo = Memo::new(200 * TYPICAL_WEIGHT, true);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        std::fs::write(&path, b"x").expect("write");
        let v = FileVersion::of(&std::fs::metadata(&path).expect("stat"));
        for i in 0..10_000u32 {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_le_bytes());
            memo.remember(d, v, &record(i));
        }
        let n = memo.len();
        assert!(n > 100 && n < 10_000, "{n} remembered");
    }

    #[test]
    fn parallel_remember_and_lookup_never_mix_versions() {
        let memo = Arc::new(Memo::new(1 << 20, true));
        let dir = tempfile::tempdir().expect("tempdir");
        let versions: Vec<FileVersion> = (0..8)
            .map(|i| {
                let p = dir.path().join(i.to_string());
                std::fs::write(&p, vec![b'x'; i + 1]).expect("write");
                FileVersion::of(&std::fs::metadata(&p).expect("stat"))
            })
            .collect();
        let versions = Arc::new(versions);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (memo, versions) = (Arc::clone(&memo), Arc::clone(&versions));
                std::thread::spawn(move || {
                    for round in 0..2_000u32 {
                        let i = usize::try_from((round + t) % 8).expect("small");
                        let visits = u32::try_from(i).expect("small");
                        memo.remember([7; 32], versions[i], &record(visits));
                        for (j, v) in versions.iter().enumerate() {
                            if let Some(e) = memo.current(&[7; 32], *v) {
                                let state = e.state.as_ref().expect("kept");
                                assert_eq!(
                                    state["visits"],
                                    j.to_string(),
                                    "version and data agree"
                                );
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
    }
}
