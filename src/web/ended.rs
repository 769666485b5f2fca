//! Telling a person that their session ended. A browser that sends a valid session cookie
//! whose session is gone (it expired, or was ended on the server) gets a notice on the page it
//! asked for, once: the stale cookie is then removed. actix-session cannot remove it itself (a
//! session it could not load has no key to purge), so [`forget_stale_cookie`], wrapped around
//! the session layer, does.
//!
//! A browser whose cookie has already gone (a permanent cookie's Max-Age ends with the session)
//! is a new visitor: there is nothing left to tell it by.

use actix_session::Session;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};

use super::flash::Flash;
use super::AppState;

/// Marks a request whose session cookie is stale.
#[derive(Clone, Copy)]
struct StaleCookie;

/// The notice for `req` if its session ended, marking the cookie for removal.
pub fn notice(req: &HttpRequest, state: &AppState, session: &Session) -> Option<Flash> {
    // Only a cookie that could have named a session: a signed value that is no session id
    // came from someone holding the key, not from an ended session.
    let could_have_been = |value: &str| {
        !state.store.capabilities().server_side || crate::store::id::is_well_formed(value)
    };
    let ended = super::auth::logged_in_user(session).is_none()
        && session.entries().is_empty()
        && crate::store::seen::with(|seen| seen.asked.as_deref().is_some_and(could_have_been))
            .unwrap_or(false);
    if !ended {
        return None;
    }
    req.extensions_mut().insert(StaleCookie);
    Some(Flash::info(state.lang(req).t("flash-session-ended")))
}

/// Removes the stale session cookie a page has told about, unless the answer sets a new one.
pub async fn forget_stale_cookie(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    if !res.request().extensions().contains::<StaleCookie>() {
        return Ok(res);
    }
    let Some(state) = res.request().app_data::<web::Data<AppState>>().cloned() else {
        return Ok(res);
    };
    let s = &state.config.session;
    let prefix = format!("{}=", s.cookie_name);
    let sets_one = res
        .headers()
        .get_all(header::SET_COOKIE)
        .any(|v| v.as_bytes().starts_with(prefix.as_bytes()));
    if !sets_one {
        let mut cookie = super::respond::removal(&s.cookie_name, s.cookie_secure);
        if let Some(domain) = &s.cookie_domain {
            cookie.set_domain(domain.clone());
        }
        if let Err(e) = res.response_mut().add_cookie(&cookie) {
            tracing::warn!(error = %e, "could not remove a stale session cookie");
        }
    }
    Ok(res)
}
