//! `[session]`: the store type, lifetime and refresh rules, size limit, locking, the cookie and
//! its signing key; each engine's own table is a sub-table (`[session.<type>]`), from the
//! engines' registry.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::check::{resolve, Invalid, Positive};
use super::duration::{OrNone, Seconds, Timeout, DAY, MAX_LIFETIME, MAX_TTL};
use crate::engines::list::{for_each_engine, StoreType};

/// `[session]`'s structs with one sub-table per engine of the registry, named after it.
macro_rules! session_tables {
    ($($module:ident $Type:ident,)*) => {
/// Validated `[session]` with its sub-tables.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub store: StoreType,
    pub permanent: bool,
    pub lifetime: Duration,
    /// How long a login lasts however often it is used (OWASP's absolute timeout); `None`:
    /// as long as it is used.
    pub absolute_lifetime: Option<Duration>,
    pub refresh_each_request: bool,
    /// Largest serialized session, in bytes.
    pub max_session_bytes: usize,
    /// Serialize the requests of one session (PHP's guarantee).
    pub lock: bool,
    /// How long a request waits for its session's lock before it gets 503.
    pub lock_timeout: Duration,
    pub cookie_name: String,
    pub cookie_secure: bool,
    pub cookie_samesite: SameSite,
    pub cookie_domain: Option<String>,
    pub secret_key_file: PathBuf,
    /// Older keys still accepted (Flask's `SECRET_KEY_FALLBACKS`), beside those kept next to
    /// `secret_key_file` by `secret rotate`.
    pub secret_key_fallbacks: Vec<PathBuf>,
    /// What the stores that judge expiry themselves tell time by: the system clock, unless set
    /// in code (a test's [`Clock::adjustable`](crate::store::Clock::adjustable)). Not a key.
    pub clock: crate::store::Clock,
    $(pub $module: crate::engines::list::configs::$module::Table,)*
}

/// `[session]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawSession {
    #[serde(rename = "type")]
    store: StoreType,
    permanent: bool,
    lifetime: Seconds<MAX_LIFETIME>,
    absolute_lifetime: OrNone<Seconds<MAX_LIFETIME>>,
    refresh_each_request: bool,
    max_session_bytes: Positive,
    lock: bool,
    lock_timeout: Timeout,
    cookie_name: String,
    cookie_secure: bool,
    cookie_samesite: SameSite,
    cookie_domain: Option<String>,
    secret_key_file: PathBuf,
    secret_key_fallbacks: Vec<PathBuf>,
    $($module: crate::engines::list::configs::$module::Raw,)*
}

impl Default for RawSession {
    fn default() -> Self {
        Self {
            store: StoreType::DEFAULT,
            permanent: true,
            lifetime: Seconds(Duration::from_secs(31 * DAY)),
            absolute_lifetime: OrNone(Some(Seconds(Duration::from_secs(7 * DAY)))),
            refresh_each_request: true,
            max_session_bytes: Positive(64 * 1024),
            lock: false,
            lock_timeout: Timeout(Duration::from_secs(5)),
            cookie_name: "session".into(),
            cookie_secure: false,
            cookie_samesite: SameSite::Lax,
            cookie_domain: None,
            secret_key_file: "secret.key".into(),
            secret_key_fallbacks: Vec::new(),
            $($module: Default::default(),)*
        }
    }
}

/// What each engine's table validates to, whichever `type` is chosen: a wrong value is
/// reported before someone switches to its store.
struct Tables {
    $($module: crate::engines::list::configs::$module::Table,)*
}

impl Tables {
    fn validate(raw: &mut RawSession, base: &Path) -> Result<Self, Invalid> {
        Ok(Self {
            $($module: crate::engines::list::configs::$module::validate(
                std::mem::take(&mut raw.$module),
                base,
            )?,)*
        })
    }

    fn into_config(self, common: SessionConfigCommon) -> SessionConfig {
        let SessionConfigCommon {
            store, permanent, lifetime, absolute_lifetime, refresh_each_request,
            max_session_bytes, lock, lock_timeout, cookie_name, cookie_secure,
            cookie_samesite, cookie_domain, secret_key_file, secret_key_fallbacks,
        } = common;
        SessionConfig {
            store, permanent, lifetime, absolute_lifetime, refresh_each_request,
            max_session_bytes, lock, lock_timeout, cookie_name, cookie_secure,
            cookie_samesite, cookie_domain, secret_key_file, secret_key_fallbacks,
            clock: crate::store::Clock::system(),
            $($module: self.$module,)*
        }
    }
}
    };
}

