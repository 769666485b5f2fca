//! CSRF tokens for every form.
//!
//! Anonymous visitors have no session (so that bots on the login page write nothing to disk): their
//! token lives in a signed cookie, and a form must send the same token back (signed double-submit).
//! Once logged in, the token lives in the session, is new at each login, and only it is accepted.
//! The anonymous cookie is dropped at login and at logout, so the next visitor of that browser
//! gets a new token. With `cookie_secure = true` the cookie is named `__Host-<session>_csrf`: a
//! browser then refuses it from plain HTTP or from a sibling domain, so it cannot be planted.

use actix_session::Session;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

/// Session key under which a logged-in session keeps its token.
pub const SESSION_KEY: &str = "csrf_token";

/// Issues and checks tokens.
#[derive(Clone)]
pub struct Csrf {
    key: Key,
    cookie_name: String,
    secure: bool,
}

impl Csrf {
    /// `session_cookie_name` is the session cookie's name; the token cookie is named after it.
    pub fn new(key: Key, session_cookie_name: &str, secure: bool) -> Self {
        let prefix = if secure { "__Host-" } else { "" };
        Self {
            key,
            cookie_name: format!("{prefix}{session_cookie_name}_csrf"),
            secure,
        }
    }

    /// A cookie that deletes the anonymous token: set at login and logout.
    pub fn forget(&self) -> Cookie<'static> {
        super::respond::removal(&self.cookie_name, self.secure)
    }

    /// A fresh random token.
    pub fn new_token() -> String {
        let mut bytes = [0u8; 32];
        // Failure to draw randomness leaves a token no form can match: the form is refused, safely.
        if getrandom::fill(&mut bytes).is_err() {
            return String::new();
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The token a form on this page must carry, and the cookie to set when the visitor is
    /// anonymous and had none.
    pub fn token_for_form(
        &self,
        req: &HttpRequest,
        session: &Session,
    ) -> (String, Option<Cookie<'static>>) {
        if let Some(token) = session_token(session) {
            return (token, None);
        }
        if let Some(token) = self.cookie_token(req) {
            return (token, None);
        }
        let token = Self::new_token();
        let cookie = self.cookie_with(&token);
        (token, cookie)
    }

    /// The anonymous token cookie holding `token`, signed with the current key.
    pub fn cookie_with(&self, token: &str) -> Option<Cookie<'static>> {
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key).add(
            Cookie::build(self.cookie_name.clone(), token.to_owned())
                .path("/")
                .http_only(true)
                .secure(self.secure)
                .same_site(SameSite::Lax)
                .finish(),
        );
        jar.get(&self.cookie_name).cloned()
    }

    /// The anonymous token cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Whether `submitted` is this visitor's token.
    pub fn verify(&self, req: &HttpRequest, session: &Session, submitted: &str) -> bool {
        let expected = session_token(session).or_else(|| self.cookie_token(req));
        match expected {
            Some(e) if !e.is_empty() && !submitted.is_empty() => {
                bool::from(e.as_bytes().ct_eq(submitted.as_bytes()))
            }
            _ => false,
        }
    }

    fn cookie_token(&self, req: &HttpRequest) -> Option<String> {
        super::signed_cookie_value(req, &self.key, &self.cookie_name).filter(|t| !t.is_empty())
    }
}

fn session_token(session: &Session) -> Option<String> {
    session
        .get::<String>(SESSION_KEY)
        .ok()
        .flatten()
        .filter(|t| !t.is_empty())
}

/// `data` (a session's data) with its CSRF token cut to its first characters: a token shown
/// whole, on a page or a terminal, could be pasted into a forged form.
pub fn mask_in(data: &mut serde_json::Map<String, serde_json::Value>) {
    if let Some(serde_json::Value::String(token)) = data.get_mut(SESSION_KEY) {
        let start: String = token.chars().take(4).collect();
        *token = format!("{start}… (masked)");
    }
}
