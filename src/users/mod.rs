//! The user database: accounts (case-folded id, the id as typed, display name, bcrypt hash) in a
//! storage that several server processes may share, behind the small seam in `storage.rs`: the
//! engine `[auth] users` names implements it in its folder (`crate::engines`). This file keeps
//! the policy: a login is one lookup and a bcrypt check that a failure never makes cheaper than
//! the check of an unknown id; a successful login re-hashes a password whose hash has another
//! cost than the configured one. The JSON file of earlier versions is imported once
//! (`legacy.rs`); what ids and names may be is in `ids.rs`.

mod ids;
mod legacy;
mod storage;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use time::OffsetDateTime;

pub use storage::{NewUser, Row, UserStorage};

pub use ids::{canonical_id, valid_display_name, valid_id, MAX_ID_LEN, MAX_NAME_CHARS};
// The operator's commands escape the characters a name may not hold when they print stored text.
pub(crate) use ids::invisible;
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
    /// The engine keeping the accounts failed.
    #[error("user database: {0}")]
    Engine(#[from] crate::engines::error::EngineError),
    #[error("user database: a stored user {key:?} is not whole")]
    Damaged { key: String },
    #[error("user id {0:?} is taken")]
    Taken(String),
    #[error("the user database does not support {0}")]
    Unsupported(&'static str),
}

/// A user as the pages see it: no hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The case-folded id: what sessions hold and what is unique.
    pub id: String,
    /// The id as the user typed it at registration.
    pub spelling: String,
    pub name: String,
    /// What identifies the password as it was set: the random salt of its bcrypt hash, new at
    /// every registration and password change, kept when a login re-hashes the same password
    /// at another cost. Sessions are bound to it (see `web::account`).
    pub credential: String,
}

/// Longest password bcrypt takes in full (longer ones would be silently cut).
pub const MAX_PASSWORD_BYTES: usize = 72;

/// What unknown user ids are checked against, so that they cost what a real user costs.
const DUMMY_PASSWORD: &str = "not a password anyone has";

/// The user database: the policy over a [`UserStorage`]. All methods block (the engine,
/// bcrypt): call them off the async workers.
pub struct UserDb {
    storage: Box<dyn UserStorage>,
    cost: u32,
    /// The dummy hash and its cost, made again when the highest stored cost changes.
    dummy: Mutex<(u32, String)>,
    /// How many checks against the dummy hash ran: what the tests of the timing rules count.
    dummy_checks: AtomicU64,
}

impl UserDb {
    /// The policy over `storage`, after importing `legacy` into it if it exists.
    pub fn over(
        storage: Box<dyn UserStorage>,
        legacy: Option<&Path>,
        cost: u32,
    ) -> Result<Self, UserError> {
        if let Some(legacy) = legacy {
            match legacy::import(&*storage, legacy) {
                // The engine down at start: the file stays where it is (it is renamed only once
                // imported), so the next start imports it; this one serves meanwhile.
                Err(e @ UserError::Engine(_)) => tracing::warn!(
                    error = %e,
                    file = %legacy.display(),
                    "user store unreachable: the legacy user file will be imported at the next start"
                ),
                other => {
                    other?;
                }
            }
        }
        // A server must start while the engine is down, and come up by itself: the dummy is made
        // again at the first check that finds another highest cost.
        let dummy_cost = match storage.highest_cost() {
            Ok(highest) => highest.unwrap_or(cost),
            Err(e) => {
                tracing::warn!(error = %e, "user database unreachable at start; will retry at each login");
                cost
            }
        };
        // Made here, not in the first login, which would otherwise take twice as long.
        let dummy = (dummy_cost, bcrypt::hash(DUMMY_PASSWORD, dummy_cost)?);
        Ok(Self {
            storage,
            cost,
            dummy: Mutex::new(dummy),
            dummy_checks: AtomicU64::new(0),
        })
    }

    /// The file the accounts are in; `None` when they are in an engine over the network.
    pub fn path(&self) -> Option<&Path> {
        self.storage.path()
    }