for_each_engine!(session_tables);

/// `[session]`'s own keys, validated: the engines' tables join them in [`Tables::into_config`].
struct SessionConfigCommon {
    store: StoreType,
    permanent: bool,
    lifetime: Duration,
    absolute_lifetime: Option<Duration>,
    refresh_each_request: bool,
    max_session_bytes: usize,
    lock: bool,
    lock_timeout: Duration,
    cookie_name: String,
    cookie_secure: bool,
    cookie_samesite: SameSite,
    cookie_domain: Option<String>,
    secret_key_file: PathBuf,
    secret_key_fallbacks: Vec<PathBuf>,
}

impl SessionConfig {
    /// `lifetime` as the `time` crate's duration, for cookie ages and expiry deadlines. It cannot
    /// fail: validation caps `lifetime` at 400 days, and a larger value set in code is capped
    /// here too, so `now + ttl()` stays far inside `time`'s range.
    pub fn ttl(&self) -> time::Duration {
        time::Duration::try_from(self.lifetime).map_or(MAX_TTL, |ttl| ttl.min(MAX_TTL))
    }
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl RawSession {
    /// Validates this table and every store's table, whichever `type` is chosen: a wrong value
    /// is reported before someone switches to its store.
    pub(super) fn validate(mut self, base: &Path) -> Result<SessionConfig, Invalid> {
        let cookie_name = std::mem::take(&mut self.cookie_name);
        if cookie_name.is_empty()
            || !cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(Invalid::new(
                "session.cookie_name",
                format!("{cookie_name:?}"),
                "expected 1 or more letters, digits, '-', '_' or '.'",
            ));
        }
        if self.cookie_samesite == SameSite::None && !self.cookie_secure {
            return Err(Invalid::new(
                "session.cookie_samesite",
                "\"none\"",
                "browsers refuse SameSite=None without Secure: set session.cookie_secure = true or use \"lax\"/\"strict\"",
            ));
        }
        if let Some(domain) = &self.cookie_domain {
            if domain.is_empty() || domain.contains([';', ' ', ',', '/']) {
                return Err(Invalid::new(
                    "session.cookie_domain",
                    format!("{domain:?}"),
                    "expected a host name such as \"example.com\"",
                ));
            }
        }
        if self.lock && !self.store.capabilities().server_side {
            return Err(Invalid::new(
                "session.lock",
                "true",
                format!(
                    "type = \"{}\" keeps each session in its cookie, where requests cannot be \
                     serialized: set lock = false, or keep sessions on the server",
                    self.store
                ),
            ));
        }
        let Positive(max_session_bytes) = self.max_session_bytes;
        let max_session_bytes = usize::try_from(max_session_bytes)
            .ok()
            .filter(|n| (256..=16 * 1024 * 1024).contains(n))
            .ok_or_else(|| {
                Invalid::new(
                    "session.max_session_bytes",
                    max_session_bytes.to_string(),
                    "expected an integer from 256 to 16777216 (16 MiB)",
                )
            })?;
        let tables = Tables::validate(&mut self, base)?;
        Ok(tables.into_config(SessionConfigCommon {
            store: self.store,
            permanent: self.permanent,
            lifetime: self.lifetime.0,
            absolute_lifetime: self.absolute_lifetime.0.map(|s| s.0),
            refresh_each_request: self.refresh_each_request,
            max_session_bytes,
            lock: self.lock,
            lock_timeout: self.lock_timeout.0,
            cookie_name,
            cookie_secure: self.cookie_secure,
            cookie_samesite: self.cookie_samesite,
            cookie_domain: self.cookie_domain,
            secret_key_file: resolve(base, self.secret_key_file),
            secret_key_fallbacks: self
                .secret_key_fallbacks
                .into_iter()
                .map(|p| resolve(base, p))
                .collect(),
        }))
    }
}
