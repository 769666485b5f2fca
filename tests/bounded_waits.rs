//! No client can make the server wait without bound (review round 2, findings 6, 7 and 10): a
//! body that never arrives gets 408 and its connection closed after `[server] body_timeout`;
//! with `lock = true` the lock is taken only once the body is in, and a request waits for a
//! held lock at most `[session] lock_timeout` before a 503 with `Retry-After`; password checks
//! beyond what the machine runs at once are refused with 503, not queued without end.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::{free_port, start, Browser, Client, ServerProcess, Site, Tcp};
use session_server::web::hashing::Hashing;

/// A real server in `dir` with `server` and `session` lines added to those tables.
fn serve(dir: &Path, server: &str, session: &str) -> ServerProcess {
    let port = free_port();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n{server}\n\
             [session]\nlifetime = 600\n{session}\n\
             [auth]\nbcrypt_cost = 4\nmax_failed_logins = 1000\n"
        ),
    )
    .expect("config");
    ServerProcess::start(&config, format!("127.0.0.1:{port}").parse().expect("addr"))
}

/// Sends the headers of a form POST that announces `length` bytes and sends only `sent`.
fn stalled_post(
    addr: SocketAddr,
    path: &str,
    cookie: &str,
    length: usize,
    sent: &str,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: t\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n{sent}"
    )
    .expect("send");
    stream
}

/// Review finding 7: a connection that sent its headers and then no body was held forever.
#[test]
fn a_body_that_never_arrives_gets_408_and_the_connection_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), "body_timeout = 0.5", "");
    let mut stream = stalled_post(server.addr, "/login", "", 100, "user_id=a");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let mut answer = Vec::new();
    // read_to_end returns only once the server closes the connection.
    stream
        .read_to_end(&mut answer)
        .expect("the server closes the connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("Request timed out"), "a page: {answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A whole form within the time is served as ever.
    let (status, _) = common::raw_http(
        server.addr,
        "POST /login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nuser_id=a",
    )
    .expect("answer");
    assert_eq!(status, 400, "no CSRF token: refused, but answered");
}

/// Review finding 6: with `lock = true` the lock was taken before the body was read, so one
/// POST whose body never came froze every other request of its session.
#[test]
fn with_lock_a_stalled_body_does_not_hold_the_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), "body_timeout = 20", "lock = true");
    let via = Tcp(server.addr);
    let mut me = Client::new();
    assert_eq!(
        common::block_on(me.register(&via, "alice")).status,
        StatusCode::SEE_OTHER
    );
    let cookie = format!("session={}", me.session_cookie().expect("session"));
    let stalled = stalled_post(server.addr, "/logout", &cookie, 100, "csrf_token=");
    let started = Instant::now();
    assert_eq!(
        common::block_on(me.visit(&via)),
        Some(1),
        "the session is not held"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// Review finding 6, the wait itself: a request behind a lock held past `lock_timeout` gets a
/// 503 with `Retry-After`, then is served once the lock is free.
#[actix_web::test]
async fn a_lock_held_past_lock_timeout_gets_503_with_retry_after() {
    let site = Site::new("lock = true\nlock_timeout = 0.3\n");
    let app = start(&site).await;
    let mut me = Browser::new();
    me.register(&app, "bob").await;
    let cookie = me.session_cookie().expect("session").clone();
    // The signed cookie ends with the id (43 characters).
    let id = session_server::store::SessionId::parse(
        cookie.get(cookie.len() - 43..).expect("signed value"),
    )
    .expect("a session id");
    let lock_file = site.sessions_dir().join(".locks").join(id.stem());
    std::fs::create_dir_all(lock_file.parent().expect("folder")).expect("mkdir");
    let held = session_server::atomic::lock_exclusive(&lock_file).expect("lock");
    let started = Instant::now();
    let page = me.get(&app, "/").await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("Session busy"), "{}", page.body);
    assert!(
        page.headers.contains_key("x-request-id"),
        "the busy page names its request: {:?}",
        page.headers
    );
    assert!(
        page.headers.contains_key("content-security-policy"),
        "and carries every page's headers"
    );
    assert_eq!(
        page.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    assert_eq!(me.visit(&app).await, Some(1));
}

/// Review finding 10: nothing bounded the bcrypt checks running at once. Past the permits and
/// the queue a login gets 503 with `Retry-After` at once; the one that had its turn logs in.
#[actix_web::test]
async fn logins_past_the_hashing_queue_get_503_with_retry_after() {
    let mut site = Site::with_config(
        "[session]\ntype = \"memory\"\nlifetime = 60\n[auth]\nbcrypt_cost = 11\nmin_password_length = 8\n",
    );
    site.state.hashing = Arc::new(Hashing::new(1, 0, Duration::from_secs(5)));
    let app = start(&site).await;
    Browser::new().register(&app, "carol").await;
    let (mut a, mut b) = (Browser::new(), Browser::new());
    let ta = a.get(&app, "/login").await.csrf_token();
    let tb = b.get(&app, "/login").await.csrf_token();
    let (ra, rb) = tokio::join!(
        a.post_login(&app, "carol", "password123", &ta),
        b.post_login(&app, "carol", "password123", &tb)
    );
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::SEE_OTHER, StatusCode::SERVICE_UNAVAILABLE]
    );
    let refused = if ra.status == StatusCode::SERVICE_UNAVAILABLE {
        &ra
    } else {
        &rb
    };
    assert!(
        refused.body.contains("Too many logins at once"),
        "{}",
        refused.body
    );
    assert_eq!(
        refused
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
}
