//! The storage seam under the user database: the few operations the policy in `UserDb` needs
//! from wherever accounts are kept (each engine's `users.rs`). Every write is
//! atomic on its own, so that several server processes sharing one storage agree: an insert
//! fails when the id is taken, a re-hash fails when the hash changed meanwhile, and the highest
//! cost in use is kept by the storage itself, not by one process.

use super::UserError;

/// A stored user, keyed by its case-folded id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The id as the user typed it at registration.
    pub id: String,
    pub name: String,
    pub password_hash: String,
}

/// A new user: its case-folded key, the row, and when it registered (RFC 3339).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub key: String,
    pub row: Row,
    pub created_at: String,
}

/// Where accounts are kept. All methods block: they run off the async workers.
pub trait UserStorage: Send + Sync {
    /// The user whose case-folded id is `key`.
    fn find(&self, key: &str) -> Result<Option<Row>, UserError>;
    /// Adds `user` unless its key is taken (`Ok(false)`), atomically across processes.
    fn insert(&self, user: &NewUser) -> Result<bool, UserError>;
    /// Adds every user whose key is free; returns the keys held by another user (not those
    /// already holding this very user, as after an earlier import). By default one insert
    /// each; a storage that can do it in one transaction does.
    fn insert_all(&self, users: Vec<NewUser>) -> Result<Vec<String>, UserError> {
        let mut taken = Vec::new();
        for user in users {
            if !self.insert(&user)?
                && self
                    .find(&user.key)?
                    .is_none_or(|had| had.password_hash != user.row.password_hash)
            {
                taken.push(user.key);
            }
        }
        Ok(taken)
    }
    /// Replaces the hash of `key` with `new` if it is still `old`.
    fn replace_hash(&self, key: &str, old: &str, new: &str) -> Result<bool, UserError>;
    /// Every user, ordered by key: `(key, row, created_at)`.
    fn list(&self) -> Result<Vec<(String, Row, String)>, UserError>;
    /// Deletes the user `key`; `Ok(false)` when there was none.
    fn remove(&self, key: &str) -> Result<bool, UserError>;
    /// The highest bcrypt cost of a stored hash, if any user exists.
    fn highest_cost(&self) -> Result<Option<u32>, UserError>;
    /// The file the accounts are in, for storages that are one.
    fn path(&self) -> Option<&std::path::Path> {
        None
    }
}
