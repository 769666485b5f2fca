//! [`Keyring`]: the current key, which signs every new cookie, and the older keys whose cookies
//! are still accepted (and re-issued under the current key) while a key is being rotated.
//!
//! Where the keys come from, in the order they are tried:
//! - the current key: [`super::ENV_VAR`], else `secret_key_file`;
//! - the accepted keys: `<secret_key_file>.next` (prepared by `secret rotate --prepare`, so that
//!   every instance accepts a key before any instance signs with it), the numbered files
//!   `<secret_key_file>.<N>` that `secret rotate` kept (the newest, the highest N, first), the
//!   files listed in `[session] secret_key_fallbacks`, then the keys in [`FALLBACKS_ENV_VAR`].
//!
//! The files beside `secret_key_file` are read only when the current key comes from that file:
//! with the key in the environment, the environment says everything.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use actix_web::cookie::Key;

use super::{checked, from_base64, from_env, read_or_create, SecretError, ENV_VAR};

/// Environment variable that holds older keys still accepted, in base64, separated by commas or
/// white space.
pub const FALLBACKS_ENV_VAR: &str = "SESSION_SERVER_SECRET_KEY_FALLBACKS";

/// The key variables of the environment, read once (and given by hand in tests).
#[derive(Debug, Clone, Default)]
pub struct EnvKeys {
    /// [`ENV_VAR`]'s value.
    pub key: Option<String>,
    /// [`FALLBACKS_ENV_VAR`]'s value.
    pub fallbacks: Option<String>,
}

impl EnvKeys {
    pub fn from_process() -> Self {
        Self {
            key: std::env::var(ENV_VAR).ok(),
            fallbacks: std::env::var(FALLBACKS_ENV_VAR).ok(),
        }
    }
}