    /// The user whose id (in any case) and password match, or `None`. An unknown id is checked
    /// against a dummy hash at the highest stored cost; a wrong password whose stored hash is
    /// cheaper than that is checked against the dummy too. So no failure costs less than an
    /// unknown id, and timing does not tell an unknown id from a user who re-hashed at a lower
    /// configured cost.
    pub fn verify(&self, user_id: &str, password: &str) -> Result<Option<User>, UserError> {
        let key = canonical_id(user_id);
        let stored = self.storage.find(&key)?;
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
            credential: credential_of(&row.password_hash),
            id: key,
            spelling: row.id,
            name: row.name,
        }))
    }

    /// Stores a new hash at the configured cost, with the salt of the old one, so that the
    /// account's [`User::credential`] (and every session bound to it) survives. The login has
    /// already succeeded: a failure here is logged, and the next login tries again.
    fn rehash(&self, key: &str, old: &str, password: &str) {
        let result = salt_of(old)
            .map_or_else(
                || bcrypt::non_truncating_hash(password, self.cost),
                |salt| {
                    bcrypt::non_truncating_hash_with_salt(password, self.cost, salt)
                        .map(|parts| parts.format_for_version(bcrypt::Version::TwoB))
                },
            )
            .map_err(UserError::from)
            .and_then(|new| self.storage.replace_hash(key, old, &new));
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
        Ok(self.storage.highest_cost()?.unwrap_or(self.cost))
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
        let stored = self.storage.find(&canonical_id(user_id))?;
        Ok(stored.and_then(|row| cost_of(&row.password_hash)))
    }

    /// Adds a user with a bcrypt hash of `password`. `user_id` must be [`valid_id`]; an id that
    /// differs from a stored one only in case is [`UserError::Taken`].
    pub fn register(&self, user_id: &str, name: &str, password: &str) -> Result<User, UserError> {
        let password_hash = bcrypt::non_truncating_hash(password, self.cost)?;
        let user = NewUser {
            key: canonical_id(user_id),
            row: Row {
                id: user_id.to_owned(),
                name: name.to_owned(),
                password_hash,
            },
            created_at: now_rfc3339(),
        };
        if !self.storage.insert(&user)? {
            return Err(UserError::Taken(user_id.to_owned()));
        }
        Ok(User {
            credential: credential_of(&user.row.password_hash),
            id: user.key,
            spelling: user.row.id,
            name: user.row.name,
        })
    }

    /// The [`User::credential`] of `user_id` as stored now; `None` when there is no such
    /// account. What a logged-in session is checked against.
    pub fn credential(&self, user_id: &str) -> Result<Option<String>, UserError> {
        let stored = self.storage.find(&canonical_id(user_id))?;
        Ok(stored.map(|row| credential_of(&row.password_hash)))
    }

    /// Adds users whose hashes are already made (`(id, name, hash)`), in one transaction; ids
    /// already taken are skipped. For tools that fill a database (see `examples/users.rs`).
    pub fn add_hashed<'a>(
        &self,
        users: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Result<usize, UserError> {
        let now = now_rfc3339();
        let rows: Vec<NewUser> = users
            .into_iter()
            .map(|(id, name, hash)| NewUser {
                key: canonical_id(id),
                row: Row {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    password_hash: hash.to_owned(),
                },
                created_at: now.clone(),
            })
            .collect();
        let total = rows.len();
        let taken = self.storage.insert_all(rows)?;
        Ok(total.saturating_sub(taken.len()))
    }
}

/// A stored account as the operator's `users list` shows it: no hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: User,
    /// When it registered (RFC 3339), as stored.
    pub created_at: String,
}

impl UserDb {
    /// Every account, ordered by its case-folded id.
    pub fn list(&self) -> Result<Vec<Account>, UserError> {
        Ok(self
            .storage
            .list()?
            .into_iter()
            .map(|(key, row, created_at)| Account {
                user: User {
                    credential: credential_of(&row.password_hash),
                    id: key,
                    spelling: row.id,
                    name: row.name,
                },
                created_at,
            })
            .collect())
    }

    /// Deletes the account of `user_id` (in any case); `Ok(false)` when there is none.
    pub fn remove(&self, user_id: &str) -> Result<bool, UserError> {
        self.storage.remove(&canonical_id(user_id))
    }

    /// Gives `user_id` a new password (hashed at the configured cost, with a new salt, so that
    /// every session bound to the old one ends); returns the new [`User::credential`], or
    /// `None` when there is no such user. A login re-hashing the old password meanwhile does
    /// not undo it: the replacement only lands on the hash it read, and is tried again
    /// otherwise.
    pub fn set_password(&self, user_id: &str, password: &str) -> Result<Option<String>, UserError> {
        let key = canonical_id(user_id);
        let new = bcrypt::non_truncating_hash(password, self.cost)?;
        loop {
            let Some(row) = self.storage.find(&key)? else {
                return Ok(None);
            };
            if self.storage.replace_hash(&key, &row.password_hash, &new)? {
                return Ok(Some(credential_of(&new)));
            }
        }
    }
}

/// Why `password` cannot be a password here, if it cannot: the rule registration and the
/// operator's commands share.
pub fn password_problem(password: &str, min_chars: usize) -> Option<PasswordProblem> {
    if password.chars().count() < min_chars {
        Some(PasswordProblem::TooShort { min: min_chars })
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(PasswordProblem::TooLong {
            max: MAX_PASSWORD_BYTES,
        })
    } else {
        None
    }
}

/// Why a password is refused; shown in English by the CLI, in the page's language on the web.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("Password must be at least {min} characters.")]
    TooShort { min: usize },
    #[error("Password must be at most {max} bytes.")]
    TooLong { max: usize },
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The [`User::credential`] of a stored hash: its salt, or the whole text of a hash that is no
/// bcrypt hash (it changes whenever the hash does).
fn credential_of(hash: &str) -> String {
    hash.parse::<bcrypt::HashParts>()
        .map_or_else(|_| hash.to_owned(), |parts| parts.get_salt())
}

/// The 16 salt bytes of a bcrypt hash.
fn salt_of(hash: &str) -> Option<[u8; 16]> {
    use base64::Engine;
    const BCRYPT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::BCRYPT,
        base64::engine::general_purpose::NO_PAD,
    );
    let salt = hash.parse::<bcrypt::HashParts>().ok()?.get_salt();
    BCRYPT_BASE64.decode(salt).ok()?.try_into().ok()
}

/// The bcrypt cost written in `hash`.
pub(crate) fn cost_of(hash: &str) -> Option<u32> {
    hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost())
}

#[cfg(test)]
mod tests;

impl From<UserError> for crate::engines::error::EngineError {
    fn from(e: UserError) -> Self {
        Self::new(e)
    }
}
