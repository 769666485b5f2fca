//! The one place that knows `config.toml`: its keys, their defaults (Flask's), how they are read and
//! what a wrong value is told. Everything else receives a validated [`Config`].

mod duration;
mod unknown;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

pub use crate::atomic::Durability;
use duration::{Seconds, MAX_CLEANUP_INTERVAL, MAX_FAILED_LOGIN_WINDOW, MAX_LIFETIME, MAX_TTL};

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
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: String,
    pub workers: usize,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub store: StoreType,
    pub permanent: bool,
    pub lifetime: Duration,
    pub refresh_each_request: bool,
    /// Largest serialized session, in bytes.
    pub max_session_bytes: usize,
    /// Serialize the requests of one session (PHP's guarantee).
    pub lock: bool,
    pub cookie_name: String,
    pub cookie_secure: bool,
    pub cookie_samesite: SameSite,
    pub cookie_domain: Option<String>,
    pub secret_key_file: PathBuf,
    pub filesystem: FilesystemConfig,
}

impl SessionConfig {
    /// `lifetime` as the `time` crate's duration, for cookie ages and expiry deadlines. It cannot
    /// fail: validation caps `lifetime` at 400 days, and a larger value set in code is capped
    /// here too, so `now + ttl()` stays far inside `time`'s range.
    pub fn ttl(&self) -> time::Duration {
        time::Duration::try_from(self.lifetime).map_or(MAX_TTL, |ttl| ttl.min(MAX_TTL))
    }
}

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

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The user database (SQLite).
    pub users_db: PathBuf,
    /// The JSON user file of earlier versions, imported into `users_db` once if it exists.
    pub users_file: PathBuf,
    pub bcrypt_cost: u32,
    pub min_password_length: usize,
    /// Failed logins without delay per user id and address (see `web::throttle`).
    pub max_failed_logins: u32,
    pub failed_login_window: Duration,
}

/// Where sessions are kept (`[session] type`, Flask's `SESSION_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoreType {
    /// One JSON file per session under `[session.filesystem] dir`.
    Filesystem,
    /// In this process only: for development and as a speed baseline.
    Memory,
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// Store types that Flask-Session knows and this build does not (yet) implement; named so that
/// the error says so instead of calling them unknown.
const NOT_IMPLEMENTED_TYPES: &[&str] = &["redis", "memcached", "mongodb", "sqlalchemy", "dynamodb"];

// ---- what the file may hold: every key optional; unknown keys are collected while parsing -----

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    session: RawSession,
    #[serde(default)]
    auth: RawAuth,
}

#[derive(Deserialize, Default)]
struct RawServer {
    bind: Option<String>,
    workers: Option<Positive>,
}

#[derive(Deserialize, Default)]
struct RawSession {
    #[serde(rename = "type")]
    store: Option<RawStoreType>,
    permanent: Option<bool>,
    lifetime: Option<Seconds<MAX_LIFETIME>>,
    refresh_each_request: Option<bool>,
    max_session_bytes: Option<Positive>,
    lock: Option<bool>,
    cookie_name: Option<String>,
    cookie_secure: Option<bool>,
    cookie_samesite: Option<SameSite>,
    cookie_domain: Option<String>,
    secret_key_file: Option<PathBuf>,
    #[serde(default)]
    filesystem: RawFilesystem,
}

#[derive(Deserialize, Default)]
struct RawFilesystem {
    dir: Option<PathBuf>,
    cleanup_interval: Option<Seconds<MAX_CLEANUP_INTERVAL>>,
    durability: Option<Durability>,
    io_threads: Option<Positive>,
    read_cache: Option<bool>,
}

#[derive(Deserialize, Default)]
struct RawAuth {
    users_db: Option<PathBuf>,
    users_file: Option<PathBuf>,
    bcrypt_cost: Option<u32>,
    min_password_length: Option<Positive>,
    max_failed_logins: Option<Positive>,
    failed_login_window: Option<Seconds<MAX_FAILED_LOGIN_WINDOW>>,
}

/// A store type as written: known ones map to [`StoreType`], Flask-Session's others get their own
/// message.
struct RawStoreType(StoreType);

impl<'de> Deserialize<'de> for RawStoreType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "filesystem" => Ok(Self(StoreType::Filesystem)),
            "memory" => Ok(Self(StoreType::Memory)),
            other if NOT_IMPLEMENTED_TYPES.contains(&other) => Err(de::Error::custom(format!(
                "store type `{other}` is not implemented in this build; allowed: \"filesystem\", \"memory\""
            ))),
            _ => Err(de::Error::custom(
                "unknown store type; allowed: \"filesystem\", \"memory\"",
            )),
        }
    }
}

