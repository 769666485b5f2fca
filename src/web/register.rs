//! Registration: `GET /register` and `POST /register`. The form is checked field by field
//! (the id, the name, the password typed twice), throttled per address like a login, and a new
//! account is logged in at once, under a new session id. Also the rule every new password
//! follows (registration's and the password page's).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::IncomingFlashMessages;
use serde::Deserialize;

use super::auth::{
    csrf_refused, empty_form, log_in, logged_in_user, too_many_attempts, users_unavailable,
};
use super::flash::Flash;
use super::throttle::Refused;
use super::AppState;
use crate::i18n::Lang;
use crate::users::{valid_display_name, valid_id, PasswordProblem, UserError};

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repassword: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn register_page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    incoming: IncomingFlashMessages,
) -> HttpResponse {
    empty_form(&req, &session, &state, &incoming, "register.html")
}

pub async fn register(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<RegisterForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !state.csrf.verify(&req, &session, &form.csrf_token) {
        return csrf_refused(&state, &req);
    }
    let lang = state.lang(&req);
    let user_name = form.user_name.trim().to_owned();
    let problems = registration_problems(
        &form,
        &user_name,
        state.config.auth.min_password_length,
        lang,
    );
    let refuse = |status: StatusCode, flashes: Vec<Flash>| {
        let mut ctx = state.context(&req, logged_in_user(&session).as_deref(), flashes);
        ctx.insert("form_user_id", &form.user_id);
        ctx.insert("form_user_name", &user_name);
        state.form_page(&req, &session, status, "register.html", ctx)
    };
    if !problems.is_empty() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, problems);
    }
    let turn = match state.hashing.turn().await {
        Ok(turn) => turn,
        Err(busy) => return super::hashing::refused(&state, &req, &busy),
    };
    let address = req
        .peer_addr()
        .map(|a| super::throttle::address_key(a.ip()));
    match state
        .throttle
        .clone()
        .reserve_registration_async(address.clone())
        .await
    {
        Ok(()) => {}
        Err(Refused::Wait(wait)) => {
            tracing::warn!(address = ?address, "registration throttled");
            return too_many_attempts(&state, &req, wait, "throttle-address-title");
        }
        Err(Refused::Unavailable(e)) => return users_unavailable(&state, &req, &e),
    }
    let users = state.users.clone();
    let (id, name, password) = (
        form.user_id.clone(),
        user_name.clone(),
        form.password.clone(),
    );
    match turn
        .run(move || users.register(&id, &name, &password))
        .await
    {
        Ok(Ok(user)) => {
            tracing::info!(user_id = ?user.spelling, "registered");
            // A removed account's id registered again: its old sessions must not pass on
            // what this process read of the old account.
            state.accounts.forget(&user.id);
            let welcome = lang.t_with("flash-welcome-new", &[("name", user.name.clone().into())]);
            log_in(&state, &req, &session, &user, welcome)
        }
        Ok(Err(UserError::Taken(_))) => refuse(
            StatusCode::CONFLICT,
            vec![Flash::error(lang.t("flash-id-taken"))],
        ),
        Ok(Err(e)) => users_unavailable(&state, &req, &e),
        Err(busy) => super::hashing::refused(&state, &req, &busy),
    }
}

/// Every reason a registration form is refused, in the order of its fields.
fn registration_problems(
    form: &RegisterForm,
    user_name: &str,
    min_password: usize,
    lang: Lang,
) -> Vec<Flash> {
    let mut problems = Vec::new();
    if !valid_id(&form.user_id) {
        problems.push(Flash::error(lang.t("problem-user-id")));
    }
    if !valid_display_name(user_name) {
        problems.push(Flash::error(lang.t("problem-name")));
    }
    problems.extend(new_password_problems(
        &form.password,
        &form.repassword,
        min_password,
        lang,
    ));
    problems
}

/// Why a new password (typed twice) is refused, if it is: registration's and the password
/// page's rule.
pub(super) fn new_password_problems(
    password: &str,
    repeated: &str,
    min_password: usize,
    lang: Lang,
) -> Vec<Flash> {
    let mut problems = Vec::new();
    match crate::users::password_problem(password, min_password) {
        Some(PasswordProblem::TooShort { min }) => problems.push(Flash::error(
            lang.t_with("problem-password-short", &[("min", min.into())]),
        )),
        Some(PasswordProblem::TooLong { max }) => problems.push(Flash::error(
            lang.t_with("problem-password-long", &[("max", max.into())]),
        )),
        None => {}
    }
    if password != repeated {
        problems.push(Flash::error(lang.t("problem-password-mismatch")));
    }
    problems
}
