//! The one place that knows `config.toml`: its keys, their defaults (Flask's), how they are read and
//! what a wrong value is told. Everything else receives a validated [`Config`].
//!
//! Each `[table]` has its own file: the raw struct as written (its `Default` is where every
//! default lives), the validated struct the server uses, and a `validate` that turns one into the
//! other; [`Config`] runs them all in one pass. Each session engine's table is in the engine's
//! folder (`crate::engines`), joined to `[session]` by the registry.

mod auth;
pub(crate) mod check;
pub(crate) mod duration;
pub mod effective;
mod log;
mod server;
mod session;
pub(crate) mod shown;
mod unknown;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::atomic::Durability;
pub use crate::engines::list::StoreType;
pub use auth::AuthConfig;
pub use check::Invalid;
pub use log::{LogConfig, LogFormat, MetricsConfig};
pub use server::ServerConfig;
pub use session::{SameSite, SessionConfig};

use auth::RawAuth;
use log::{RawLog, RawMetrics};
use server::RawServer;
use session::RawSession;

/// Why a configuration could not be used. Each message names the file, the key, the value and what
/// is allowed, on one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the file: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: line {line}: {message} (at `{snippet}`)")]
    Syntax {
        file: PathBuf,
        line: usize,
        snippet: String,
        message: String,
    },
    #[error("{file}: {key}{value}: {allowed}")]
    Invalid {
        file: PathBuf,
        key: String,
        /// ` = <value as written>`, or empty when the value is not what is wrong.
        value: String,
        allowed: String,
    },
}

/// The whole validated configuration. Relative paths are already resolved against the folder
/// holding the config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (or `None` for the built-in defaults).
    pub source: Option<PathBuf>,
    pub server: ServerConfig,
    pub session: SessionConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
}

/// The file as written: every table optional, every key in it too.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawConfig {
    server: RawServer,
    session: RawSession,
    auth: RawAuth,
    log: RawLog,
    metrics: RawMetrics,
}

// ---- loading ------------------------------------------------------------------------------------

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// The built-in defaults (Flask's), paths relative to the current folder. They are
    /// constants, validated like a file (a unit test proves they pass).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::build(
            RawConfig::default(),
            None,
            Path::new(""),
            Path::new("(defaults)"),
        )
    }

    /// Validates `text` as if read from `file`; relative paths resolve against `file`'s folder.
    pub fn from_toml(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let invalid = |key: String, span: Option<std::ops::Range<usize>>, message: &str| {
            let value = span
                .and_then(|s| text.get(s))
                .map(|v| format!(" = {}", v.trim()))
                .unwrap_or_default();
            ConfigError::Invalid {
                file: file.to_owned(),
                key,
                value,
                allowed: message.trim().replace('\n', " "),
            }
        };
        let de = toml::Deserializer::parse(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ConfigError::Syntax {
                file: file.to_owned(),
                line: text
                    .get(..span.start)
                    .map_or(1, |before| before.matches('\n').count() + 1),
                snippet: text.get(span).unwrap_or("").trim().to_owned(),
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        // Unknown keys are not errors to serde here: they are collected with their path, so that
        // the error can name the whole path, the value and the keys the table takes.
        let (raw, unknown_keys): (RawConfig, _) = unknown::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            invalid(key, inner.span(), inner.message())
        })?;
        if let Some(keys) = unknown_keys.first() {
            return Err(unknown::error(text, file, keys));
        }
        let base = file.parent().unwrap_or(Path::new(""));
        Self::build(raw, Some(file.to_owned()), base, file)
    }

    /// The validate pass: every table in turn; `[auth]` after `[session]`, whose store type
    /// `users` follows when unset.
    fn build(
        raw: RawConfig,
        source: Option<PathBuf>,
        base: &Path,
        file: &Path,
    ) -> Result<Self, ConfigError> {
        let in_file = |e: Invalid| ConfigError::Invalid {
            file: file.to_owned(),
            key: e.key.to_owned(),
            value: format!(" = {}", e.value),
            allowed: e.allowed,
        };
        let server = raw.server.validate(base).map_err(in_file)?;
        let session = raw.session.validate(base).map_err(in_file)?;
        let auth = raw.auth.validate(base, session.store).map_err(in_file)?;
        let log = raw.log.validate().map_err(in_file)?;
        let metrics = raw.metrics.validate(&server.bind).map_err(in_file)?;
        if let Some(static_dir) = &server.static_dir {
            let mut private: Vec<(&str, PathBuf)> =
                vec![("the secret key file", session.secret_key_file.clone())];
            for fallback in &session.secret_key_fallbacks {
                private.push(("a secret key fallback", fallback.clone()));
            }
            if let Some(config) = &source {
                private.push(("the config file", config.clone()));
            }
            if auth.users.keeps_accounts_in_users_db() {
                private.push(("the user database", auth.users_db.clone()));
            }
            private.push(("the legacy user file", auth.users_file.clone()));
            macro_rules! engine_files {
                ($($module:ident $Type:ident,)*) => {
                    match session.store {
                        $(StoreType::$Type => {
                            crate::engines::list::configs::$module::private_paths(&session.$module)
                        })*
                    }
                };
            }
            private.extend(crate::engines::list::for_each_engine!(engine_files));
            let private: Vec<(&str, &Path)> = private
                .iter()
                .map(|(what, p)| (*what, p.as_path()))
                .collect();
            server::refuse_private_in_static(static_dir, &private).map_err(in_file)?;
        }
        Ok(Self {
            source,
            server,
            session,
            auth,
            log,
            metrics,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
