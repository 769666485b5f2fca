//! The *known device* cookie: set at a successful login, it tells the login throttle that this
//! browser has logged in as this user before, so that it is counted apart from everyone else
//! (see [`super::throttle`]). It holds a random device id and the case-folded user id, signed
//! with a key of its own; a browser remembers one user (the last one to log in on it).

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, CookieJar, Key, SameSite};
use actix_web::HttpRequest;

/// How long a browser stays known without logging in again.
const LIFETIME_DAYS: i64 = 365;

/// Reads and makes known-device cookies.
#[derive(Clone)]
pub struct KnownDevices {
    key: Key,
    cookie_name: String,
    secure: bool,
}

impl KnownDevices {
    /// `key` signs the device cookie alone (see [`super::CookieKeys`]); the cookie is named after
    /// the session cookie.
    pub fn new(key: Key, session_cookie_name: &str, secure: bool) -> Self {
        Self {
            key,
            cookie_name: format!("{session_cookie_name}_device"),
            secure,
        }
    }

    /// The (device id, user id) of a validly signed cookie.
    fn read(&self, req: &HttpRequest) -> Option<(String, String)> {
        let value = super::signed_cookie_value(req, &self.key, &self.cookie_name)?;
        let (device, user) = value.split_once(':')?;
        Some((device.to_owned(), user.to_owned()))
    }

    /// The device id, if this browser is a known device of `user_id` (case-folded).
    pub fn device_of(&self, req: &HttpRequest, user_id: &str) -> Option<String> {
        self.read(req)
            .filter(|(_, user)| user == user_id)
            .map(|(device, _)| device)
    }

    /// The cookie that makes this browser a known device of `user_id`, keeping its device id
    /// if it has one. `None` only if the system has no randomness to give.
    pub fn cookie_for(&self, req: &HttpRequest, user_id: &str) -> Option<Cookie<'static>> {
        let device = match self.read(req) {
            Some((device, _)) => device,
            None => {
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes).ok()?;
                hex::encode(bytes)
            }
        };
        self.cookie_with(&format!("{device}:{user_id}"))
    }

    /// The device cookie holding `value` (`<device id>:<user id>`), signed with the current key.
    pub fn cookie_with(&self, value: &str) -> Option<Cookie<'static>> {
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key).add(
            Cookie::build(self.cookie_name.clone(), value.to_owned())
                .path("/")
                .http_only(true)
                .secure(self.secure)
                .same_site(SameSite::Lax)
                .max_age(CookieDuration::days(LIFETIME_DAYS))
                .finish(),
        );
        jar.get(&self.cookie_name).cloned()
    }

    /// The device cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }
}
