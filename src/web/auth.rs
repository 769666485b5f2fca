//! Login and logout (and what registration shares with them): the handlers that change who a
//! session belongs to. Passwords
//! are checked with bcrypt off the async workers, never put in a session; every login starts a
//! clean session under a new id. Attempts go through [`super::throttle`] before any password
//! is checked. User input is logged with Debug quoting only.
//!
//! Logout: `POST /logout` with the CSRF token logs out. `GET /logout` (the link people and the
//! tutorial use) logs out only with evidence that the request comes from this site
//! (`Sec-Fetch-Site: same-origin` or `none`, or failing that a same-origin `Origin` or `Referer`);
//! any other GET gets a page whose button posts the form, so another site cannot log a user out.

use actix_session::Session;
use actix_web::http::{header, StatusCode, Uri};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use serde::Deserialize;

use super::csrf::{self, Csrf};
use super::flash::Flash;
use super::respond::{see_other, with_cookie};
use super::throttle::{Origin, Refused, Reservation};
use super::{flashes_of, AppState};
use crate::users::{canonical_id, User, UserError, MAX_ID_LEN};

/// Session key holding the logged-in user's id, spelled as the user registered it (ids compare
/// without case everywhere, so this is the same account however it was typed at login).
pub const USER_KEY: &str = "user_id";

/// The id of the user this session is logged in as.
pub fn logged_in_user(session: &Session) -> Option<String> {
    session.get::<String>(USER_KEY).ok().flatten()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn login_page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    incoming: IncomingFlashMessages,
) -> HttpResponse {
    empty_form(&req, &session, &state, &incoming, "login.html")
}

/// A form page as first shown: the flash messages waiting for it and a fresh form.
pub(super) fn empty_form(
    req: &HttpRequest,
    session: &Session,
    state: &AppState,
    incoming: &IncomingFlashMessages,
    template: &str,
) -> HttpResponse {
    let flashes = flashes_of(req, state, session, incoming);
    let ctx = state.context(req, logged_in_user(session).as_deref(), flashes);
    state.form_page(req, session, StatusCode::OK, template, ctx)
}

pub async fn login(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !state.csrf.verify(&req, &session, &form.csrf_token) {
        return csrf_refused(&state, &req);
    }
    let lang = state.lang(&req);
    // Valid ids are at most 64 characters: longer input is cut before it is kept, counted or
    // logged, but checked whole (so it matches nobody). User input is logged with Debug quoting
    // (`?`), so a newline cannot forge a log line.
    let claimed: String = form.user_id.chars().take(MAX_ID_LEN).collect();
    let turn = match state.hashing.turn().await {
        Ok(turn) => turn,
        Err(busy) => return super::hashing::refused(&state, &req, &busy),
    };
    let (attempt, address) = match reserve_password_check(&state, &req, &claimed).await {
        Ok(reserved) => reserved,
        Err(refused) => return refused,
    };
    let users = state.users.clone();
    let (user_id, password) = (form.user_id, form.password);
    // The account is read again after the password check: a removal or a password change that
    // landed during the check wins, and this login fails (see `account`).
    let checked = turn.run(move || -> Result<Option<User>, UserError> {
        let user = users.verify(&user_id, &password)?;
        Ok(match user {
            Some(user) if users.credential(&user.id)?.as_ref() == Some(&user.credential) => {
                Some(user)
            }
            _ => None,
        })
    });
    match checked.await {
        Ok(Ok(Some(user))) => {
            state.throttle.clone().succeeded_async(attempt).await;
            crate::telemetry::login("success");
            let welcome = lang.t_with("flash-welcome-back", &[("name", user.name.clone().into())]);
            log_in(&state, &req, &session, &user, welcome)
        }
        Ok(Ok(None)) => {
            // The reservation stays: it is this failure.
            drop(attempt);
            tracing::info!(user_id = ?claimed, address = ?address, "failed login");
            crate::telemetry::login("failure");
            let mut ctx = state.context(
                &req,
                logged_in_user(&session).as_deref(),
                vec![Flash::error(lang.t("flash-invalid-login"))],
            );
            ctx.insert("form_user_id", &claimed);
            state.form_page(&req, &session, StatusCode::UNAUTHORIZED, "login.html", ctx)
        }
        Ok(Err(e)) => {
            state.throttle.clone().abandoned_async(attempt).await;
            users_unavailable(&state, &req, &e)
        }
        Err(busy) => {
            state.throttle.clone().abandoned_async(attempt).await;
            super::hashing::refused(&state, &req, &busy)
        }
    }
}

/// Counts a password check of the account `claimed` (as typed) from this client before the
/// password is checked, so that parallel guesses see each other; the attempt and the client's
/// address key, or the page that refuses it (429, or 503 when the counters are down).
pub(super) async fn reserve_password_check(
    state: &AppState,
    req: &HttpRequest,
    claimed: &str,
) -> Result<(Reservation, Option<String>), HttpResponse> {
    let address = req
        .peer_addr()
        .map(|a| super::throttle::address_key(a.ip()));
    let user_key = canonical_id(claimed);
    let device = state.devices.device_of(req, &user_key);
    let origin = Origin {
        address: address.as_deref(),
        device: device.as_deref(),
    };
    let reserved = state.throttle.clone().reserve_login_async(
        user_key,
        origin.address.map(str::to_owned),
        origin.device.map(str::to_owned),
    );
    match reserved.await {
        Ok(attempt) => Ok((attempt, address)),
        Err(Refused::Wait(wait)) => {
            tracing::warn!(user_id = ?claimed, address = ?address, known_device = device.is_some(), "login throttled");
            crate::telemetry::login("throttled");
            Err(too_many_attempts(state, req, wait, "throttle-logins-title"))
        }
        Err(Refused::Unavailable(e)) => Err(users_unavailable(state, req, &e)),
    }
}

