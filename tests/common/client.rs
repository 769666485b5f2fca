//! The one test client: a browser's cookie jar and CSRF scraper over either transport, the app
//! in process or the built binary over TCP.

use std::collections::BTreeMap;

use actix_http::{HttpMessage as _, Request};
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;

use super::{call, raw_http, Page};

/// How a [`Client`]'s requests reach a server: the app itself, in process (any service from
/// [`start`]), or the built binary over TCP ([`Tcp`]).
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// The response, or `None` when nothing answered (a server that is down or was killed).
    async fn exchange(&self, req: Request) -> Option<Page>;
}

impl<S, B> Transport for S
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    async fn exchange(&self, req: Request) -> Option<Page> {
        Some(call(self, req).await)
    }
}

/// A real server, one TCP connection per request.
#[derive(Clone, Copy, Debug)]
pub struct Tcp(pub std::net::SocketAddr);

impl Transport for Tcp {
    async fn exchange(&self, mut req: Request) -> Option<Page> {
        use futures_util::StreamExt;
        let mut body = Vec::new();
        let mut payload = req.take_payload();
        while let Some(chunk) = payload.next().await {
            body.extend_from_slice(&chunk.ok()?);
        }
        let mut raw = format!("{} {} HTTP/1.1\r\n", req.method(), req.uri()).into_bytes();
        for (name, value) in req.headers() {
            if name != header::CONTENT_LENGTH && name != header::CONNECTION {
                raw.extend_from_slice(name.as_str().as_bytes());
                raw.extend_from_slice(b": ");
                raw.extend_from_slice(value.as_bytes());
                raw.extend_from_slice(b"\r\n");
            }
        }
        if !req.headers().contains_key(header::HOST) {
            raw.extend_from_slice(format!("host: {}\r\n", self.0).as_bytes());
        }
        raw.extend_from_slice(
            format!(
                "connection: close\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        raw.extend_from_slice(&body);
        let (_, text) = raw_http(self.0, raw)?;
        Page::parse(&text)
    }
}

/// A browser: one cookie jar (one expiry rule) and the forms' CSRF tokens, over any
/// [`Transport`]. Like a current browser on this site, it says `Sec-Fetch-Site: same-origin`
/// unless a request sets its own or [`Client::fetch_site`] is `None`.
#[derive(Clone)]
pub struct Client {
    pub cookies: BTreeMap<String, String>,
    pub fetch_site: Option<&'static str>,
}

/// The name most tests know the client by.
pub type Browser = Client;

impl Default for Client {
    fn default() -> Self {
        Self {
            cookies: BTreeMap::new(),
            fetch_site: Some("same-origin"),
        }
    }
}

impl Client {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn get(&mut self, via: &impl Transport, path: &str) -> Page {
        self.send(via, TestRequest::get().uri(path)).await
    }

    pub async fn post(&mut self, via: &impl Transport, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(via, TestRequest::post().uri(path).set_form(form))
            .await
    }

    /// Sends `req` with this browser's cookies; panics when nothing answers.
    pub async fn send(&mut self, via: &impl Transport, req: TestRequest) -> Page {
        self.try_send(via, req).await.expect("the server answered")
    }

    /// Sends `req` with this browser's cookies and keeps the cookies the answer sets.
    pub async fn try_send(&mut self, via: &impl Transport, req: TestRequest) -> Option<Page> {
        let mut req = req.to_request();
        let headers = req.headers_mut();
        if !self.cookies.is_empty() && !headers.contains_key(header::COOKIE) {
            let jar = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            headers.insert(
                header::COOKIE,
                header::HeaderValue::from_str(&jar).expect("cookie header"),
            );
        }
        if let Some(site) = self.fetch_site {
            if !headers.contains_key("sec-fetch-site") {
                headers.insert(
                    header::HeaderName::from_static("sec-fetch-site"),
                    header::HeaderValue::from_static(site),
                );
            }
        }
        let page = via.exchange(req).await?;
        self.keep_cookies(&page);
        Some(page)
    }

    /// The one expiry rule: an empty value, a `Max-Age` of zero or less or an `Expires` in the
    /// past deletes the cookie; anything else sets it.
    fn keep_cookies(&mut self, page: &Page) {
        let now = actix_web::cookie::time::OffsetDateTime::now_utc();
        for c in page.set_cookies() {
            let expired = c.value().is_empty()
                || c.max_age().is_some_and(|a| a.is_zero() || a.is_negative())
                || c.expires_datetime().is_some_and(|at| at <= now);
            if expired {
                self.cookies.remove(c.name());
            } else {
                self.cookies
                    .insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    pub fn session_cookie(&self) -> Option<&String> {
        self.cookies.get("session")
    }

    /// Registers and is logged in as `user_id` (password "password123").
    pub async fn register(&mut self, via: &impl Transport, user_id: &str) -> Page {
        let token = self.get(via, "/register").await.csrf_token();
        self.post(
            via,
            "/register",
            &[
                ("user_id", user_id),
                ("user_name", &format!("{user_id} name")),
                ("password", "password123"),
                ("repassword", "password123"),
                ("csrf_token", &token),
            ],
        )
        .await
    }

    pub async fn login(&mut self, via: &impl Transport, user_id: &str, password: &str) -> Page {
        let token = self.get(via, "/login").await.csrf_token();
        self.post_login(via, user_id, password, &token).await
    }

    /// Posts the login form with the given CSRF token.
    pub async fn post_login(
        &mut self,
        via: &impl Transport,
        user_id: &str,
        password: &str,
        token: &str,
    ) -> Page {
        self.post(
            via,
            "/login",
            &[
                ("user_id", user_id),
                ("password", password),
                ("csrf_token", token),
            ],
        )
        .await
    }

    /// The visit count `GET /` shows: `None` when not logged in or when nothing answered.
    pub async fn visit(&mut self, via: &impl Transport) -> Option<u64> {
        let page = self.try_send(via, TestRequest::get().uri("/")).await?;
        if page.status != StatusCode::OK {
            return None;
        }
        page.element_text("visits")?.parse().ok()
    }
}

/// Runs `f` to completion on a runtime of its own: for [`Tcp`] clients in plain threads.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
