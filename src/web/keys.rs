//! [`CookieKeys`]: the key of each cookie, derived from the secret key, with the same keys of
//! every older key a rotation still accepts (see [`super::rekey`]).

use std::sync::Arc;

use actix_web::cookie::Key;

/// One signing key per cookie, derived from the master secret, so that the value of one cookie
/// never verifies as another's.
#[derive(Clone)]
pub struct CookieKeys {
    pub session: Key,
    pub csrf: Key,
    pub flash: Key,
    pub device: Key,
    /// Keys the hash that binds a session to its account.
    pub account: Key,
    /// The same keys derived from each older key of the keyring (see [`rekey`]): they open what
    /// was sealed before a rotation, and never seal anything.
    pub older: Arc<[CookieKeys]>,
}

impl CookieKeys {
    /// The keys of the master secret `master` alone.
    pub fn derive(master: &Key) -> Self {
        Self {
            session: crate::secret::derive_key(master, "session"),
            csrf: crate::secret::derive_key(master, "csrf"),
            flash: crate::secret::derive_key(master, "flash"),
            device: crate::secret::derive_key(master, "device"),
            account: crate::secret::derive_key(master, "account"),
            older: Arc::new([]),
        }
    }

    /// The keys of the keyring's current key, with those of its older keys.
    pub fn of(keyring: &crate::secret::Keyring) -> Self {
        Self {
            older: keyring.older().map(Self::derive).collect(),
            ..Self::derive(keyring.current())
        }
    }
}