/// Makes the session `user`'s: nothing of the session before (another user's data must not
/// carry over), a new session id, a new CSRF token (and the anonymous one dropped), no password.
/// The browser also becomes a known device of `user` (see [`super::device`]).
pub(super) fn log_in(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    user: &User,
    welcome: String,
) -> HttpResponse {
    session.clear();
    session.renew();
    let stored = state
        .accounts
        .bind(session, user)
        .and_then(|()| session.insert(csrf::SESSION_KEY, Csrf::new_token()));
    if let Err(e) = stored {
        // Strings always serialize; this is here so a surprise is a logged 303, not a panic.
        tracing::error!(error = %e, "could not store the login in the session");
    }
    FlashMessage::info(welcome).send();
    FlashMessage::info(state.lang(req).t("flash-id-rotated")).send();
    let res = with_cookie(see_other("/"), &state.csrf.forget());
    match state.devices.cookie_for(req, &user.id) {
        Some(device) => with_cookie(res, &device),
        None => {
            tracing::warn!("no randomness for a device id: this browser stays unknown");
            res
        }
    }
}

/// `GET /logout`: logs out when the request shows it comes from this site; otherwise asks, with a
/// button that posts the form (see the module docs).
pub async fn logout_get(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    if from_this_site(&req) {
        return log_out(&state, &req, &session);
    }
    let user = logged_in_user(&session);
    if user.is_none() {
        // Nothing to log out of, and another site must not even rotate the anonymous token.
        return see_other("/login");
    }
    let ctx = state.context(&req, user.as_deref(), Vec::new());
    state.form_page(&req, &session, StatusCode::OK, "logout.html", ctx)
}

/// `POST /logout`. A body that is not a form at all (none, so no content type) is a form without
/// its token: the CSRF page, not 415.
pub async fn logout_post(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: Result<web::Form<LogoutForm>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    // No body, or a body that is no form (`text/plain`, as `sendBeacon` sends): no token, so
    // the CSRF page. Only a form too large keeps its own answer.
    let token = match form {
        Ok(form) => form.into_inner().csrf_token,
        Err(e) if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(e)
        }
        Err(_) => String::new(),
    };
    if !state.csrf.verify(&req, &session, &token) {
        return Ok(csrf_refused(&state, &req));
    }
    Ok(log_out(&state, &req, &session))
}

fn log_out(state: &AppState, req: &HttpRequest, session: &Session) -> HttpResponse {
    let was_logged_in = session.contains_key(USER_KEY);
    session.purge();
    if was_logged_in {
        FlashMessage::info(state.lang(req).t("flash-logged-out")).send();
    }
    with_cookie(see_other("/login"), &state.csrf.forget())
}

/// Whether the request shows that a page of this site sent it: the browser's `Sec-Fetch-Site`
/// when it sends one (`none` is the user's own typing or bookmark), else `Origin` or `Referer`
/// naming this host. No evidence counts as cross-site.
fn from_this_site(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let host = req.connection_info().host().to_ascii_lowercase();
    [header::ORIGIN, header::REFERER].iter().any(|name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Uri>().ok())
            .and_then(|uri| uri.authority().map(|a| a.as_str().to_ascii_lowercase()))
            .is_some_and(|authority| authority == host)
    })
}

/// The 429 page: when to come back, in seconds and as a time, and `Retry-After`. `title` is
/// the message that names what was refused.
pub(super) fn too_many_attempts(
    state: &AppState,
    req: &HttpRequest,
    wait: std::time::Duration,
    title: &str,
) -> HttpResponse {
    // Whole seconds, rounded up, so that a client that waits exactly this long gets through.
    let seconds = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1);
    let at = time::OffsetDateTime::now_utc()
        .checked_add(time::Duration::seconds(
            i64::try_from(seconds).unwrap_or(i64::MAX),
        ))
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default();
    let lang = state.lang(req);
    let title = lang.t(title);
    let text = lang.t_with(
        "throttle-text",
        &[
            ("title", title.clone().into()),
            ("seconds", seconds.into()),
            ("time", at.into()),
        ],
    );
    let mut res = state.error_page_text(req, StatusCode::TOO_MANY_REQUESTS, &title, &text);
    res.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(seconds),
    );
    res
}

pub(super) fn csrf_refused(state: &AppState, req: &HttpRequest) -> HttpResponse {
    state.error_page(req, StatusCode::BAD_REQUEST, "error-csrf")
}

pub(super) fn users_unavailable(
    state: &AppState,
    req: &HttpRequest,
    e: &dyn std::fmt::Display,
) -> HttpResponse {
    crate::telemetry::engine_failure("accounts", e);
    state.error_page(req, StatusCode::SERVICE_UNAVAILABLE, "error-accounts")
}
