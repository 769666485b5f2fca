//! `[auth]`: where user accounts are kept, password hashing and rules, and login throttling.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::check::{resolve, Invalid, Positive};
use super::duration::{Seconds, MAX_FAILED_LOGIN_WINDOW};
use super::StoreType;

/// Validated `[auth]`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The engine that keeps user accounts: `users` as written, or the one that follows the
    /// session store ([`StoreType::accounts_following`]); always one that holds accounts.
    pub users: StoreType,
    /// The accounts' file, when `users` keeps accounts there; the login counters' file when
    /// the session engine keeps none.
    pub users_db: PathBuf,
    /// The JSON user file of earlier versions, imported into `users_db` once if it exists.
    pub users_file: PathBuf,
    pub bcrypt_cost: u32,
    pub min_password_length: usize,
    /// Failed logins without delay per user id and address (see `web::throttle`).
    pub max_failed_logins: u32,
    pub failed_login_window: Duration,
}

/// `[auth]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawAuth {
    /// Unset: follows `[session] type`.
    #[serde(deserialize_with = "crate::engines::list::accounts_engine")]
    users: Option<StoreType>,
    users_db: PathBuf,
    users_file: PathBuf,
    bcrypt_cost: u32,
    min_password_length: Positive,
    max_failed_logins: Positive,
    failed_login_window: Seconds<MAX_FAILED_LOGIN_WINDOW>,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            users: None,
            users_db: "users.db".into(),
            users_file: "users.json".into(),
            bcrypt_cost: 12,
            min_password_length: Positive(8),
            max_failed_logins: Positive(5),
            failed_login_window: Seconds(Duration::from_secs(15 * 60)),
        }
    }
}

impl RawAuth {
    /// `store` is the validated `[session] type`, which `users` follows when unset.
    pub(super) fn validate(self, base: &Path, store: StoreType) -> Result<AuthConfig, Invalid> {
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(Invalid::new(
                "auth.bcrypt_cost",
                self.bcrypt_cost.to_string(),
                "expected an integer from 4 to 31 (12 is a sound default)",
            ));
        }
        let Positive(min_password_length) = self.min_password_length;
        let min_password_length = usize::try_from(min_password_length)
            .ok()
            .filter(|&n| n <= 1024)
            .ok_or_else(|| {
                Invalid::new(
                    "auth.min_password_length",
                    min_password_length.to_string(),
                    "expected an integer from 1 to 1024",
                )
            })?;
        let Positive(max_failed_logins) = self.max_failed_logins;
        Ok(AuthConfig {
            users: self.users.unwrap_or_else(|| store.accounts_following()),
            users_db: resolve(base, self.users_db),
            users_file: resolve(base, self.users_file),
            bcrypt_cost: self.bcrypt_cost,
            min_password_length,
            max_failed_logins: u32::try_from(max_failed_logins).unwrap_or(u32::MAX),
            failed_login_window: self.failed_login_window.0,
        })
    }
}
