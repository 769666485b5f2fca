//! The user database: `users_file`, a JSON document of bcrypt hashes. It is read afresh for each
//! login so that several server processes can share it; a registration takes a lock file, so
//! that two processes never lose each other's users, and replaces the file atomically.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What can go wrong with the user database.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user database {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("user database {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("password hashing failed: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    #[error("user id {0:?} is taken")]
    Taken(String),
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    version: u32,
    users: BTreeMap<String, StoredUser>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredUser {
    name: String,
    password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// A user as the pages see it: no hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
}

/// Longest password bcrypt takes in full (longer ones would be silently cut).
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The user database. All methods block (file I/O, bcrypt): call them off the async workers.
pub struct UserDb {
    path: PathBuf,
    cost: u32,
    write_lock: Mutex<()>,
    dummy_hash: OnceLock<String>,
}

impl UserDb {
    pub fn new(path: impl Into<PathBuf>, cost: u32) -> Self {
        Self {
            path: path.into(),
            cost,
            write_lock: Mutex::new(()),
            dummy_hash: OnceLock::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<UsersFile, UserError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| UserError::Corrupt {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(UsersFile {
                version: 1,
                ..Default::default()
            }),
            Err(source) => Err(UserError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// The user whose id and password match, or `None`. Spends one bcrypt verification whether
    /// or not the user exists, so timing does not tell which.
    pub fn verify(&self, user_id: &str, password: &str) -> Result<Option<User>, UserError> {
        let db = self.read()?;
        let stored = db.users.get(user_id);
        let hash = match stored {
            Some(u) => u.password_hash.as_str(),
            None => self.dummy_hash.get_or_init(|| {
                bcrypt::hash("not a password anyone has", self.cost).unwrap_or_default()
            }),
        };
        let ok = bcrypt::non_truncating_verify(password, hash).unwrap_or(false);
        Ok(match (ok, stored) {
            (true, Some(u)) => Some(User {
                id: user_id.to_owned(),
                name: u.name.clone(),
            }),
            _ => None,
        })
    }

    /// Adds a user with a bcrypt hash of `password`.
    pub fn register(&self, user_id: &str, name: &str, password: &str) -> Result<User, UserError> {
        let password_hash = bcrypt::non_truncating_hash(password, self.cost)?;
        let _in_process = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _across_processes = self.lock_file()?;
        let mut db = self.read()?;
        if db.users.contains_key(user_id) {
            return Err(UserError::Taken(user_id.to_owned()));
        }
        db.users.insert(
            user_id.to_owned(),
            StoredUser {
                name: name.to_owned(),
                password_hash,
                created_at: OffsetDateTime::now_utc(),
            },
        );
        let mut bytes = serde_json::to_vec_pretty(&db).map_err(|source| UserError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        bytes.push(b'\n');
        crate::atomic::replace_synced(&self.path, &bytes).map_err(|source| UserError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(User {
            id: user_id.to_owned(),
            name: name.to_owned(),
        })
    }

    fn lock_file(&self) -> Result<std::fs::File, UserError> {
        let mut lock_path = self.path.as_os_str().to_owned();
        lock_path.push(".lock");
        let io_err = |source| UserError::Io {
            path: PathBuf::from(&lock_path),
            source,
        };
        crate::atomic::lock_exclusive(Path::new(&lock_path)).map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_then_verify_and_duplicates_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = UserDb::new(dir.path().join("users.json"), 4);
        db.register("alice", "Alice", "correct horse")
            .expect("registered");
        assert!(matches!(
            db.register("alice", "A2", "x"),
            Err(UserError::Taken(_))
        ));
        assert_eq!(
            db.verify("alice", "correct horse")
                .expect("io")
                .map(|u| u.name),
            Some("Alice".into())
        );
        assert_eq!(db.verify("alice", "wrong").expect("io"), None);
        assert_eq!(db.verify("bob", "correct horse").expect("io"), None);
        let text = std::fs::read_to_string(db.path()).expect("read");
        assert!(
            text.contains("$2b$04$") && !text.contains("correct horse"),
            "{text}"
        );
        let mode = std::fs::metadata(db.path()).expect("stat").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }
}
