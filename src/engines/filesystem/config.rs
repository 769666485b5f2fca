//! `[session.filesystem]`: the file store's folder, sweeping, durability and threads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::shown::{path, s, secs, Keys};
use crate::store::backend::Capabilities;

use crate::config::check::{resolve, Invalid, Positive};
use crate::config::duration::{Seconds, MAX_CLEANUP_INTERVAL};
use crate::atomic::Durability;

/// Validated `[session.filesystem]`.
#[derive(Debug, Clone)]
pub struct FilesystemConfig {
    pub dir: PathBuf,
    pub cleanup_interval: Duration,
    pub durability: Durability,
    /// Threads doing the session file work.
    pub io_threads: usize,
    /// Serve a session from memory while its file is still the version last read or written.
    pub read_cache: bool,
}

/// `[session.filesystem]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub struct RawFilesystem {
    dir: PathBuf,
    cleanup_interval: Seconds<MAX_CLEANUP_INTERVAL>,
    durability: Durability,
    /// Unset: depends on `durability`.
    io_threads: Option<Positive>,
    read_cache: bool,
}

impl Default for RawFilesystem {
    fn default() -> Self {
        Self {
            dir: "sessions".into(),
            cleanup_interval: Seconds(Duration::from_secs(60)),
            durability: Durability::default(),
            io_threads: None,
            read_cache: true,
        }
    }
}

impl RawFilesystem {
    pub(crate) fn validate(self, base: &Path) -> Result<FilesystemConfig, Invalid> {
        // One thread batches page-cache writes best; fsync waits on the disk, so several
        // threads let the journal commit many writes at once.
        let io_threads = match (self.io_threads, self.durability) {
            (Some(Positive(n)), _) if n > 64 => {
                return Err(Invalid::new(
                    "session.filesystem.io_threads",
                    n.to_string(),
                    "expected an integer from 1 to 64",
                ))
            }
            (Some(Positive(n)), _) => usize::try_from(n).unwrap_or(1),
            (None, Durability::Process) => 1,
            (None, Durability::Fsync) => 8,
        };
        Ok(FilesystemConfig {
            dir: resolve(base, self.dir),
            cleanup_interval: self.cleanup_interval.0,
            durability: self.durability,
            io_threads,
            read_cache: self.read_cache,
        })
    }
}

/// What the registry knows of the engine: its sessions' capabilities.
pub const CAPABILITIES: Capabilities = Capabilities {
    server_side: true,
    // Every process on this machine serving the same folder sees the same sessions.
    shared: true,
    can_list: true,
    expires_by_itself: false,
    our_clock: true,
};
/// Accounts are kept in the accounts' own file, not among the sessions.
pub const HOLDS_ACCOUNTS: bool = false;

/// `[session.filesystem]` as written and validated, for the registry.
pub type Raw = RawFilesystem;
pub type Table = FilesystemConfig;

pub fn validate(raw: RawFilesystem, base: &Path) -> Result<FilesystemConfig, Invalid> {
    raw.validate(base)
}

/// The table's keys as `config check` prints them.
pub fn effective(fs: &FilesystemConfig, keys: &mut Keys<'_>) {
    keys.add("dir", path(&fs.dir), Some("SESSION_FILE_DIR"));
    keys.add("cleanup_interval", secs(fs.cleanup_interval), None);
    keys.add(
        "durability",
        s(&format!("{:?}", fs.durability).to_lowercase()),
        None,
    );
    keys.add("io_threads", fs.io_threads.to_string(), None);
    keys.add("read_cache", fs.read_cache.to_string(), None);
}

/// The files of this engine that no static folder may serve.
pub fn private_paths(table: &FilesystemConfig) -> Vec<(&'static str, PathBuf)> {
    vec![("the session folder", table.dir.clone())]
}
