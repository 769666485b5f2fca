//! The sweeper: finds expired session files by their modification time (the session's expiry)
//! and has each session's own I/O thread delete it after judging it again, so that a deletion is
//! ordered with the session's other jobs and never removes a version that a request has just
//! written. Also clears stale temporary folders, lock files of ended sessions and old
//! quarantined files, and moves junk (a FIFO, a socket, a link, a file over the size limit)
//! aside wherever it lies: nothing it meets is waited on or read past the size cap.

use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;

use super::disk::Expiry;
use super::entry::{self, Junk, Opened, Want};
use super::folder::remove_dead_temp_dirs;
use super::{Inner, SweepReport, QUARANTINE_DAYS};
use crate::store::backend::SessionSummary;
use crate::store::{record, StoreError};

/// Expired files handed to an I/O thread per job: small enough that requests waiting on that
/// thread are not held up for long, large enough that a big sweep is not all hand-offs.
const BATCH: usize = 64;

impl Inner {
    pub(super) fn sweep_and_log(self: &Arc<Self>) -> SweepReport {
        let started = std::time::Instant::now();
        let report = self.sweep(OffsetDateTime::now_utc());
        if report != SweepReport::default() {
            tracing::info!(
                expired = report.expired,
                quarantined = report.quarantined,
                stale_temp_dirs = report.stale_temp_dirs,
                elapsed_ms = started.elapsed().as_millis(),
                "session sweep"
            );
        }
        report
    }

    /// Deletes what has expired at `now`. Blocking; never call it on an I/O thread.
    pub(super) fn sweep(self: &Arc<Self>, now: OffsetDateTime) -> SweepReport {
        let temp = remove_dead_temp_dirs(&self.tmp_root, &self.corrupt_dir);
        let mut report = SweepReport {
            stale_temp_dirs: temp.removed,
            quarantined: temp.set_aside,
            ..SweepReport::default()
        };
        let threads = self.io.count();
        let mut due: Vec<Vec<[u8; 32]>> = vec![Vec::new(); threads];
        for digest in self.due_files(now.into()) {
            let queue = usize::from(digest[0]) % threads;
            due[queue].push(digest);
            if due[queue].len() == BATCH {
                self.expire(std::mem::take(&mut due[queue]), now, &mut report);
            }
        }
        for batch in due.into_iter().filter(|b| !b.is_empty()) {
            self.expire(batch, now, &mut report);
        }
        self.sweep_quarantine(now.into());
        report.quarantined += self.sweep_lock_files();
        report
    }

