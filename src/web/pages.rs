//! The pages that are not about logging in: the index, the health check, the stylesheet and the
//! 404 pages (one inside the session, one for `/static/`, which never touches it).

use actix_session::Session;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::IncomingFlashMessages;

use super::auth::logged_in_user;
use super::panel::Panel;
use super::render::{SCRIPT, STYLESHEET};
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
    let flashes = flashes_of(&req, &state, &session, &incoming);
    let mut ctx = state.context(&req, user.as_deref(), flashes);
    if user.is_some() {
        let mut visits = session.get::<u64>(VISITS_KEY).ok().flatten().unwrap_or(0);
        // HEAD is answered like GET but is no visit: a health checker must not change a session.
        let counted = req.method() != Method::HEAD;
        if counted {
            visits = visits.saturating_add(1);
            if let Err(e) = session.insert(VISITS_KEY, visits) {
                tracing::error!(error = %e, "could not count the visit");
            }
        }
        ctx.insert("visits", &visits);
        if let Some(panel) = Panel::of(&state, &session, counted) {
            ctx.insert("panel", &panel);
        }
        return state.form_page(&req, &session, StatusCode::OK, "index.html", ctx);
    }
    state.templates.page(StatusCode::OK, "index.html", &ctx)
}

/// `GET /api/session`: the current session as JSON, read without changing it (only the expiry
/// slides, as on any request); 401 when not logged in.
pub async fn api_session(session: Session, state: web::Data<AppState>) -> HttpResponse {
    let Some(user_id) = logged_in_user(&session) else {
        return HttpResponse::Unauthorized().json(serde_json::json!({ "error": "not logged in" }));
    };
    let visits = session.get::<u64>(VISITS_KEY).ok().flatten().unwrap_or(0);
    let s = &state.config.session;
    let expires_at = if s.refresh_each_request {
        // This very request moves the expiry.
        let ttl = s.ttl();
        expiry_after(s.clock.now(), &ttl).ok()
    } else {
        // The expiry is the store's bookkeeping, not session data: as the load found it.
        crate::store::seen::with(|seen| seen.live.map(|live| live.expires_at)).flatten()
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
            crate::telemetry::engine_failure("health", &e);
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("session store unavailable\n")
        }
    }
}

pub async fn stylesheet() -> HttpResponse {
    static_file("text/css; charset=utf-8", STYLESHEET)
}

pub async fn script() -> HttpResponse {
    static_file("text/javascript; charset=utf-8", SCRIPT)
}

fn static_file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

pub async fn not_found(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    not_found_page(&req, &state, logged_in_user(&session).as_deref())
}

/// The 404 page, in the request's language, naming `user` in the header when logged in.
pub fn not_found_page(req: &HttpRequest, state: &AppState, user: Option<&str>) -> HttpResponse {
    let ctx = state.context(req, user, Vec::new());
    state
        .templates
        .page(StatusCode::NOT_FOUND, "404.html", &ctx)
}

/// A miss under `/static/`: the plain 404 page, without the session (and so without the user).
pub async fn static_not_found(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    not_found_page(&req, &state, None)
}

/// A miss in `[server] static_dir`: the same 404 page, for actix-files' default handler.
pub async fn static_miss(
    req: actix_web::dev::ServiceRequest,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    let (req, _) = req.into_parts();
    let res = match req.app_data::<web::Data<AppState>>() {
        Some(state) => not_found_page(&req, state, None),
        None => HttpResponse::NotFound().finish(),
    };
    Ok(actix_web::dev::ServiceResponse::new(req, res))
}

/// The `static_dir` filter: a request path is served only if it names a regular file under
/// `dir` through no symbolic link (a link planted in the folder, `ln -s ../secret.key
/// public/key.txt`, must not publish what it points at).
pub fn own_regular_file(
    dir: std::path::PathBuf,
) -> impl Fn(&std::path::Path, &actix_web::dev::RequestHead) -> bool + 'static {
    move |relative, _| {
        let mut at = dir.clone();
        for part in relative.components() {
            let std::path::Component::Normal(part) = part else {
                return false;
            };
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => return false,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        std::fs::symlink_metadata(&at).is_ok_and(|meta| meta.file_type().is_file())
    }
}
