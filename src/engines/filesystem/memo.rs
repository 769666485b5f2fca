//! What this process remembers of each session file it last read or wrote: when the session
//! began and when that version ends. The writes use it to skip work: an update keeps the creation
//! time without reading the file, and a TTL write whose expiry is already on disk is skipped.
//!
//! It is not a read cache (that is [`crate::store::cache`], which this store can sit behind):
//! nothing is ever served from it. A stale entry (the file changed or vanished since) costs at
//! most a write that finds the file gone, which then ends the session (deletion wins). Bounded,
//! with S3-FIFO eviction (`quick_cache`), so that a server with more live sessions than fit keeps
//! its hottest ones instead of forgetting everything at once.

use time::OffsetDateTime;

use crate::store::record::SessionRecord;

/// Memory one remembered session takes: its digest, two times, and the table's bookkeeping.
const ENTRY_BYTES: u64 = 96;

/// When a remembered session began and ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Times {
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The remembered times, by session digest.
pub(super) struct Memo {
    entries: quick_cache::sync::Cache<[u8; 32], Times>,
}

impl Memo {
    /// A memo of at most `capacity_bytes` (approximately).
    pub(super) fn new(capacity_bytes: u64) -> Self {
        let items = usize::try_from(capacity_bytes / ENTRY_BYTES)
            .unwrap_or(usize::MAX)
            .max(16);
        Self {
            entries: quick_cache::sync::Cache::new(items),
        }
    }

    /// Remembers that the session's file now holds `record`.
    pub(super) fn remember(&self, digest: [u8; 32], record: &SessionRecord) {
        let times = Times {
            created_at: record.created_at,
            expires_at: record.expires_at,
        };
        self.entries.insert(digest, times);
    }

    pub(super) fn forget(&self, digest: &[u8; 32]) {
        self.entries.remove(digest);
    }

    pub(super) fn get(&self, digest: &[u8; 32]) -> Option<Times> {
        self.entries.get(digest)
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
        let state = [("visits".to_owned(), visits.to_string())].into();
        let now = OffsetDateTime::now_utc();
        SessionRecord::new(&state, now, now, &time::Duration::hours(1)).expect("record")
    }

    #[test]
    fn bounded_with_eviction_not_a_collapse() {
        let memo = Memo::new(200 * ENTRY_BYTES);
        for i in 0..10_000u32 {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_le_bytes());
            memo.remember(d, &record(i));
        }
        let n = memo.len();
        assert!(n > 100 && n < 10_000, "{n} remembered");
    }
}