    /// Digests of the session files whose modification time (their expiry) has passed, and of
    /// the junk named like sessions whatever its time, for their I/O threads to move aside.
    fn due_files(&self, now: SystemTime) -> Vec<[u8; 32]> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the session folder");
                return Vec::new();
            }
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let digest = entry.file_name().to_str().and_then(parse_file_name)?;
                // `lstat`: a link is judged, not followed.
                let meta = entry.metadata().ok()?;
                let due = meta.modified().is_ok_and(|expiry| expiry <= now);
                (due || self.junk(&meta).is_some()).then_some(digest)
            })
            .collect()
    }

    /// What a session-named entry is, if not a session file, by its `lstat`.
    fn junk(&self, meta: &std::fs::Metadata) -> Option<Junk> {
        Junk::of(meta.file_type(), Want::File).or_else(|| {
            let limit = self.max_bytes;
            (meta.len() > u64::try_from(limit).unwrap_or(u64::MAX)).then_some(Junk::TooLarge {
                size: meta.len(),
                limit,
            })
        })
    }

    /// Every session file, with its end (its modification time, less the sub-millisecond
    /// stamp) and size: one `stat` per file, no file is read. Junk named like a session is
    /// not one: it is left out, with a warning (the sweep moves it aside).
    pub(super) fn list(&self) -> Result<Vec<SessionSummary>, StoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(StoreError::io(&self.dir))?;
        Ok(entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let digest = name.to_str().and_then(parse_file_name)?;
                let meta = entry.metadata().ok()?;
                if let Some(what) = self.junk(&meta) {
                    tracing::warn!(
                        file = %entry.path().display(), what = %what,
                        "not a session file: skipped (the next sweep moves it aside)"
                    );
                    return None;
                }
                let expiry = meta.modified().ok()?;
                Some(SessionSummary {
                    stem: crate::store::id::stem(&digest),
                    expires_at: record::whole_seconds(OffsetDateTime::from(expiry)),
                    bytes: Some(meta.len()),
                })
            })
            .collect())
    }

    /// Has the I/O thread of `batch` (one thread's sessions) delete those still expired.
    fn expire(
        self: &Arc<Self>,
        batch: Vec<[u8; 32]>,
        now: OffsetDateTime,
        report: &mut SweepReport,
    ) {
        let Some(first) = batch.first().copied() else {
            return;
        };
        let inner = Arc::clone(self);
        let outcome = self.io.run_blocking(first[0], move || {
            let mut done = SweepReport::default();
            for digest in &batch {
                match inner.remove_if_expired(digest, now)? {
                    Expiry::Deleted => done.expired += 1,
                    Expiry::Quarantined => done.quarantined += 1,
                    Expiry::Live | Expiry::Absent => {}
                }
            }
            Ok(done)
        });
        match outcome {
            Ok(done) => {
                report.expired += done.expired;
                report.quarantined += done.quarantined;
            }
            Err(e) => tracing::warn!(error = %e, "sweep of expired sessions interrupted"),
        }
    }

    /// Removes the lock files (`[session] lock = true`) of sessions that no longer exist and that
    /// nobody holds, and moves aside whatever in `.locks/` is not a regular file (a request's
    /// lock would wait on a FIFO there); returns how many were moved aside.
    fn sweep_lock_files(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.dir.join(".locks")) else {
            return 0;
        };
        let mut set_aside = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            // The listing's own type settles most junk without an open; the open catches the
            // rest (an entry swapped since the listing).
            let junk = match entry.file_type().ok().and_then(|t| Junk::of(t, Want::File)) {
                Some(junk) => junk,
                None => {
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if self.dir.join(format!("{name}.json")).exists() {
                        continue;
                    }
                    match entry::open(&path, Want::File) {
                        Ok(Opened::Open(file, _)) => {
                            if file.try_lock().is_ok() {
                                let _ = std::fs::remove_file(&path);
                            }
                            continue;
                        }
                        Ok(Opened::Junk(junk)) => junk,
                        Ok(Opened::Missing) | Err(_) => continue,
                    }
                }
            };
            set_aside += usize::from(entry::set_aside_logged(
                &self.corrupt_dir,
                &path,
                "lock-",
                &junk,
            ));
        }
        set_aside
    }

    /// Deletes quarantined files once they are [`QUARANTINE_DAYS`] old, by the time in their name
    /// (their modification time is the session's expiry, not when they were moved aside).
    fn sweep_quarantine(&self, now: SystemTime) {
        let Ok(entries) = std::fs::read_dir(&self.corrupt_dir) else {
            return;
        };
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let max_age = u128::from(QUARANTINE_DAYS) * 86_400 * 1_000_000_000;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let moved_at = name
                .to_str()
                .and_then(|n| n.rsplit('.').next())
                .and_then(|t| t.parse::<u128>().ok());
            if moved_at.is_some_and(|t| now.saturating_sub(t) > max_age) {
                // A folder moved aside (junk found in `.locks/`) goes whole.
                let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(entry.path())
                } else {
                    std::fs::remove_file(entry.path())
                };
            }
        }
    }
}

/// `<64 hex>.json` to its digest; anything else is not ours.
pub(super) fn parse_file_name(name: &str) -> Option<[u8; 32]> {
    let stem = name.strip_suffix(".json")?;
    // Only the lower-case spelling the store writes: `hex` would also take upper case.
    if stem.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(stem, &mut digest).ok()?;
    Some(digest)
}
