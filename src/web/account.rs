//! A session is bound to its account as it was at login, and to a time: Django's
//! `get_session_auth_hash`, for every store type (the `cookie` type too, whose payload carries
//! both).
//!
//! At login the session gets, beside `user_id`, a keyed hash of the account's id and of its
//! password's salt (`account`), and the login's time (`logged_in_at`, RFC 3339). On every
//! request of a logged-in session [`check`] compares the hash with the account as it is now:
//! a removed account, a changed password (a new salt) or a re-registered id (a new salt too)
//! no longer matches, and the session is ended (purged) before any handler sees it. A session
//! past `[session] absolute_lifetime` since its login ends the same way, however often it was
//! used. A session without the binding (made by an earlier version) ends too: nothing vouches
//! for it.
//!
//! The account is read from the shared user database (so a `users remove` or `users passwd`
//! on one machine ends the sessions on every instance); a process keeps what it read for at
//! most [`CACHE_FOR`], so a change takes effect within that. The hash is keyed with a key
//! derived from the secret key, so a session file shows nothing of the password's hash.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_session::{Session, SessionExt};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::Key;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::auth::{logged_in_user, USER_KEY};
use super::AppState;
use crate::users::{canonical_id, User, UserDb, UserError};

/// Session key of the keyed hash of the account the session belongs to.
pub const ACCOUNT_KEY: &str = "account";
/// Session key of the login's time (RFC 3339, UTC, so that a person reading a session file
/// sees it).
pub const LOGGED_IN_AT_KEY: &str = "logged_in_at";
/// How long a process trusts what it read of an account: the delay after which a removal or
/// a password change made anywhere ends a session here.
pub const CACHE_FOR: Duration = Duration::from_secs(1);
/// Past this many remembered accounts, the ones read longer ago than [`CACHE_FOR`] are dropped.
const PRUNE_AT: usize = 10_000;

/// Why a logged-in session was ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The account is gone, its password changed, or its id now names another account.
    AccountChanged,
    /// `[session] absolute_lifetime` has passed since the login.
    AbsoluteLifetime,
    /// The session holds no binding (an earlier version made it).
    Unbound,
}

impl Ended {
    fn reason(self) -> &'static str {
        match self {
            Self::AccountChanged => "the account was removed or its password changed",
            Self::AbsoluteLifetime => "absolute_lifetime passed since the login",
            Self::Unbound => "the session is bound to no account state",
        }
    }
}

/// Why a session's account could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Users(#[from] UserError),
    #[error("no thread to read the account on: {0}")]
    Blocking(#[from] actix_web::error::BlockingError),
}

/// What the binding needs: the hash key, the absolute lifetime, and the accounts read lately.
pub struct Accounts {
    key: Vec<u8>,
    /// The hash keys of the secret's older keys: a binding made under one still holds, and is
    /// made again under the current key (see [`super::rekey`]).
    older: Vec<Vec<u8>>,
    absolute: Option<Duration>,
    read: Mutex<HashMap<String, (Instant, Option<String>)>>,
    /// Counts [`Accounts::forget`] calls: a read that started before one is not cached, since
    /// it may predate the change that was forgotten.
    forgotten: std::sync::atomic::AtomicU64,
    clock: crate::store::Clock,
}

impl Accounts {
    /// `key` is derived from the secret key for this use only; `older` from the older keys
    /// still accepted.
    pub fn new<'k>(
        key: &Key,
        older: impl IntoIterator<Item = &'k Key>,
        absolute: Option<Duration>,
    ) -> Self {
        Self {
            key: key.signing().to_vec(),
            older: older.into_iter().map(|k| k.signing().to_vec()).collect(),
            absolute,
            read: Mutex::default(),
            forgotten: std::sync::atomic::AtomicU64::new(0),
            clock: crate::store::Clock::system(),
        }
    }

    /// Logins timed, and their absolute end judged, by `clock`: the session store's, so that a
    /// test's clock moves both together.
    #[must_use]
    pub fn with_clock(mut self, clock: crate::store::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The keyed hash of `credential` of the account `user_key` (case-folded).
    pub fn stamp(&self, user_key: &str, credential: &str) -> String {
        stamp_with(&self.key, user_key, credential)
    }
}

