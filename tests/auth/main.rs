//! Login, registration and the user database over HTTP: throttling ([`throttle`]: parallel
//! guesses, delays, known devices, registrations) and accounts ([`accounts`]: clean sessions at
//! login, user ids without case, invisible characters in names, log injection, the legacy
//! import, re-hashing, several processes). Shared here: the captured log and request helpers.

mod accounts;
#[path = "../common/mod.rs"]
mod common;
mod key_rotation;
mod legacy_import;
mod throttle;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::test::TestRequest;
use common::{start, Browser, Page, Site, Transport};
use futures_util::future::join_all;
use parking_lot::Mutex;
use session_server::config::Config;
use session_server::web::AppState;

/// Every log line of this test binary, captured from before the first test that reads it.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .try_init()
            .expect("the only subscriber of this test binary");
        buf
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock()).into_owned()
}

/// A site whose throttle is under test: the bound on password checks running at once is
/// raised out of the way (it refuses parallel guesses with 503 before the throttle counts them;
/// `tests/bounded_waits.rs` tests it).
fn site(max_failed_logins: u32, cost: u32) -> Site {
    let mut site = Site::with_config(&format!(
        "[session]\nlifetime = 60\n[auth]\nbcrypt_cost = {cost}\nmax_failed_logins = {max_failed_logins}\nfailed_login_window = \"10m\"\n"
    ));
    site.state.hashing = std::sync::Arc::new(session_server::web::hashing::Hashing::new(
        1,
        64,
        std::time::Duration::from_secs(60),
    ));
    site
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], 40000))
}

/// Posts the login form from `from` (a CSRF token is fetched first if the browser has none).
async fn login_from(
    b: &mut Browser,
    app: &impl Transport,
    from: SocketAddr,
    user: &str,
    pw: &str,
) -> Page {
    let token = b.get(app, "/login").await.csrf_token();
    let form = [("user_id", user), ("password", pw), ("csrf_token", &token)];
    b.send(
        app,
        TestRequest::post()
            .uri("/login")
            .peer_addr(from)
            .set_form(form),
    )
    .await
}

/// Registers `user` (password "password123", name `name`) from `from`.
async fn register_from(
    b: &mut Browser,
    app: &impl Transport,
    from: SocketAddr,
    user: &str,
    name: &str,
) -> Page {
    let token = b.get(app, "/register").await.csrf_token();
    let form = [
        ("user_id", user),
        ("user_name", name),
        ("password", "password123"),
        ("repassword", "password123"),
        ("csrf_token", &token),
    ];
    b.send(
        app,
        TestRequest::post()
            .uri("/register")
            .peer_addr(from)
            .set_form(form),
    )
    .await
}

fn retry_after(page: &Page) -> u64 {
    page.headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds")
}
