//! The sweeper: deletes expired session files (found by their modification time, confirmed by
//! their content), stale temporary folders, lock files of ended sessions and old quarantined
//! files, every `cleanup_interval`, on a thread of its own.

use std::fs::File;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use super::folder::{read_capped, remove_dead_temp_dirs};
use super::{Inner, SweepReport, QUARANTINE_DAYS};
use crate::store::record::{RecordError, SessionRecord};

impl Inner {
    pub(super) fn sweep(&self, now_sys: SystemTime) -> SweepReport {
        let now = OffsetDateTime::from(now_sys);
        let mut report = SweepReport {
            stale_temp_dirs: remove_dead_temp_dirs(&self.dir.join(".tmp")),
            ..SweepReport::default()
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the session folder");
                return report;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(digest) = name.to_str().and_then(parse_file_name) else {
                continue;
            };
            // The modification time is the expiry: only files past it are opened.
            let due = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|expiry| expiry <= now_sys);
            if !due {
                continue;
            }
            let path = entry.path();
            match read_capped(&path, self.max_bytes)
                .map_err(|e| e.to_string())
                .and_then(|b| SessionRecord::from_bytes(&b).map_err(|e: RecordError| e.to_string()))
            {
                Ok(record) if record.is_expired(now) => {
                    if self.remove(&digest).is_ok() {
                        report.expired += 1;
                    }
                }
                Ok(_) => {}
                Err(_) if !path.exists() => {}
                Err(why) => {
                    self.quarantine(&path, &why);
                    report.quarantined += 1;
                }
            }
        }
        self.sweep_quarantine(now_sys);
        self.sweep_lock_files();
        report
    }

    /// Removes the lock files (`[session] lock = true`) of sessions that no longer exist and that
    /// nobody holds.
    fn sweep_lock_files(&self) {
        let Ok(entries) = std::fs::read_dir(self.dir.join(".locks")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if self.dir.join(format!("{name}.json")).exists() {
                continue;
            }
            let path = entry.path();
            if File::open(&path).is_ok_and(|f| f.try_lock().is_ok()) {
                let _ = std::fs::remove_file(&path);
            }
        }
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
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// `<64 hex>.json` to its digest; anything else is not ours.
pub(super) fn parse_file_name(name: &str) -> Option<[u8; 32]> {
    let stem = name.strip_suffix(".json")?;
    if stem.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, pair) in stem.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        if !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        digest[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(digest)
}

pub(super) fn spawn_sweeper(store: Weak<Inner>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("session-sweeper".into())
        .spawn(move || {
            let tick = every.min(Duration::from_secs(1));
            let mut waited = Duration::ZERO;
            loop {
                std::thread::sleep(tick);
                waited += tick;
                let Some(inner) = store.upgrade() else { return };
                if waited >= every {
                    waited = Duration::ZERO;
                    let started = std::time::Instant::now();
                    let report = inner.sweep(SystemTime::now());
                    if report != SweepReport::default() {
                        tracing::info!(
                            expired = report.expired,
                            quarantined = report.quarantined,
                            stale_temp_dirs = report.stale_temp_dirs,
                            elapsed_ms = started.elapsed().as_millis(),
                            "session sweep"
                        );
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the session sweeper; expired files stay until read");
    }
}
