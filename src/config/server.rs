//! `[server]`: where the server listens, with how many workers, how long a stop waits for the
//! requests in flight, where changed templates and static files are, and the pages' default
//! language.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::check::{resolve, Invalid, Positive};
use super::duration::{Seconds, Timeout};
use crate::i18n::Lang;

/// The longest `shutdown_timeout`: a stop that waits longer than this for one request is stuck,
/// and process managers (systemd's default is 90 s) kill it anyway.
const MAX_SHUTDOWN_TIMEOUT: u64 = 300;

/// Validated `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: String,
    pub workers: usize,
    /// How long a stop (SIGTERM, SIGINT) lets the requests in flight finish.
    pub shutdown_timeout: Duration,
    /// Templates that replace the embedded ones (each file present replaces its namesake).
    pub templates_dir: Option<PathBuf>,
    /// Static files served at `/static/` instead of the embedded stylesheet.
    pub static_dir: Option<PathBuf>,
    /// The pages' language for a browser that asks for none we have (and for curl).
    pub default_language: Lang,
    /// How long a request's body may take to arrive once its headers have.
    pub body_timeout: Duration,
}

/// `[server]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawServer {
    bind: String,
    /// Unset: one per CPU of the machine the server starts on.
    workers: Option<Positive>,
    shutdown_timeout: Seconds<MAX_SHUTDOWN_TIMEOUT>,
    templates_dir: Option<PathBuf>,
    static_dir: Option<PathBuf>,
    default_language: String,
    body_timeout: Timeout,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:5000".into(),
            workers: None,
            shutdown_timeout: Seconds(Duration::from_secs(30)),
            templates_dir: None,
            static_dir: None,
            default_language: "en".into(),
            body_timeout: Timeout(Duration::from_secs(10)),
        }
    }
}

impl RawServer {
    pub(super) fn validate(self, base: &Path) -> Result<ServerConfig, Invalid> {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(Invalid::new(
                "server.bind",
                format!("{:?}", self.bind),
                "expected an IP address and port such as \"127.0.0.1:5000\" or \"[::1]:8080\"",
            ));
        }
        let workers = match self.workers {
            Some(Positive(n)) => usize::try_from(n).unwrap_or(usize::MAX).min(1024),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let folder = |key: &'static str, dir: Option<PathBuf>| -> Result<_, Invalid> {
            let Some(dir) = dir else { return Ok(None) };
            let dir = resolve(base, dir);
            if !dir.is_dir() {
                return Err(Invalid::new(
                    key,
                    format!("{:?}", dir.display().to_string()),
                    "expected an existing folder (relative paths are relative to the config file); \
                     leave the key out to use the embedded files",
                ));
            }
            Ok(Some(dir))
        };
        let default_language = Lang::parse(&self.default_language).ok_or_else(|| {
            Invalid::new(
                "server.default_language",
                format!("{:?}", self.default_language),
                "expected \"en\" (English) or \"ko\" (Korean)",
            )
        })?;
        Ok(ServerConfig {
            bind: self.bind,
            workers,
            shutdown_timeout: self.shutdown_timeout.0,
            templates_dir: folder("server.templates_dir", self.templates_dir)?,
            static_dir: folder("server.static_dir", self.static_dir)?,
            default_language,
            body_timeout: self.body_timeout.0,
        })
    }
}

/// Refuses a `static_dir` that holds (or is) any of `private`, named paths the server keeps
/// for itself (the config file, the secret key, the user database, the session folder): every
/// file under `static_dir` is served to anyone, and the secret key alone forges sessions.
pub(super) fn refuse_private_in_static(
    static_dir: &Path,
    private: &[(&str, &Path)],
) -> Result<(), Invalid> {
    let public = absolute(static_dir);
    for (what, path) in private {
        let path = absolute(path);
        if path.starts_with(&public) {
            return Err(Invalid::new(
                "server.static_dir",
                format!("{:?}", static_dir.display().to_string()),
                format!(
                    "it holds {what} ({}), which every visitor could then download: point \
                     static_dir at a folder of public files only",
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// `path` with links resolved as far as it exists, and the rest (a file not made yet) as
/// written: where it is or will be.
fn absolute(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}
