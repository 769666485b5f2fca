//! `[session.memory]`: how often the memory store drops expired sessions.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::duration::{Seconds, MAX_CLEANUP_INTERVAL};
use crate::config::Invalid;

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
