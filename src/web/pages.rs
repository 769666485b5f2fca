//! The pages that are not about logging in: the index, the health check, the stylesheet and the
//! 404 pages (one inside the session, one for `/static/`, which never touches it).

use actix_session::Session;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::IncomingFlashMessages;

use super::auth::logged_in_user;
use super::render::STYLESHEET;
use super::{flashes_of, AppState};
use crate::store::record::expiry_after;

/// Session key of the logged-in page-view counter.
pub const VISITS_KEY: &str = "visits";

/// `GET /`: anonymous visitors get the way in; a logged-in session counts this view.
pub async fn index(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    incoming: IncomingFlashMessages,
) -> HttpResponse {
    let user = logged_in_user(&session);
    let mut ctx = state.context(user.as_deref(), flashes_of(&incoming));
    if user.is_some() {
        let mut visits = session.get::<u64>(VISITS_KEY).ok().flatten().unwrap_or(0);
        // HEAD is answered like GET but is no visit: a health checker must not change a session.
        if req.method() != Method::HEAD {
            visits = visits.saturating_add(1);
            if let Err(e) = session.insert(VISITS_KEY, visits) {
                tracing::error!(error = %e, "could not count the visit");
            }
        }
        ctx.insert("visits", &visits);
        return state.form_page(&req, &session, StatusCode::OK, "index.html", ctx);
    }
    state.templates.page(StatusCode::OK, "index.html", &ctx)
}

/// `GET /api/session`: the current session as JSON, read without changing it (only the expiry
/// slides, as on any request); 401 when not logged in.
pub async fn api_session(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(user_id) = logged_in_user(&session) else {
        return HttpResponse::Unauthorized().json(serde_json::json!({ "error": "not logged in" }));
    };
    let visits = session.get::<u64>(VISITS_KEY).ok().flatten().unwrap_or(0);
    let s = &state.config.session;
    let expires_at = if s.refresh_each_request {
        // This very request moves the expiry.
        let ttl = s.ttl();
        expiry_after(time::OffsetDateTime::now_utc(), &ttl).ok()
    } else {
        // The expiry is the store's bookkeeping, not session data: ask the store.
        match super::session_cookie_value(&req, &state) {
            Some(id) => state.store.expires_at(&id).await.ok().flatten(),
            None => None,
        }
    };
    let expires_at = expires_at.and_then(|at| {
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": user_id,
        "visits": visits,
        "expires_at": expires_at,
    }))
}

/// `GET /healthz`: 200 while a session can be written and read, 503 otherwise.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.check_health().await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok\n"),
        Err(e) => {
            tracing::error!(store = state.store.kind(), error = %e, "health check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("session store unavailable\n")
        }
    }
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

pub async fn not_found(session: Session, state: web::Data<AppState>) -> HttpResponse {
    let ctx = state.context(logged_in_user(&session).as_deref(), Vec::new());
    state
        .templates
        .page(StatusCode::NOT_FOUND, "404.html", &ctx)
}

/// A miss under `/static/`: the plain 404 page, without the session (and so without the user).
pub async fn static_not_found(state: web::Data<AppState>) -> HttpResponse {
    let ctx = state.context(None, Vec::new());
    state
        .templates
        .page(StatusCode::NOT_FOUND, "404.html", &ctx)
}

/// A miss in `[server] static_dir`: the same 404 page, for actix-files' default handler.
pub async fn static_miss(
    req: actix_web::dev::ServiceRequest,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    let (req, _) = req.into_parts();
    let res = match req.app_data::<web::Data<AppState>>() {
        Some(state) => static_not_found(state.clone()).await,
        None => HttpResponse::NotFound().finish(),
    };
    Ok(actix_web::dev::ServiceResponse::new(req, res))
}
