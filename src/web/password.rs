//! `GET/POST /password`: a logged-in user changes their own password, as Django's
//! `PasswordChangeView` with `update_session_auth_hash`: the current password is checked
//! (throttled as a login is, through the same bounded hashing), the new one follows the rules
//! of registration, and then this session goes on under a new id, bound to the new password,
//! while every other session of the account ends at its next request (see [`super::account`]).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::{FlashMessage, IncomingFlashMessages};
use serde::Deserialize;

use super::auth::{csrf_refused, logged_in_user, reserve_password_check, users_unavailable};
use super::csrf::{self, Csrf};
use super::flash::Flash;
use super::register::new_password_problems;
use super::respond::see_other;
use super::{flashes_of, AppState};
use crate::users::{canonical_id, UserError};

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repassword: String,
    #[serde(default)]
    csrf_token: String,
}

/// The form; a visitor who is not logged in is sent to the login page.
pub async fn page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    incoming: IncomingFlashMessages,
) -> HttpResponse {
    let Some(user) = logged_in_user(&session) else {
        return see_other("/login");
    };
    let flashes = flashes_of(&req, &state, &session, &incoming);
    let ctx = state.context(&req, Some(&user), flashes);
    state.form_page(&req, &session, StatusCode::OK, "password.html", ctx)
}

/// What the check of the current password and the change found.
enum Outcome {
    Changed(String),
    WrongPassword,
}

pub async fn change(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !state.csrf.verify(&req, &session, &form.csrf_token) {
        return csrf_refused(&state, &req);
    }
    let Some(user) = logged_in_user(&session) else {
        return see_other("/login");
    };
    let lang = state.lang(&req);
    let refuse = |status: StatusCode, flashes: Vec<Flash>| {
        let ctx = state.context(&req, Some(&user), flashes);
        state.form_page(&req, &session, status, "password.html", ctx)
    };
    let problems = new_password_problems(
        &form.password,
        &form.repassword,
        state.config.auth.min_password_length,
        lang,
    );
    if !problems.is_empty() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, problems);
    }
    let key = canonical_id(&user);
    let turn = match state.hashing.turn().await {
        Ok(turn) => turn,
        Err(busy) => return super::hashing::refused(&state, &req, &busy),
    };
    let attempt = match reserve_password_check(&state, &req, &user).await {
        Ok((attempt, _)) => attempt,
        Err(refused) => return refused,
    };
    let users = state.users.clone();
    let (id, current, new) = (user.clone(), form.current_password, form.password);
    let checked = turn.run(move || -> Result<Outcome, UserError> {
        if users.verify(&id, &current)?.is_none() {
            return Ok(Outcome::WrongPassword);
        }
        Ok(match users.set_password(&id, &new)? {
            Some(credential) => Outcome::Changed(credential),
            None => Outcome::WrongPassword,
        })
    });
    match checked.await {
        Ok(Ok(Outcome::Changed(credential))) => {
            state.throttle.clone().succeeded_async(attempt).await;
            tracing::info!(user_id = ?user, "password changed; the account's other sessions end");
            state.accounts.forget(&key);
            session.renew();
            let rebound = state
                .accounts
                .rebind(&session, &key, &credential)
                .and_then(|()| session.insert(csrf::SESSION_KEY, Csrf::new_token()));
            if let Err(e) = rebound {
                tracing::error!(error = %e, "could not bind the session to the new password");
            }
            FlashMessage::info(lang.t("flash-password-changed")).send();
            see_other("/")
        }
        Ok(Ok(Outcome::WrongPassword)) => {
            drop(attempt);
            tracing::info!(user_id = ?user, "password change with a wrong current password");
            refuse(
                StatusCode::UNAUTHORIZED,
                vec![Flash::error(lang.t("flash-password-wrong"))],
            )
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
