//! The user database: accounts (case-folded id, the id as typed, display name, bcrypt hash) in a
//! SQLite file, `[auth] users_db`, that several server processes may share. A login is one
//! indexed lookup (on a connection of its own, so that it never waits behind a write) and a
//! bcrypt check that a failure never makes cheaper than the check of an unknown id; a successful
//! login re-hashes a password whose hash has another cost than the configured one. The JSON file of
//! earlier versions is imported once (`legacy.rs`); what ids and names may be is in `ids.rs`.

mod ids;
mod legacy;
mod sqlite;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rusqlite::Connection;
use time::OffsetDateTime;

pub use ids::{canonical_id, valid_display_name, valid_id, MAX_ID_LEN, MAX_NAME_CHARS};
pub use legacy::imported_path;

/// What can go wrong with the user database.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user database {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("user database {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("user file {path} is not valid: {source}")]
    Legacy {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("password hashing failed: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    #[error("user id {0:?} is taken")]
    Taken(String),
}

/// A user as the pages see it: no hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The case-folded id: what sessions hold and what is unique.
    pub id: String,
    /// The id as the user typed it at registration.
    pub spelling: String,
    pub name: String,
}

/// Longest password bcrypt takes in full (longer ones would be silently cut).
pub const MAX_PASSWORD_BYTES: usize = 72;

/// What unknown user ids are checked against, so that they cost what a real user costs.
const DUMMY_PASSWORD: &str = "not a password anyone has";

/// The user database. All methods block (SQLite, bcrypt): call them off the async workers.
pub struct UserDb {
    path: PathBuf,
    cost: u32,
    /// Registrations and re-hashes: these may wait (up to the busy timeout) for another process.
    writer: Mutex<Connection>,
    /// Lookups: in WAL mode they never wait for a writer, so logins go on during a slow write.
    reader: Mutex<Connection>,
    /// The dummy hash and its cost, made again when the highest stored cost changes.
    dummy: Mutex<(u32, String)>,
    /// How many checks against the dummy hash ran: what the tests of the timing rules count.
    dummy_checks: AtomicU64,
}

