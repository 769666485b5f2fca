//! What the server tells its operator about requests: one log line per request (method, path
//! without its query, status, latency, the session's short hash, never a raw id, token or
//! password), a request id on every line logged while the request runs and in the
//! `X-Request-Id` answer header, the request and error counters, a count of session cookies
//! that fail their signature, and the `/metrics` endpoint on its own address.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::Instrument;

use super::{AppState, StartError};
use crate::store::{seen, Store};
use crate::telemetry::{self, Ignored, IGNORED};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The outermost layer: names the request, logs it once it is answered, counts it.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = new_request_id();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let cookie_sent = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| req.cookie(&state.config.session.cookie_name).is_some());
    let span = tracing::info_span!("request", id = %request_id);
    let (outcome, seen) = seen::scope(next.call(req).instrument(span.clone())).await;
    let incoming = incoming_session(cookie_sent, seen);
    let (status, mut res) = match outcome {
        Ok(res) => (res.status(), Ok(res)),
        Err(e) => (e.as_response_error().status_code(), Err(e)),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        match &mut res {
            Ok(res) => {
                res.headers_mut().insert(REQUEST_ID, value);
            }
            // An error page (a store's outage, a busy session) names the request too.
            Err(e) => {
                *e = super::respond::edit_error_page(e, |page| {
                    page.headers_mut().insert(REQUEST_ID, value);
                });
            }
        }
    }
    telemetry::request(status.as_u16());
    if let Some(kind) = error_kind(status.as_u16()) {
        telemetry::error(kind);
    }
    let latency = started.elapsed();
    let _entered = span.enter();
    tracing::info!(
        method = %method,
        path = ?path,
        status = status.as_u16(),
        latency_ms = format_args!("{:.2}", latency.as_secs_f64() * 1000.0),
        session = incoming.as_deref().unwrap_or("-"),
        "request"
    );
    res
}

/// A UUIDv7: time-ordered (the order log tools sort by), unique enough to find a request's
/// lines, and never anything the client sent (which could forge log lines). Session ids are not
/// UUIDs: they keep 256 random bits, where a UUIDv7 has 74.
fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The short hash of the session the request's cookie named, as the session layer verified it;
/// a cookie the session layer did not take (its signature failed) is counted, not logged: a
/// flood of forged cookies must not fill the disk.
fn incoming_session(cookie_sent: bool, seen: seen::Seen) -> Option<String> {
    if cookie_sent && seen.entered && seen.asked.is_none() {
        IGNORED.count(Ignored::Forged);
    }
    seen.tag
}

/// Marks that the session layer runs for this request (static files are served outside it),
/// so that a cookie it did not take can be told from one it was never shown.
pub async fn in_session_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    seen::entered();
    next.call(req).await
}

/// The `errors_total` label of an answer's status, if it is an error.
#[allow(clippy::match_overlapping_arm)]
fn error_kind(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "bad_request",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "too_large",
        415 => "unsupported_form",
        429 => "throttled",
        503 => "unavailable",
        401..=499 => "other_client",
        500..=599 => "server",
        _ => return None,
    })
}

/// How long a count of live sessions is reused: listing a big store on every scrape would be
/// the most expensive thing the endpoint does.
const LIVE_COUNT_FOR: Duration = Duration::from_secs(10);

/// Starts the `/metrics` server on `bind` (one worker, no signals of its own: the main server's
/// stop stops it); `None` when metrics are off.
pub fn start_metrics(
    bind: &str,
    store: Store,
    clock: crate::store::Clock,
    handle: PrometheusHandle,
) -> Result<actix_web::dev::Server, StartError> {
    let live = Arc::new(LiveCount {
        store,
        clock,
        counted: parking_lot::Mutex::new(None),
    });
    let server = HttpServer::new(move || {
        let (live, handle) = (Arc::clone(&live), handle.clone());
        App::new().route(
            "/metrics",
            web::get().to(move || {
                let (live, handle) = (Arc::clone(&live), handle.clone());
                async move {
                    live.refresh().await;
                    HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4; charset=utf-8")
                        .body(handle.render())
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(bind)
    .map_err(|source| StartError::Bind {
        bind: bind.to_owned(),
        source,
    })?;
    Ok(server.run())
}

/// The live-session gauge's source: the store, the clock its sessions end by, and when they
/// were last counted.
struct LiveCount {
    store: Store,
    clock: crate::store::Clock,
    counted: parking_lot::Mutex<Option<Instant>>,
}

impl LiveCount {
    async fn refresh(&self) {
        if !self.store.capabilities().can_list {
            return;
        }
        if self
            .counted
            .lock()
            .is_some_and(|at| at.elapsed() < LIVE_COUNT_FOR)
        {
            return;
        }
        *self.counted.lock() = Some(Instant::now());
        // Counted batch by batch: a store of millions is never held to be counted.
        let count = async {
            use futures_util::TryStreamExt;
            let now = self.clock.now();
            self.store
                .server("listing sessions")?
                .list_batches()
                .try_fold(0usize, |live, batch| async move {
                    Ok(live + batch.iter().filter(|s| s.is_live(now)).count())
                })
                .await
        };
        match count.await {
            Ok(live) => telemetry::live_sessions(live),
            Err(e) => tracing::warn!(error = %e, "cannot count the live sessions for /metrics"),
        }
    }
}

/// Stops `servers` gracefully at the first SIGTERM or SIGINT: no new connections, the requests
/// in flight finish (up to each server's shutdown timeout).
pub async fn stop_on_signal(servers: Vec<ServerHandle>) {
    let signal = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => "SIGTERM",
                        _ = int.recv() => "SIGINT",
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                    "Ctrl-C"
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    };
    let which = signal.await;
    tracing::info!(
        signal = which,
        "stopping: no new connections; requests in flight may finish"
    );
    for server in servers {
        server.stop(true).await;
    }
}
