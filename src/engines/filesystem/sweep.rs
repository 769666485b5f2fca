//! The sweeper: finds expired session files by their modification time (the session's expiry,
//! which every write sets) and has each session's own I/O thread delete the version it found, so
//! that a deletion is ordered with the session's other jobs and never removes a version that a
//! request has just written: the file is taken out of place and deleted only if it is still the
//! version the listing judged (same inode, size and time), else put back. A file whose time the
//! store wrote is not read (a million expired sessions cost two directory operations each); one
//! whose time was set otherwise (by hand, a restore) is read and judged by its content. The I/O
//! threads work through their shares at once while the folder is still being read. Also clears stale temporary folders, lock files of ended sessions and old
//! quarantined files, and moves junk (a FIFO, a socket, a link, a file over the size limit)
//! aside wherever it lies: nothing it meets is waited on or read past the size cap.

use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;

use super::disk::Expiry;
use super::entry::{self, Junk, Opened, Want};
use super::folder::remove_dead_temp_dirs;
use super::version::{written_as_expiry, FileVersion};
use super::{Inner, SweepReport, QUARANTINE_DAYS};
use crate::store::backend::{SessionSummary, LIST_BATCH};
use crate::store::record::{self, SessionRecord};
use crate::store::StoreError;

/// Expired files handed to an I/O thread per job: small enough that requests waiting on that
/// thread are not held up for long, large enough that a big sweep is not all hand-offs.
const BATCH: usize = 64;

impl Inner {
    pub(super) fn sweep_and_log(self: &Arc<Self>) -> SweepReport {
        let started = std::time::Instant::now();
        let report = self.sweep(self.clock.now());
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
        let done = std::thread::scope(|scope| {
            // One feeder per I/O thread, each handing its thread one batch at a time, so that
            // every I/O thread works while the folder is read and at most a few batches wait.
            let (feeds, feeders): (Vec<_>, Vec<_>) = (0..threads)
                .map(|_| {
                    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Due>>(2);
                    let feeder = scope.spawn(move || {
                        let mut done = SweepReport::default();
                        for batch in rx {
                            self.expire(batch, now, &mut done);
                        }
                        done
                    });
                    (tx, feeder)
                })
                .unzip();
            let mut due: Vec<Vec<Due>> = vec![Vec::new(); threads];
            self.each_due_file(now.into(), |found| {
                let queue = usize::from(found.digest[0]) % threads;
                due[queue].push(found);
                if due[queue].len() == BATCH {
                    let _ = feeds[queue].send(std::mem::take(&mut due[queue]));
                }
            });
            for (feed, batch) in feeds.iter().zip(due) {
                if !batch.is_empty() {
                    let _ = feed.send(batch);
                }
            }
            drop(feeds);
            feeders
                .into_iter()
                .filter_map(|f| f.join().ok())
                .fold(SweepReport::default(), |mut all, done| {
                    all.expired += done.expired;
                    all.quarantined += done.quarantined;
                    all
                })
        });
        report.expired += done.expired;
        report.quarantined += done.quarantined;
        // By the system's time, as the set-aside files are named (housekeeping, not a
        // session's end: a test's clock must not age them).
        self.sweep_quarantine(SystemTime::now());
        report.quarantined += self.sweep_lock_files();
        report
    }

    /// Hands `each` every session file whose modification time (its expiry) has passed, with
    /// the version that time was read from when the store wrote that time (else without: its
    /// I/O thread reads the file and judges it by its content), and the junk named like
    /// sessions whatever its time (its I/O thread moves it aside).
    fn each_due_file(&self, now: SystemTime, mut each: impl FnMut(Due)) {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the session folder");
                return;
            }
        };
        for entry in entries.flatten() {
            let Some(digest) = entry.file_name().to_str().and_then(parse_file_name) else {
                continue;
            };
            // `lstat`: a link is judged, not followed.
            let Ok(meta) = entry.metadata() else { continue };
            if self.junk(&meta).is_some() {
                each(Due {
                    digest,
                    judged: None,
                });
            } else if let Some(expiry) = meta.modified().ok().filter(|expiry| *expiry <= now) {
                // The store's own time is judged as it is; any other is read first.
                let judged = written_as_expiry(expiry).then(|| FileVersion::of(&meta));
                each(Due { digest, judged });
            }
        }
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
    /// stamp) and size, handed to `each` [`LIST_BATCH`] at a time until it answers false: one
    /// `stat` per file, no file is read. Junk named like a session is not one: it is left out,
    /// with a warning (the sweep moves it aside).
    pub(super) fn list_each(
        &self,
        mut each: impl FnMut(Vec<SessionSummary>) -> bool,
    ) -> Result<(), StoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(StoreError::io(&self.dir))?;
        let mut batch = Vec::with_capacity(LIST_BATCH);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(digest) = name.to_str().and_then(parse_file_name) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if let Some(what) = self.junk(&meta) {
                tracing::warn!(
                    file = %entry.path().display(), what = %what,
                    "not a session file: skipped (the next sweep moves it aside)"
                );
                continue;
            }
            let Ok(expiry) = meta.modified() else { continue };
            batch.push(SessionSummary {
                stem: crate::store::id::stem(&digest),
                expires_at: record::whole_seconds(OffsetDateTime::from(expiry)),
                bytes: Some(meta.len()),
            });
            if batch.len() == LIST_BATCH && !each(std::mem::replace(&mut batch, Vec::with_capacity(LIST_BATCH))) {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            each(batch);
        }
        Ok(())
    }

    /// Read as a request reads (no link followed, no FIFO waited on, nothing past the size cap)
    /// but moving nothing: what is not a session file is [`StoreError::NotASessionFile`], left
    /// for the sweeper. Blocking.
    pub(super) fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let path = self.path_of(digest);
        match entry::read(&path, self.max_bytes).map_err(StoreError::io(&path))? {
            entry::Found::Missing => Ok(None),
            entry::Found::Junk(what) => Err(StoreError::NotASessionFile { path, what }),
            entry::Found::Bytes(bytes, _) => SessionRecord::from_bytes(&bytes)
                .map(Some)
                .map_err(StoreError::NotARecord),
        }
    }

    /// Has the I/O thread of `batch` (one thread's sessions) delete the versions found expired
    /// (and read and move aside the junk).
    fn expire(self: &Arc<Self>, batch: Vec<Due>, now: OffsetDateTime, report: &mut SweepReport) {
        let Some(first) = batch.first().map(|d| d.digest) else {
            return;
        };
        let inner = Arc::clone(self);
        let outcome = self.io.run_blocking(first[0], move || {
            let mut done = SweepReport::default();
            for due in &batch {
                let outcome = match due.judged {
                    Some(judged) => {
                        let path = inner.path_of(&due.digest);
                        // Rewritten since the listing: a live version is never even moved.
                        match std::fs::symlink_metadata(&path) {
                            Ok(meta) if judged.is_same_file(&FileVersion::of(&meta)) => {
                                inner.remove_judged(&due.digest, &path, judged)?
                            }
                            Ok(_) => Expiry::Live,
                            Err(_) => Expiry::Absent,
                        }
                    }
                    None => inner.remove_if_expired(&due.digest, now)?,
                };
                match outcome {
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

/// A session file the sweep found due: expired by the time the store wrote (`judged`: the
/// version that time was read from), or to be read and judged by its content (`None`: a time
/// set by hand, or junk to move aside).
#[derive(Clone, Copy)]
struct Due {
    digest: [u8; 32],
    judged: Option<FileVersion>,
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
