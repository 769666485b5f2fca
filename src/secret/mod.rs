//! The secret that signs cookies (session, CSRF, flash, device): taken from the environment
//! variable [`ENV_VAR`] (base64) or from `secret_key_file`, which is created with 64 random bytes,
//! mode 0600, the first time the server starts; and the older keys still accepted while a key is
//! rotated ([`Keyring`]). `rotate.rs` owns the files `session-server secret rotate` and `retire`
//! change.

mod ring;
mod rotate;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

pub use ring::{EnvKeys, KeySource, Keyring, FALLBACKS_ENV_VAR};
pub use rotate::{prepare, retire, rotate, Rotated, LOCK_WAIT};

use actix_web::cookie::Key;
use base64::Engine;
use sha2::{Digest, Sha512};

use crate::atomic::{self, Durability, Placed};

/// Environment variable that, when set, holds the secret key in base64 and wins over the file.
pub const ENV_VAR: &str = "SESSION_SERVER_SECRET_KEY";
/// Shortest secret accepted, in bytes.
pub const MIN_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: cannot read or create the secret key file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{origin}: the secret key is {len} bytes; at least {MIN_LEN} are required (delete the file to have a new one made)")]
    TooShort { origin: String, len: usize },
    #[error("{var}: not valid base64: {source}")]
    NotBase64 {
        var: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error("{path}: cannot read the fallback key in session.secret_key_fallbacks: {source}")]
    Fallback {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the secret key comes from {ENV_VAR}, not a file: to rotate it, set {FALLBACKS_ENV_VAR} \
         to the current value and {ENV_VAR} to a new one (`head -c 64 /dev/urandom | base64 -w0`)"
    )]
    FromEnvironment,
    #[error("{path}: no secret key yet (the server makes one at its first start)")]
    NoKey { path: PathBuf },
    #[error("{path}: another `secret` command holds the lock; still held after {waited:?}")]
    Busy {
        path: PathBuf,
        waited: std::time::Duration,
    },
}

/// The signing key: from `env_value` (the content of [`ENV_VAR`]) if given, else from `path`,
/// created if missing.
pub fn load_or_create(path: &Path, env_value: Option<&str>) -> Result<Key, SecretError> {
    match env_value {
        Some(text) => from_env(text),
        None => checked(read_or_create(path)?, path.display().to_string()),
    }
}

/// The signing key as [`load_or_create`] finds it, without creating anything: `None` when
/// neither the environment nor the file has one yet (the server has never started). For the
/// operator's commands, which must change nothing on disk.
pub fn load_existing(path: &Path, env_value: Option<&str>) -> Result<Option<Key>, SecretError> {
    if let Some(text) = env_value {
        return from_env(text).map(Some);
    }
    match std::fs::read(path) {
        Ok(bytes) => checked(bytes, path.display().to_string()).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn from_env(text: &str) -> Result<Key, SecretError> {
    from_base64(text, ENV_VAR)
}

fn from_base64(text: &str, var: &'static str) -> Result<Key, SecretError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|source| SecretError::NotBase64 { var, source })?;
    checked(bytes, var.to_owned())
}

fn checked(bytes: Vec<u8>, origin: String) -> Result<Key, SecretError> {
    if bytes.len() < MIN_LEN {
        return Err(SecretError::TooShort {
            origin,
            len: bytes.len(),
        });
    }
    // Key::from takes exactly 64 bytes; hashing lets a longer secret count in full.
    Ok(Key::from(Sha512::digest(&bytes).as_slice()))
}

/// One key per purpose (the session cookie, the CSRF cookie, the flash cookie, ...), derived from
/// the master key, so that a value signed for one cookie never verifies as another: HMAC-SHA512 of
/// the purpose under the master key.
pub fn derive_key(master: &Key, purpose: &str) -> Key {
    use hmac::{Hmac, Mac};
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(master.master())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"session-server cookie key\0");
    mac.update(purpose.as_bytes());
    Key::from(mac.finalize().into_bytes().as_slice())
}

fn read_or_create(path: &Path) -> Result<Vec<u8>, SecretError> {
    let io_err = |source| SecretError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(e)),
        Err(_) => {}
    }
    let mut bytes = vec![0u8; MIN_LEN];
    getrandom::fill(&mut bytes).map_err(|e| io_err(io::Error::other(e)))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    atomic::write_new(&tmp, &bytes, None, Durability::Fsync).map_err(io_err)?;
    // Two servers starting at once: the first one's key stays and both use it.
    match atomic::place_new(&tmp, path).map_err(io_err)? {
        Placed::Done => {
            tracing::info!(file = %path.display(), "created a new secret key");
            Ok(bytes)
        }
        _ => {
            let _ = std::fs::remove_file(&tmp);
            std::fs::read(path).map_err(io_err)
        }
    }
}
