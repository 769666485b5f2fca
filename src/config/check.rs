//! What the tables' validation shares: the error a table returns for a wrong value (the file is
//! added by the caller), integers of at least 1, and paths relative to the config file.

use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A wrong value found by a table's `validate`: its dotted key, the value as written and what is
/// allowed. [`super::Config`] turns it into [`super::ConfigError::Invalid`] naming the file.
#[derive(Debug)]
pub struct Invalid {
    pub(crate) key: &'static str,
    pub(crate) value: String,
    pub(crate) allowed: String,
}

impl Invalid {
    pub fn new(key: &'static str, value: impl Into<String>, allowed: impl Into<String>) -> Self {
        Self {
            key,
            value: value.into(),
            allowed: allowed.into(),
        }
    }
}

/// An integer >= 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Positive(pub(crate) u64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        if n < 1 {
            return Err(de::Error::custom("expected an integer of at least 1"));
        }
        Ok(Self(n.unsigned_abs()))
    }
}

/// `path` as the server will open it: relative ones against `base`, the config file's folder.
pub(crate) fn resolve(base: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

/// The most connections a pool key (`pool_size`) takes.
const MAX_POOL_SIZE: u64 = 256;

/// A `pool_size`: 1 to [`MAX_POOL_SIZE`].
pub(crate) fn pool_size(key: &'static str, Positive(n): Positive) -> Result<usize, Invalid> {
    usize::try_from(n)
        .ok()
        .filter(|_| n <= MAX_POOL_SIZE)
        .ok_or_else(|| {
            Invalid::new(
                key,
                n.to_string(),
                format!("expected an integer from 1 to {MAX_POOL_SIZE}"),
            )
        })
}

/// The longest `key_prefix`: a key is at most 250 bytes in some engines, the prefix and 64
/// characters of digest.
const MAX_KEY_PREFIX: usize = 64;

/// A `key_prefix`: 0 to [`MAX_KEY_PREFIX`] printable ASCII characters, no spaces.
pub(crate) fn key_prefix(key: &'static str, prefix: &str) -> Result<(), Invalid> {
    if prefix.len() > MAX_KEY_PREFIX || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Invalid::new(
            key,
            format!("{prefix:?}"),
            format!(
                "expected 0 to {MAX_KEY_PREFIX} printable ASCII characters without spaces, \
                 such as \"session:\""
            ),
        ));
    }
    Ok(())
}

/// The `[session.<type>]` table of a type that has none: any value there is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTable;

impl<'de> Deserialize<'de> for NoTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _ = serde::de::IgnoredAny::deserialize(d)?;
        Err(de::Error::custom(
            "this session type has no table of its own (its cookie's keys are [session]'s cookie_*)",
        ))
    }
}