/// Where a key came from: what `config check` prints (never the key's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Given by the program (tests, examples).
    Given,
    /// [`ENV_VAR`].
    Environment,
    /// The n-th key (from 1) of [`FALLBACKS_ENV_VAR`].
    EnvironmentFallback(usize),
    /// `secret_key_file`, a kept or prepared key beside it, or a `secret_key_fallbacks` file.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Given => f.write_str("a key given by the program"),
            Self::Environment => f.write_str(ENV_VAR),
            Self::EnvironmentFallback(n) => write!(f, "{FALLBACKS_ENV_VAR} #{n}"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The current key and the older keys still accepted.
#[derive(Clone)]
pub struct Keyring {
    current: (KeySource, Key),
    older: Vec<(KeySource, Key)>,
}

impl From<Key> for Keyring {
    fn from(key: Key) -> Self {
        Self {
            current: (KeySource::Given, key),
            older: Vec::new(),
        }
    }
}

impl Keyring {
    /// The keys as the server starts with them: `file` is created when the environment has no
    /// key and the file is missing. `fallback_files` is `[session] secret_key_fallbacks`.
    pub fn load_or_create(
        file: &Path,
        fallback_files: &[PathBuf],
        env: &EnvKeys,
    ) -> Result<Self, SecretError> {
        let current = match &env.key {
            Some(text) => (KeySource::Environment, from_env(text)?),
            None => (
                KeySource::File(file.to_owned()),
                checked(read_or_create(file)?, file.display().to_string())?,
            ),
        };
        Self::with_older(current, file, fallback_files, env)
    }

    /// The keys as [`Keyring::load_or_create`] finds them, creating nothing: `None` when there is
    /// no current key yet (the server never started). For the operator's commands.
    pub fn load_existing(
        file: &Path,
        fallback_files: &[PathBuf],
        env: &EnvKeys,
    ) -> Result<Option<Self>, SecretError> {
        let Some(current) = super::load_existing(file, env.key.as_deref())? else {
            return Ok(None);
        };
        let source = if env.key.is_some() {
            KeySource::Environment
        } else {
            KeySource::File(file.to_owned())
        };
        Self::with_older((source, current), file, fallback_files, env).map(Some)
    }

    /// The keys `[session]` names, with the process's environment, as [`Self::load_existing`]
    /// finds them: what the operator's commands check cookies with.
    pub fn configured(session: &crate::config::SessionConfig) -> Result<Option<Self>, SecretError> {
        Self::load_existing(
            &session.secret_key_file,
            &session.secret_key_fallbacks,
            &EnvKeys::from_process(),
        )
    }

    fn with_older(
        current: (KeySource, Key),
        file: &Path,
        fallback_files: &[PathBuf],
        env: &EnvKeys,
    ) -> Result<Self, SecretError> {
        let mut older = Vec::new();
        if env.key.is_none() {
            for path in beside(file)? {
                match read_key(&path) {
                    Ok(key) => older.push((KeySource::File(path), key)),
                    // Deleted since the folder was listed (a `secret retire` just now).
                    Err(SecretError::Fallback { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for path in fallback_files {
            let key = read_key(path)?;
            older.push((KeySource::File(path.clone()), key));
        }
        let listed = env.fallbacks.as_deref().unwrap_or_default();
        let words = listed.split(|c: char| c == ',' || c.is_whitespace());
        for (n, text) in words.filter(|w| !w.is_empty()).enumerate() {
            let key = from_base64(text, FALLBACKS_ENV_VAR)?;
            older.push((KeySource::EnvironmentFallback(n + 1), key));
        }
        // The same key twice (a kept file also listed as a fallback) is tried once; the current
        // key is never among the older ones.
        let mut seen = vec![current.1.master().to_vec()];
        older.retain(|(_, key)| {
            let fresh = !seen.iter().any(|m| m.as_slice() == key.master());
            seen.push(key.master().to_vec());
            fresh
        });
        Ok(Self { current, older })
    }

    /// The key every new cookie is signed (or encrypted) with.
    pub fn current(&self) -> &Key {
        &self.current.1
    }

    /// The older keys, in the order they are tried.
    pub fn older(&self) -> impl ExactSizeIterator<Item = &Key> {
        self.older.iter().map(|(_, key)| key)
    }

    /// Where the current key and each older key came from, for `config check`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} (signs)", self.current.0);
        if !self.older.is_empty() {
            let names: Vec<String> = self.older.iter().map(|(s, _)| s.to_string()).collect();
            text.push_str(&format!("; also accepted: {}", names.join(", ")));
        }
        text
    }
}

fn read_key(path: &Path) -> Result<Key, SecretError> {
    let bytes = std::fs::read(path).map_err(|source| SecretError::Fallback {
        path: path.to_owned(),
        source,
    })?;
    checked(bytes, path.display().to_string())
}

/// `<file>.next`, the key `secret rotate --prepare` made.
pub(super) fn prepared_path(file: &Path) -> PathBuf {
    sibling(file, "next")
}

/// `<file>.<n>`, a key `secret rotate` kept.
pub(super) fn kept_path(file: &Path, n: u64) -> PathBuf {
    sibling(file, &n.to_string())
}

fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The numbers of the kept keys beside `file`, highest (newest) first.
pub(super) fn kept_numbers(file: &Path) -> Result<Vec<u64>, SecretError> {
    let io_err = |source| SecretError::Io {
        path: file.to_owned(),
        source,
    };
    let dir = crate::atomic::folder_of(file);
    let Some(stem) = file.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(e)),
    };
    let mut numbers = Vec::new();
    for entry in entries {
        let name = entry.map_err(io_err)?.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix(stem))
            .and_then(|n| n.strip_prefix('.'))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            // Only the names `secret rotate` writes: `secret.key.01` is someone else's file.
            .and_then(|n| n.parse::<u64>().ok().filter(|v| v.to_string() == n));
        numbers.extend(number);
    }
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    Ok(numbers)
}

/// The key files beside `file`, in the order they are tried: the prepared one, then the kept
/// ones, newest first.
fn beside(file: &Path) -> Result<Vec<PathBuf>, SecretError> {
    let mut paths = Vec::new();
    let prepared = prepared_path(file);
    if prepared.exists() {
        paths.push(prepared);
    }
    paths.extend(kept_numbers(file)?.into_iter().map(|n| kept_path(file, n)));
    Ok(paths)
}
