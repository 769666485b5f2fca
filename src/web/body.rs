//! A request's body is read whole, within `[server] body_timeout`, before anything else works
//! on the request: a client that sends its headers and then nothing (or a trickle) gets 408
//! and its connection closed, instead of holding a worker's connection (and, with
//! `lock = true`, its session's lock) for as long as it likes. actix-web bounds the headers
//! (`client_request_timeout`), not the body.
//!
//! Bodies are small here (forms of at most [`super::FORM_LIMIT`] bytes): one declared larger is
//! left to the form extractor, which refuses it from its `Content-Length` without reading it;
//! one sent in chunks is refused with 413 as soon as it passes the limit.

use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::HttpMessage;
use futures_util::StreamExt;

use super::{AppState, FORM_LIMIT};

/// How reading a body ended.
enum Read {
    Whole(Bytes),
    TooLarge,
    Broken,
    TimedOut,
}

/// Reads the body of `req` within the configured time, then hands the request on with the body
/// in memory.
pub async fn read_within(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    if !has_body(&req) || declared_len(&req).is_some_and(|n| n > FORM_LIMIT) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let payload = req.take_payload();
    let read = read(payload, state.config.server.body_timeout).await;
    let (status, prefix) = match read {
        Read::Whole(bytes) => {
            req.set_payload(Payload::from(bytes));
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        Read::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "error-413"),
        Read::Broken => (StatusCode::BAD_REQUEST, "error-400"),
        Read::TimedOut => (StatusCode::REQUEST_TIMEOUT, "error-408"),
    };
    if status == StatusCode::REQUEST_TIMEOUT {
        tracing::info!(
            path = ?req.path(),
            timeout = ?state.config.server.body_timeout,
            "request body did not arrive in time; connection closed"
        );
    }
    let mut refused = state.refusal(req, status, prefix);
    // What is left of the body would be read as the next request: the connection ends here.
    refused
        .response_mut()
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Ok(refused.map_into_right_body())
}

fn has_body(req: &ServiceRequest) -> bool {
    declared_len(req).is_some_and(|n| n > 0)
        || req.headers().contains_key(header::TRANSFER_ENCODING)
}

fn declared_len(req: &ServiceRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn read(mut payload: Payload, within: Duration) -> Read {
    let whole = async {
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let Ok(chunk) = chunk else {
                return Read::Broken;
            };
            if body.len().saturating_add(chunk.len()) > FORM_LIMIT {
                return Read::TooLarge;
            }
            body.extend_from_slice(&chunk);
        }
        Read::Whole(body.freeze())
    };
    tokio::time::timeout(within, whole)
        .await
        .unwrap_or(Read::TimedOut)
}