/// The keyed hash of `credential` of the account `user_key` under `key`.
fn stamp_with(key: &[u8], user_key: &str, credential: &str) -> String {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(user_key.as_bytes());
    mac.update(b"\0");
    mac.update(credential.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

impl Accounts {
    /// Makes `session` the logged-in session of `user`, logged in now.
    pub fn bind(
        &self,
        session: &Session,
        user: &User,
    ) -> Result<(), actix_session::SessionInsertError> {
        let now = self.clock.now().format(&Rfc3339).unwrap_or_default();
        session.insert(USER_KEY, &user.spelling)?;
        session.insert(ACCOUNT_KEY, self.stamp(&user.id, &user.credential))?;
        session.insert(LOGGED_IN_AT_KEY, now)
    }

    /// Binds `session` again after its user's password changed to `credential`, keeping the
    /// login's time (the absolute lifetime still counts from it).
    pub fn rebind(
        &self,
        session: &Session,
        user_key: &str,
        credential: &str,
    ) -> Result<(), actix_session::SessionInsertError> {
        session.insert(ACCOUNT_KEY, self.stamp(user_key, credential))
    }

    /// Forgets what this process read of the account `user_key`: after a change made here
    /// (a registration, a password change), the next request reads it again.
    pub fn forget(&self, user_key: &str) {
        let mut cache = self.read.lock();
        cache.remove(user_key);
        self.forgotten
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The end of a session logged in at `logged_in_at`, if it has one.
    pub fn ends_at(&self, logged_in_at: OffsetDateTime) -> Option<OffsetDateTime> {
        logged_in_at.checked_add(time::Duration::try_from(self.absolute?).ok()?)
    }

    /// When `session` was logged in, as its binding says.
    pub fn logged_in_at(session: &Session) -> Option<OffsetDateTime> {
        let at = session.get::<String>(LOGGED_IN_AT_KEY).ok().flatten()?;
        OffsetDateTime::parse(&at, &Rfc3339).ok()
    }

    /// Whether the session logged in as `user_id` still stands; an error when the accounts
    /// cannot be read.
    pub async fn verdict(
        &self,
        users: &Arc<UserDb>,
        session: &Session,
        user_id: &str,
    ) -> Result<Option<Ended>, CheckError> {
        let stamp = session.get::<String>(ACCOUNT_KEY).ok().flatten();
        let at = Self::logged_in_at(session);
        let (Some(stamp), Some(at)) = (stamp, at) else {
            return Ok(Some(Ended::Unbound));
        };
        if self.ends_at(at).is_some_and(|end| self.clock.now() >= end) {
            return Ok(Some(Ended::AbsoluteLifetime));
        }
        let key = canonical_id(user_id);
        let Some(credential) = self.credential(users, &key).await? else {
            return Ok(Some(Ended::AccountChanged));
        };
        let matches = |hash_key: &[u8]| -> bool {
            let expected = stamp_with(hash_key, &key, &credential);
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), stamp.as_bytes()).into()
        };
        if matches(&self.key) {
            return Ok(None);
        }
        if self.older.iter().any(|k| matches(k)) {
            // Made under a key being rotated out: bound again under the current one (which
            // also re-issues the session's cookie).
            if self.rebind(session, &key, &credential).is_ok() {
                return Ok(None);
            }
        }
        Ok(Some(Ended::AccountChanged))
    }

    /// The credential of the account `key`, as read at most [`CACHE_FOR`] ago.
    async fn credential(
        &self,
        users: &Arc<UserDb>,
        key: &str,
    ) -> Result<Option<String>, CheckError> {
        if let Some((at, credential)) = self.read.lock().get(key) {
            if at.elapsed() < CACHE_FOR {
                return Ok(credential.clone());
            }
        }
        let forgotten = self.forgotten.load(std::sync::atomic::Ordering::Acquire);
        let (users, owned) = (Arc::clone(users), key.to_owned());
        let read = web::block(move || users.credential(&owned)).await??;
        let mut cache = self.read.lock();
        if self.forgotten.load(std::sync::atomic::Ordering::Acquire) != forgotten {
            return Ok(read);
        }
        if cache.len() >= PRUNE_AT {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
        }
        cache.insert(key.to_owned(), (Instant::now(), read.clone()));
        Ok(read)
    }
}

/// Ends a logged-in session that no longer stands (see the module docs) before the handler sees
/// it: the handler then serves an anonymous visitor, who is told the session ended. When the
/// accounts cannot be read, the answer is 503: a session is never trusted unchecked.
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let session = req.get_session();
    if let Some(user_id) = logged_in_user(&session) {
        match state
            .accounts
            .verdict(&state.users, &session, &user_id)
            .await
        {
            Ok(None) => {}
            Ok(Some(ended)) => {
                tracing::info!(user_id = ?user_id, reason = ended.reason(), "session ended");
                session.purge();
            }
            Err(e) => {
                crate::telemetry::engine_failure("accounts", &e);
                let refused = state.refusal(req, StatusCode::SERVICE_UNAVAILABLE, "error-accounts");
                return Ok(refused.map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache of accounts is shared by every worker: read from many tasks at once, each
    /// answer is the account's own, and it holds one entry per account.
    #[actix_web::test]
    async fn the_account_cache_read_from_many_tasks_answers_each_account_right() {
        let dir = tempfile::tempdir().expect("tempdir");
        let users = Arc::new(UserDb::open(dir.path().join("users.db"), None, 4).expect("db"));
        let credentials: Arc<Vec<String>> = Arc::new(
            (0..20)
                .map(|i| {
                    users
                        .register(&format!("user{i}"), "n", "password123")
                        .expect("register")
                        .credential
                })
                .collect(),
        );
        let accounts = Arc::new(Accounts::new(&Key::generate(), [], None));
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let (users, accounts, credentials) = (
                    Arc::clone(&users),
                    Arc::clone(&accounts),
                    Arc::clone(&credentials),
                );
                actix_web::rt::spawn(async move {
                    for n in 0..200 {
                        // user20 does not exist.
                        let i = (n * 7 + t) % 21;
                        let got = accounts
                            .credential(&users, &format!("user{i}"))
                            .await
                            .expect("read");
                        assert_eq!(got.as_ref(), credentials.get(i), "user{i}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(accounts.read.lock().len(), 21);
    }

    /// A change made elsewhere is seen once the cache bound has passed; one made here, at once.
    #[actix_web::test]
    async fn a_removal_is_seen_within_the_cache_bound_and_forget_makes_it_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let users = Arc::new(UserDb::open(dir.path().join("users.db"), None, 4).expect("db"));
        let accounts = Accounts::new(&Key::generate(), [], None);
        users
            .register("ann", "Ann", "password123")
            .expect("register");
        users.register("bo", "Bo", "password123").expect("register");
        assert!(accounts
            .credential(&users, "ann")
            .await
            .expect("read")
            .is_some());
        assert!(accounts
            .credential(&users, "bo")
            .await
            .expect("read")
            .is_some());
        users.remove("ann").expect("remove");
        users.remove("bo").expect("remove");
        accounts.forget("bo");
        assert!(accounts
            .credential(&users, "bo")
            .await
            .expect("read")
            .is_none());
        let deadline = Instant::now() + CACHE_FOR + Duration::from_secs(2);
        while accounts
            .credential(&users, "ann")
            .await
            .expect("read")
            .is_some()
        {
            assert!(Instant::now() < deadline, "the removal was never seen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn the_stamp_depends_on_the_account_the_credential_and_the_key() {
        let key = Key::generate();
        let a = Accounts::new(&key, [], None);
        let stamp = a.stamp("ann", "salt-1");
        assert_eq!(stamp, Accounts::new(&key, [], None).stamp("ann", "salt-1"));
        assert_ne!(stamp, a.stamp("ann", "salt-2"));
        assert_ne!(stamp, a.stamp("bo", "salt-1"));
        assert_ne!(
            stamp,
            Accounts::new(&Key::generate(), [], None).stamp("ann", "salt-1")
        );
        assert_eq!(stamp.len(), 32);
    }
}
