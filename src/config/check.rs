//! What the tables' validation shares: the error a table returns for a wrong value (the file is
//! added by the caller), integers of at least 1, and paths relative to the config file.

use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A wrong value found by a table's `validate`: its dotted key, the value as written and what is
/// allowed. [`super::Config`] turns it into [`super::ConfigError::Invalid`] naming the file.
#[derive(Debug)]
pub(super) struct Invalid {
    pub(super) key: &'static str,
    pub(super) value: String,
    pub(super) allowed: String,
}

impl Invalid {
    pub(super) fn new(
        key: &'static str,
        value: impl Into<String>,
        allowed: impl Into<String>,
    ) -> Self {
        Self {
            key,
            value: value.into(),
            allowed: allowed.into(),
        }
    }
}

/// An integer >= 1.
#[derive(Debug, Clone, Copy)]
pub(super) struct Positive(pub(super) u64);

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
pub(super) fn resolve(base: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}
