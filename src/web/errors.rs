//! The outermost middleware, which guarantees every answer is a page a person can read and carries
//! the right headers: errors raised below it (actix-session turns any store failure into an empty
//! 500; extractors refuse bad forms with plain text) become our error pages, and every response
//! gets the security headers, and dynamic ones the caching headers that session pages need.
//!
//! Caching: a successful `/static/` file keeps its own `Cache-Control`; every other response, and
//! any response that sets a cookie whatever said otherwise, is `no-store, private`, so that no
//! shared cache ever keeps a session's page or cookie.
//!
//! Which error page a store failure gets (413 for refused data, 503 for an outage) is decided from
//! the typed [`FailureKind`] the store recorded during the request, never from error text.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use super::AppState;
use crate::store::error::{watch_failures, FailureKind};

/// Content-Security-Policy of every page: scripts and styles from this site's own files only
/// (no inline script, no `eval`), nothing fetched from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub async fn every_response(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // For the error pages (the request itself is gone once the inner service has it, and a
    // clone of it would stop the router from filling in its path parameters).
    let (lang, path) = match &state {
        Some(state) => (state.lang(req.request()), req.path().to_owned()),
        None => (crate::i18n::Lang::En, String::new()),
    };
    let is_static = req.path().starts_with("/static/");
    let (outcome, failure) = watch_failures(next.call(req)).await;
    let Some(state) = state else {
        return outcome.map(ServiceResponse::map_into_boxed_body);
    };
    match outcome {
        Ok(res) => {
            let mut res = if res.status().as_u16() >= 400 && is_bare(&res) {
                let (req, bare) = res.into_parts();
                let mut page = page_for(&state, lang, &path, bare.status());
                for (name, value) in bare.headers() {
                    if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
                        page.headers_mut().append(name.clone(), value.clone());
                    }
                }
                ServiceResponse::new(req, page)
            } else {
                res.map_into_boxed_body()
            };
            let status = res.status();
            add_headers(res.headers_mut(), status, is_static);
            Ok(res)
        }
        Err(err) => {
            let status = err.as_response_error().status_code();
            let mut page = if err.as_error::<super::lock::TimedOut>().is_some() {
                super::lock::busy_page(&state, lang, &path)
            } else if failure == Some(FailureKind::RefusedData) {
                tracing::warn!(error = %err, "session refused by the store; previous state kept");
                state.error_page_in(
                    lang,
                    &path,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "error-too-big-session",
                )
            } else if failure == Some(FailureKind::Unavailable) || status.is_server_error() {
                // Handlers answer their own failures; a server error here comes from the session
                // layer, i.e. the store (whose TTL and delete calls report untyped errors).
                crate::telemetry::engine_failure("sessions", &err);
                state.error_page_in(lang, &path, StatusCode::SERVICE_UNAVAILABLE, "error-store")
            } else {
                tracing::info!(status = status.as_u16(), error = %err, "request refused");
                page_for(&state, lang, &path, status)
            };
            let status = page.status();
            add_headers(page.headers_mut(), status, is_static);
            // The request is gone once the inner service has failed; an error that carries its
            // own response is how the page still reaches the client.
            Err(InternalError::from_response(err.to_string(), page).into())
        }
    }
}

/// An error answer that actix made (a refused extractor, an unrouted method) rather than one of
/// our handlers: it has no body of ours and gets our page.
fn is_bare<B>(res: &ServiceResponse<B>) -> bool {
    res.response().error().is_some() || !res.headers().contains_key(header::CONTENT_TYPE)
}

fn add_headers(headers: &mut HeaderMap, status: StatusCode, is_static: bool) {
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let public_file = is_static && status.is_success();
    if !public_file || headers.contains_key(header::SET_COOKIE) {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, private"),
        );
    }
    if !is_static {
        headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    }
}

fn page_for(
    state: &AppState,
    lang: crate::i18n::Lang,
    path: &str,
    status: StatusCode,
) -> HttpResponse {
    let prefix = match status.as_u16() {
        400 => "error-400",
        404 => "error-404",
        405 => "error-405",
        408 => "error-408",
        413 => "error-413",
        415 => "error-415",
        429 => "error-429",
        s if s >= 500 => "error-5xx",
        _ => "error-other",
    };
    state.error_page_in(lang, path, status, prefix)
}
