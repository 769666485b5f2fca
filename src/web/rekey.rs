//! Key rotation on the wire (the keys are [`crate::secret::Keyring`]'s): a cookie signed (for the
//! `cookie` type's session, encrypted) under an older key is still accepted, and its next
//! response carries it under the current key, so that rotating the secret logs nobody out.
//!
//! [`accept_older_keys`], the outermost layer, checks the request's own cookies (session, CSRF,
//! flash, known device) under the current key; one that only an older key verifies is opened
//! with that key and sealed again under the current one in the request itself, before any other
//! layer reads a cookie. Every later layer therefore sees one key only, and nothing is ever signed
//! with an older key: the re-issued cookies are made by the usual code, with the current key
//! (Flask 3.1.0 signed with a stale fallback, CVE-2025-47278). [`reissue`], inside the session
//! layer, then makes the answer carry them: it marks the session changed (actix-session then
//! writes it and sets its cookie) and sets the CSRF and device cookies again unless the handler
//! set them. A flash cookie is read and cleared by this very request: nothing to re-issue.
//!
//! With no older key configured both layers return at once: the rotation costs nothing until it
//! is used, and then one extra signature check per request carrying a cookie.

use actix_session::SessionExt;
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, CookieJar, Key};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use super::AppState;

/// Session key removed (never written) to mark the session changed, so that actix-session
/// re-issues its cookie under the current key.
const MARK: &str = "__rekeyed";

/// How a cookie's value is protected.
#[derive(Clone, Copy)]
enum Seal {
    Signed,
    Encrypted,
}

/// Which of the server's cookies a request cookie is.
#[derive(Clone, Copy)]
enum Purpose {
    Session,
    Csrf,
    Flash,
    Device,
}

impl Purpose {
    /// This purpose's key among `keys`.
    fn key(self, keys: &super::CookieKeys) -> &Key {
        match self {
            Self::Session => &keys.session,
            Self::Csrf => &keys.csrf,
            Self::Flash => &keys.flash,
            Self::Device => &keys.device,
        }
    }
}

/// What [`accept_older_keys`] sealed again in this request: the plain values of the cookies
/// that [`reissue`] must set again.
#[derive(Clone, Default)]
struct Rekeyed {
    session: bool,
    csrf: Option<String>,
    device: Option<String>,
}

/// The outermost layer: re-seals under the current key the request's cookies that only an
/// older key verifies.
pub async fn accept_older_keys(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    if state.keys.older.is_empty() || !req.headers().contains_key(header::COOKIE) {
        return next.call(req).await;
    }
    let mut cookies = request_cookies(&req);
    let session_seal = if state.store.capabilities().server_side {
        Seal::Signed
    } else {
        Seal::Encrypted
    };
    let s = &state.config.session;
    let flash_name = super::flash_cookie_name(&s.cookie_name);
    let mut rekeyed = Rekeyed::default();
    let mut changed = false;
    for cookie in &mut cookies {
        let name = cookie.name();
        let purpose = if name == s.cookie_name {
            Purpose::Session
        } else if name == state.csrf.cookie_name() {
            Purpose::Csrf
        } else if name == flash_name {
            Purpose::Flash
        } else if name == state.devices.cookie_name() {
            Purpose::Device
        } else {
            continue;
        };
        let seal = match purpose {
            Purpose::Session => session_seal,
            _ => Seal::Signed,
        };
        let current = purpose.key(&state.keys);
        if open(cookie, seal, current).is_some() {
            continue;
        }
        let mut older = state.keys.older.iter().map(|k| purpose.key(k));
        let Some(plain) = older.find_map(|key| open(cookie, seal, key)) else {
            continue;
        };
        let Some(sealed) = seal_under(&plain, seal, current) else {
            continue;
        };
        match purpose {
            Purpose::Session => rekeyed.session = true,
            Purpose::Csrf => rekeyed.csrf = Some(plain.value().to_owned()),
            Purpose::Device => rekeyed.device = Some(plain.value().to_owned()),
            // Read and cleared by this very request: nothing to set again.
            Purpose::Flash => {}
        }
        *cookie = sealed;
        changed = true;
    }
    if changed {
        let line = cookies
            .iter()
            .map(|c| c.encoded().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        if let Ok(value) = HeaderValue::from_str(&line) {
            req.headers_mut().insert(header::COOKIE, value);
            tracing::debug!("a cookie under an older secret key was accepted and sealed again");
            req.extensions_mut().insert(rekeyed);
        }
    }
    next.call(req).await
}

/// Inside the session layer: makes the answer carry, under the current key, the cookies that
/// [`accept_older_keys`] sealed again.
pub async fn reissue(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let rekeyed = req.extensions().get::<Rekeyed>().cloned();
    let Some(rekeyed) = rekeyed else {
        return next.call(req).await;
    };
    if rekeyed.session {
        // Marks the session changed without changing it.
        req.get_session().remove(MARK);
    }
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let mut res = next.call(req).await?;
    let Some(state) = state else {
        return Ok(res);
    };
    let again = [
        rekeyed
            .csrf
            .and_then(|token: String| state.csrf.cookie_with(&token)),
        rekeyed
            .device
            .and_then(|value: String| state.devices.cookie_with(&value)),
    ];
    for cookie in again.into_iter().flatten() {
        if !sets_cookie(&res, cookie.name()) {
            if let Err(e) = res.response_mut().add_cookie(&cookie) {
                tracing::error!(error = %e, cookie = cookie.name(), "could not set a cookie");
            }
        }
    }
    Ok(res)
}

/// The cookies of the request's `Cookie` headers, decoded as actix-web decodes them.
fn request_cookies(req: &ServiceRequest) -> Vec<Cookie<'static>> {
    req.headers()
        .get_all(header::COOKIE)
        // As actix-web reads it: UTF-8, not only visible ASCII (another app on the domain may
        // set `name=Zoë`; skipping that line would drop the cookies beside it).
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .flat_map(|line| line.split(';'))
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .filter_map(|part| Cookie::parse_encoded(part.to_owned()).ok())
        .collect()
}

/// The plain cookie, if `key` verifies (or decrypts) it.
fn open(cookie: &Cookie<'static>, seal: Seal, key: &Key) -> Option<Cookie<'static>> {
    let mut jar = CookieJar::new();
    jar.add_original(cookie.clone());
    match seal {
        Seal::Signed => jar.signed(key).get(cookie.name()),
        Seal::Encrypted => jar.private(key).get(cookie.name()),
    }
}

/// `plain` sealed under `key`.
fn seal_under(plain: &Cookie<'static>, seal: Seal, key: &Key) -> Option<Cookie<'static>> {
    let mut jar = CookieJar::new();
    match seal {
        Seal::Signed => jar.signed_mut(key).add(plain.clone()),
        Seal::Encrypted => jar.private_mut(key).add(plain.clone()),
    }
    jar.get(plain.name()).cloned()
}

/// Whether the answer already sets (or removes) the cookie `name`.
fn sets_cookie(res: &ServiceResponse<impl MessageBody>, name: &str) -> bool {
    res.headers()
        .get_all(header::SET_COOKIE)
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| Cookie::parse(v).ok())
        .any(|c| c.name() == name)
}
