//! The `filesystem` engine as the registry sees it. Accounts and login counters are in the
//! accounts' file (`[auth] users_db`); session locks are files in the session folder's `.locks/`.

use std::path::{Path, PathBuf};

use super::config::{FilesystemConfig, RawFilesystem};
use crate::config::effective::{path, s, secs, Keys};
use crate::config::{Config, Invalid, SessionConfig};
use crate::engines::{Engine, EngineError, Shared};
use crate::store::{Capabilities, Place, Store, StoreError};
use crate::web::lock::Across;

/// The `filesystem` engine.
pub struct Kind;

impl Engine for Kind {
    const NAME: &'static str = "filesystem";
    const CAPABILITIES: Capabilities = Capabilities {
        server_side: true,
        // Every process on this machine serving the same folder sees the same sessions.
        shared: true,
        can_list: true,
        expires_by_itself: false,
    };
    type Raw = RawFilesystem;
    type Config = FilesystemConfig;

    fn validate(raw: RawFilesystem, base: &Path) -> Result<FilesystemConfig, Invalid> {
        raw.validate(base)
    }

    fn effective(fs: &FilesystemConfig, keys: &mut Keys<'_>) {
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

    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        super::open(session)
    }

    fn sweep_every(session: &SessionConfig) -> Option<std::time::Duration> {
        Some(session.filesystem.cleanup_interval)
    }

    fn place(session: &SessionConfig, stem: &str) -> Place {
        let name = format!("{stem}.json");
        let full = session.filesystem.dir.join(&name).display().to_string();
        Place::new("panel-place-file", name, "", full)
    }

    fn private_paths(session: &SessionConfig) -> Vec<(&'static str, PathBuf)> {
        vec![("the session folder", session.filesystem.dir.clone())]
    }

    fn shared(config: &Config) -> Result<Shared, EngineError> {
        Ok(Shared {
            counters: None,
            locks: Across::Files(config.session.filesystem.dir.join(".locks")),
            users: None,
        })
    }
}
