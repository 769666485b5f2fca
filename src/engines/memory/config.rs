//! `[session.memory]`: how often the memory store drops expired sessions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::shown::{secs, Keys};
use crate::store::backend::Capabilities;

use crate::config::duration::{Seconds, MAX_CLEANUP_INTERVAL};
use crate::config::check::Invalid;

/// Validated `[session.memory]`.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// How often expired sessions are dropped (each is already refused once it has ended).
    pub cleanup_interval: Duration,
}

/// `[session.memory]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub struct RawMemory {
    cleanup_interval: Seconds<MAX_CLEANUP_INTERVAL>,
}

impl Default for RawMemory {
    fn default() -> Self {
        Self {
            cleanup_interval: Seconds(Duration::from_secs(60)),
        }
    }
}

impl RawMemory {
    pub(crate) fn validate(self, _: &Path) -> Result<MemoryConfig, Invalid> {
        Ok(MemoryConfig {
            cleanup_interval: self.cleanup_interval.0,
        })
    }
}

/// What the registry knows of the engine: its sessions' capabilities.
pub const CAPABILITIES: Capabilities = Capabilities {
    server_side: true,
    shared: false,
    can_list: true,
    expires_by_itself: false,
    our_clock: true,
};
/// Accounts are never kept in one process's memory.
pub const HOLDS_ACCOUNTS: bool = false;

/// `[session.memory]` as written and validated, for the registry.
pub type Raw = RawMemory;
pub type Table = MemoryConfig;

pub fn validate(raw: RawMemory, base: &Path) -> Result<MemoryConfig, Invalid> {
    raw.validate(base)
}

/// The table's keys as `config check` prints them.
pub fn effective(m: &MemoryConfig, keys: &mut Keys<'_>) {
    keys.add("cleanup_interval", secs(m.cleanup_interval), None);
}

/// Nothing of this engine is a file of the server's.
pub fn private_paths(_: &MemoryConfig) -> Vec<(&'static str, PathBuf)> {
    Vec::new()
}