impl UserDb {
    /// Opens (or creates) the database at `path`, importing `legacy` (a JSON user file of an
    /// earlier version) if it exists. New and re-hashed passwords get bcrypt `cost`.
    pub fn open(
        path: impl Into<PathBuf>,
        legacy: Option<&Path>,
        cost: u32,
    ) -> Result<Self, UserError> {
        let path = path.into();
        let mut writer = sqlite::open(&path)?;
        if let Some(legacy) = legacy {
            legacy::import(&mut writer, &path, legacy)?;
        }
        let reader = sqlite::open_reader(&path)?;
        let dummy_cost = sqlite::highest_cost(&reader)
            .map_err(|source| UserError::Db {
                path: path.clone(),
                source,
            })?
            .unwrap_or(cost);
        // Made here, not in the first login, which would otherwise take twice as long.
        let dummy = (dummy_cost, bcrypt::hash(DUMMY_PASSWORD, dummy_cost)?);
        Ok(Self {
            path,
            cost,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            dummy: Mutex::new(dummy),
            dummy_checks: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err(&self, source: rusqlite::Error) -> UserError {
        UserError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// The user whose id (in any case) and password match, or `None`. An unknown id is checked
    /// against a dummy hash at the highest stored cost; a wrong password whose stored hash is
    /// cheaper than that is checked against the dummy too. So no failure costs less than an
    /// unknown id, and timing does not tell an unknown id from a user who re-hashed at a lower
    /// configured cost.
    pub fn verify(&self, user_id: &str, password: &str) -> Result<Option<User>, UserError> {
        let key = canonical_id(user_id);
        let stored = sqlite::find(&self.reader.lock(), &key).map_err(|e| self.db_err(e))?;
        let Some(row) = stored else {
            self.dummy_check(password, self.dummy_cost()?)?;
            return Ok(None);
        };
        if !bcrypt::non_truncating_verify(password, &row.password_hash).unwrap_or(false) {
            let dummy_cost = self.dummy_cost()?;
            if cost_of(&row.password_hash).is_none_or(|c| c < dummy_cost) {
                self.dummy_check(password, dummy_cost)?;
            }
            return Ok(None);
        }
        if cost_of(&row.password_hash) != Some(self.cost) {
            self.rehash(&key, &row.password_hash, password);
        }
        Ok(Some(User {
            id: key,
            spelling: row.id,
            name: row.name,
        }))
    }

    /// Stores a new hash at the configured cost. The login has already succeeded: a failure
    /// here is logged, and the next login tries again.
    fn rehash(&self, key: &str, old: &str, password: &str) {
        let result = bcrypt::non_truncating_hash(password, self.cost)
            .map_err(UserError::from)
            .and_then(|new| {
                sqlite::replace_hash(&self.writer.lock(), key, old, &new)
                    .map_err(|e| self.db_err(e))
            });
        match result {
            Ok(true) => {
                tracing::info!(user_id = ?key, cost = self.cost, "password re-hashed at the configured cost")
            }
            // Another login (maybe in another process) changed the hash first.
            Ok(false) => {
                tracing::debug!(user_id = ?key, "password not re-hashed: the stored hash changed meanwhile")
            }
            Err(e) => tracing::warn!(user_id = ?key, error = %e, "could not re-hash the password"),
        }
    }

    /// The cost of the hash unknown ids are checked against: the highest cost of a stored
    /// hash (a lower one would tell an unknown id from a user whose hash has the highest), or
    /// the configured one while there are no users.
    pub fn dummy_cost(&self) -> Result<u32, UserError> {
        let highest = sqlite::highest_cost(&self.reader.lock()).map_err(|e| self.db_err(e))?;
        Ok(highest.unwrap_or(self.cost))
    }

    /// Checks `password` against the dummy hash, made again first if `cost`, the highest stored
    /// one, changed since (another process or a re-hash changed the population).
    fn dummy_check(&self, password: &str, cost: u32) -> Result<(), UserError> {
        let cached = self.dummy.lock().clone();
        let hash = if cached.0 == cost {
            cached.1
        } else {
            let hash = bcrypt::hash(DUMMY_PASSWORD, cost)?;
            *self.dummy.lock() = (cost, hash.clone());
            hash
        };
        self.dummy_checks.fetch_add(1, Ordering::Relaxed);
        // The outcome does not matter (no one has the dummy password): only the time spent.
        let _ = bcrypt::non_truncating_verify(password, &hash);
        Ok(())
    }

    /// The cost of the stored hash of `user_id`, if the user exists.
    pub fn stored_cost(&self, user_id: &str) -> Result<Option<u32>, UserError> {
        let stored = sqlite::find(&self.reader.lock(), &canonical_id(user_id))
            .map_err(|e| self.db_err(e))?;
        Ok(stored.and_then(|row| cost_of(&row.password_hash)))
    }

    /// Adds a user with a bcrypt hash of `password`. `user_id` must be [`valid_id`]; an id that
    /// differs from a stored one only in case is [`UserError::Taken`].
    pub fn register(&self, user_id: &str, name: &str, password: &str) -> Result<User, UserError> {
        let password_hash = bcrypt::non_truncating_hash(password, self.cost)?;
        let key = canonical_id(user_id);
        let row = sqlite::Row {
            id: user_id.to_owned(),
            name: name.to_owned(),
            password_hash,
        };
        let added = sqlite::insert(&self.writer.lock(), &key, &row, &now_rfc3339())
            .map_err(|e| self.db_err(e))?;
        if !added {
            return Err(UserError::Taken(user_id.to_owned()));
        }
        Ok(User {
            id: key,
            spelling: row.id,
            name: row.name,
        })
    }

    /// Adds users whose hashes are already made (`(id, name, hash)`), in one transaction; ids
    /// already taken are skipped. For tools that fill a database (see `examples/users.rs`).
    pub fn add_hashed<'a>(
        &self,
        users: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Result<usize, UserError> {
        let now = now_rfc3339();
        let total = std::cell::Cell::new(0usize);
        let rows = users.into_iter().map(|(id, name, hash)| {
            total.set(total.get() + 1);
            let row = sqlite::Row {
                id: id.to_owned(),
                name: name.to_owned(),
                password_hash: hash.to_owned(),
            };
            (canonical_id(id), row, now.as_str())
        });
        let taken =
            sqlite::insert_all(&mut self.writer.lock(), rows).map_err(|e| self.db_err(e))?;
        Ok(total.get().saturating_sub(taken.len()))
    }
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The bcrypt cost written in `hash`.
fn cost_of(hash: &str) -> Option<u32> {
    hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost())
}

#[cfg(test)]
mod tests;