/// An integer >= 1.
struct Positive(u64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if n < 1 {
            return Err(de::Error::custom("expected an integer of at least 1"));
        }
        Ok(Self(n.unsigned_abs()))
    }
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

    fn build(
        raw: RawConfig,
        source: Option<PathBuf>,
        base: &Path,
        file: &Path,
    ) -> Result<Self, ConfigError> {
        let invalid = |key: &str, value: String, allowed: &str| ConfigError::Invalid {
            file: file.to_owned(),
            key: key.to_owned(),
            value: format!(" = {value}"),
            allowed: allowed.to_owned(),
        };
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let bind = raw.server.bind.unwrap_or_else(|| "127.0.0.1:5000".into());
        if bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.bind",
                format!("{bind:?}"),
                "expected an IP address and port such as \"127.0.0.1:5000\" or \"[::1]:8080\"",
            ));
        }
        let workers = match raw.server.workers {
            Some(Positive(n)) => usize::try_from(n).unwrap_or(usize::MAX).min(1024),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };

        let s = raw.session;
        let cookie_name = s.cookie_name.unwrap_or_else(|| "session".into());
        if cookie_name.is_empty()
            || !cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(invalid(
                "session.cookie_name",
                format!("{cookie_name:?}"),
                "expected 1 or more letters, digits, '-', '_' or '.'",
            ));
        }
        let cookie_secure = s.cookie_secure.unwrap_or(false);
        let cookie_samesite = s.cookie_samesite.unwrap_or(SameSite::Lax);
        if cookie_samesite == SameSite::None && !cookie_secure {
            return Err(invalid(
                "session.cookie_samesite",
                "\"none\"".into(),
                "browsers refuse SameSite=None without Secure: set session.cookie_secure = true or use \"lax\"/\"strict\"",
            ));
        }
        if let Some(domain) = &s.cookie_domain {
            if domain.is_empty() || domain.contains([';', ' ', ',', '/']) {
                return Err(invalid(
                    "session.cookie_domain",
                    format!("{domain:?}"),
                    "expected a host name such as \"example.com\"",
                ));
            }
        }
        let bcrypt_cost = raw.auth.bcrypt_cost.unwrap_or(12);
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(invalid(
                "auth.bcrypt_cost",
                bcrypt_cost.to_string(),
                "expected an integer from 4 to 31 (12 is a sound default)",
            ));
        }
        let min_password_length = raw.auth.min_password_length.map_or(8, |Positive(n)| n);
        if min_password_length > 1024 {
            return Err(invalid(
                "auth.min_password_length",
                min_password_length.to_string(),
                "expected an integer from 1 to 1024",
            ));
        }

        let max_session_bytes = s.max_session_bytes.map_or(64 * 1024, |Positive(n)| n);
        if !(256..=16 * 1024 * 1024).contains(&max_session_bytes) {
            return Err(invalid(
                "session.max_session_bytes",
                max_session_bytes.to_string(),
                "expected an integer from 256 to 16777216 (16 MiB)",
            ));
        }
        let max_failed_logins = raw.auth.max_failed_logins.map_or(5, |Positive(n)| n);
        let durability = s.filesystem.durability.unwrap_or_default();
        // One thread batches page-cache writes best; fsync waits on the disk, so several
        // threads let the journal commit many writes at once.
        let io_threads = match (s.filesystem.io_threads, durability) {
            (Some(Positive(n)), _) if n > 64 => {
                return Err(invalid(
                    "session.filesystem.io_threads",
                    n.to_string(),
                    "expected an integer from 1 to 64",
                ))
            }
            (Some(Positive(n)), _) => usize::try_from(n).unwrap_or(1),
            (None, Durability::Process) => 1,
            (None, Durability::Fsync) => 8,
        };
        Ok(Self {
            source,
            server: ServerConfig { bind, workers },
            session: SessionConfig {
                store: s.store.map_or(StoreType::Filesystem, |t| t.0),
                permanent: s.permanent.unwrap_or(true),
                lifetime: s
                    .lifetime
                    .map_or(Duration::from_secs(31 * 24 * 3600), |l| l.0),
                refresh_each_request: s.refresh_each_request.unwrap_or(true),
                max_session_bytes: usize::try_from(max_session_bytes).unwrap_or(usize::MAX),
                lock: s.lock.unwrap_or(false),
                cookie_name,
                cookie_secure,
                cookie_samesite,
                cookie_domain: s.cookie_domain,
                secret_key_file: resolve(s.secret_key_file.unwrap_or_else(|| "secret.key".into())),
                filesystem: FilesystemConfig {
                    dir: resolve(s.filesystem.dir.unwrap_or_else(|| "sessions".into())),
                    cleanup_interval: s
                        .filesystem
                        .cleanup_interval
                        .map_or(Duration::from_secs(60), |c| c.0),
                    durability,
                    io_threads,
                    read_cache: s.filesystem.read_cache.unwrap_or(true),
                },
            },
            auth: AuthConfig {
                users_db: resolve(raw.auth.users_db.unwrap_or_else(|| "users.db".into())),
                users_file: resolve(raw.auth.users_file.unwrap_or_else(|| "users.json".into())),
                bcrypt_cost,
                min_password_length: usize::try_from(min_password_length).unwrap_or(1024),
                max_failed_logins: u32::try_from(max_failed_logins).unwrap_or(u32::MAX),
                failed_login_window: raw
                    .auth
                    .failed_login_window
                    .map_or(Duration::from_secs(15 * 60), |w| w.0),
            },
        })
    }
}

#[cfg(test)]
mod tests;
