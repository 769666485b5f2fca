//! Login, registration and the user database over HTTP: throttling (parallel guesses, delays,
//! known devices, registrations), clean sessions at login, user ids without case, invisible
//! characters in names, log injection, the legacy import, re-hashing, several processes.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::test::TestRequest;
use common::{start, Browser, Page, Site};
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

fn site(max_failed_logins: u32, cost: u32) -> Site {
    Site::with_config(&format!(
        "[session]\nlifetime = 60\n[auth]\nbcrypt_cost = {cost}\nmax_failed_logins = {max_failed_logins}\nfailed_login_window = \"10m\"\n"
    ))
}

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], 40000))
}

/// Posts the login form from `from` (a CSRF token is fetched first if the browser has none).
async fn login_from<S, B>(b: &mut Browser, app: &S, from: SocketAddr, user: &str, pw: &str) -> Page
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody + 'static,
{
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
async fn register_from<S, B>(
    b: &mut Browser,
    app: &S,
    from: SocketAddr,
    user: &str,
    name: &str,
) -> Page
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody + 'static,
{
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

#[actix_web::test]
async fn failed_logins_are_throttled_with_retry_after() {
    let _ = logs();
    let site = site(3, 4);
    let app = start(&site).await;
    let mut owner = Browser::new();
    owner.register(&app, "victim").await;
    let mut attacker = Browser::new();
    for i in 0..3 {
        let guess = format!("guess-number-{i}");
        assert_eq!(
            attacker.login(&app, "victim", &guess).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let blocked = attacker.login(&app, "victim", "password123").await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits, from a browser that is not a known device"
    );
    let retry = retry_after(&blocked);
    assert!((1..=600).contains(&retry), "{retry}");
    assert!(blocked.body.contains("Too many failed logins"));
    assert!(blocked
        .body
        .contains(&format!("Try again in {retry} second")));
    let log = log_text();
    assert!(log.contains("failed login"), "the failures were logged");
    assert!(
        !log.contains("guess-number-") && !log.contains("password123"),
        "a password reached the log"
    );
    // Another account is not blocked by this one's failures.
    let mut other = Browser::new();
    other.register(&app, "bystander").await;
    assert_eq!(
        other.login(&app, "bystander", "password123").await.status,
        StatusCode::SEE_OTHER
    );
}

#[actix_web::test]
async fn parallel_wrong_passwords_are_checked_at_most_the_limit() {
    let site = site(5, 4);
    let app = start(&site).await;
    Browser::new().register(&app, "target").await;
    let mut attacker = Browser::new();
    let token = attacker.get(&app, "/login").await.csrf_token();
    let answers = join_all((0..16).map(|i| {
        let mut b = attacker.clone();
        let (app, token) = (&app, token.clone());
        async move {
            b.post_login(app, "target", &format!("wrong-{i}"), &token)
                .await
                .status
        }
    }))
    .await;
    let checked = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {answers:?}"
    );
    assert_eq!(checked + refused, 16, "{answers:?}");
}

#[actix_web::test]
async fn the_right_password_behind_parallel_guesses_does_not_log_in() {
    // A cost that keeps the guesses hashing while the right password arrives.
    let site = site(5, 10);
    let app = start(&site).await;
    Browser::new().register(&app, "target").await;
    let mut attacker = Browser::new();
    let token = attacker.get(&app, "/login").await.csrf_token();
    let guesses = (0..15).map(|i| {
        let mut b = attacker.clone();
        let (app, token) = (&app, token.clone());
        Box::pin(async move {
            b.post_login(app, "target", &format!("wrong-{i}"), &token)
                .await
                .status
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = StatusCode>>>
    });
    let mut b = attacker.clone();
    let right = Box::pin(async {
        // After the 15 guesses have arrived, while they are still being checked.
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.post_login(&app, "target", "password123", &token)
            .await
            .status
    });
    type Answer<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = StatusCode> + 'a>>;
    let right: Answer<'_> = right;
    let answers = join_all(guesses.chain([right])).await;
    assert_eq!(
        answers[15],
        StatusCode::TOO_MANY_REQUESTS,
        "the limit was spent by the guesses in flight: {answers:?}"
    );
    assert!(!answers.contains(&StatusCode::SEE_OTHER), "{answers:?}");
}

#[actix_web::test]
async fn guesses_from_anywhere_never_slow_the_owner_on_a_known_device() {
    let site = site(3, 4);
    let app = start(&site).await;
    let mut owner = Browser::new();
    register_from(&mut owner, &app, addr(1), "owner", "Owner").await;
    owner.get(&app, "/logout").await;
    // Guesses from the owner's own address (one NAT), then from many others until the user id
    // as a whole is slowed.
    let mut attacker = Browser::new();
    for _ in 0..10 {
        login_from(&mut attacker, &app, addr(1), "owner", "guess").await;
    }
    let mut slowed = None;
    for i in 0..30u8 {
        let page = login_from(&mut attacker, &app, addr(100 + i), "owner", "guess").await;
        if page.status == StatusCode::TOO_MANY_REQUESTS {
            slowed = Some(i);
            break;
        }
    }
    assert!(
        slowed.is_some(),
        "a browser that is not a known device is slowed for this user id, from any address"
    );
    let known = login_from(&mut owner, &app, addr(1), "owner", "password123").await;
    assert_eq!(known.status, StatusCode::SEE_OTHER, "{}", known.body);
}

#[actix_web::test]
async fn a_busy_address_does_not_lock_out_known_devices_behind_it() {
    let site = site(2, 4);
    let app = start(&site).await;
    let mut regular = Browser::new();
    register_from(&mut regular, &app, addr(7), "regular", "Regular").await;
    regular.get(&app, "/logout").await;
    let mut sprayer = Browser::new();
    for i in 0..12 {
        login_from(&mut sprayer, &app, addr(7), &format!("user{i}"), "guess").await;
    }
    let sprayed = login_from(&mut Browser::new(), &app, addr(7), "someone", "x").await;
    assert_eq!(sprayed.status, StatusCode::TOO_MANY_REQUESTS);
    let back = login_from(&mut regular, &app, addr(7), "regular", "password123").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn delays_double_and_then_let_the_attempt_through() {
    let site = site(1, 4);
    let app = start(&site).await;
    Browser::new().register(&app, "slow").await;
    let mut b = Browser::new();
    let first = login_from(&mut b, &app, addr(3), "slow", "wrong").await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    let waits = login_from(&mut b, &app, addr(3), "slow", "wrong").await;
    assert_eq!(waits.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&waits), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = login_from(&mut b, &app, addr(3), "slow", "wrong").await;
    assert_eq!(
        second.status,
        StatusCode::UNAUTHORIZED,
        "a delay, not a wall"
    );
    let waits = login_from(&mut b, &app, addr(3), "slow", "password123").await;
    assert_eq!(waits.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&waits), 2, "the delay doubled");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let ok = login_from(&mut b, &app, addr(3), "slow", "password123").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_login_starts_from_a_clean_session() {
    let site = Site::new("");
    let app = start(&site).await;
    Browser::new().register(&app, "bob").await;
    let mut b = Browser::new();
    b.register(&app, "alice").await;
    for _ in 0..5 {
        b.get(&app, "/").await;
    }
    assert_eq!(
        b.login(&app, "bob", "password123").await.status,
        StatusCode::SEE_OTHER
    );
    let page = b.get(&app, "/").await;
    assert_eq!(page.element_text("user").as_deref(), Some("bob"));
    assert_eq!(
        page.element_text("visits").as_deref(),
        Some("1"),
        "alice's visits carried over"
    );
    // A registration too.
    b.get(&app, "/").await;
    b.register(&app, "carol").await;
    let page = b.get(&app, "/").await;
    assert_eq!(page.element_text("user").as_deref(), Some("carol"));
    assert_eq!(
        page.element_text("visits").as_deref(),
        Some("1"),
        "bob's visits carried over"
    );
}

#[actix_web::test]
async fn ids_are_one_account_in_any_case_and_lookalikes_are_refused() {
    let site = Site::new("");
    let app = start(&site).await;
    assert_eq!(
        Browser::new().register(&app, "Alice").await.status,
        StatusCode::SEE_OTHER
    );
    for twin in ["alice", "ALICE", "aLIce"] {
        assert_eq!(
            Browser::new().register(&app, twin).await.status,
            StatusCode::CONFLICT,
            "{twin}"
        );
    }
    let mut b = Browser::new();
    assert_eq!(
        b.login(&app, "ALICE", "password123").await.status,
        StatusCode::SEE_OTHER
    );
    let page = b.get(&app, "/").await;
    assert_eq!(
        page.element_text("user").as_deref(),
        Some("alice"),
        "the canonical id"
    );
    for only_punctuation in [".", "..", "-", "_.-"] {
        let page = Browser::new().register(&app, only_punctuation).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{only_punctuation:?}"
        );
        assert!(page.body.contains("at least one letter or digit"));
    }
    for (i, name) in [
        "ad\u{202E}nimda",
        "Al\u{200B}ice",
        "\u{2066}Bob\u{2069}",
        "Eve\u{FEFF}",
    ]
    .into_iter()
    .enumerate()
    {
        let page = register_from(&mut Browser::new(), &app, addr(9), &format!("n{i}"), name).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(page.body.contains("invisible"), "{name:?}");
    }
    let ok = register_from(&mut Browser::new(), &app, addr(9), "zoe", "Zoë Ångström").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_newline_in_a_user_id_cannot_forge_a_log_line() {
    let _ = logs();
    let site = Site::new("");
    let app = start(&site).await;
    // Within the 64 characters the handler keeps.
    let forged = "m\n2026-01-01T00:00:00Z  INFO session_server: forged\x1b[2J";
    let page = Browser::new().login(&app, forged, "whatever1").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let log = log_text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("forged")).collect();
    assert!(!lines.is_empty(), "the attempt was logged: {log}");
    for line in lines {
        assert!(line.contains("failed login"), "a forged line: {line:?}");
        assert!(line.contains("m\\n2026"), "escaped: {line:?}");
    }
    assert!(!log.contains('\x1b'), "an escape sequence reached the log");
}

#[actix_web::test]
async fn registration_is_throttled_per_address() {
    let site = site(1, 4);
    let app = start(&site).await;
    for i in 0..4 {
        let page = register_from(&mut Browser::new(), &app, addr(5), &format!("r{i}"), "R").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "registration {i}");
    }
    let fifth = register_from(&mut Browser::new(), &app, addr(5), "r4", "R").await;
    assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&fifth) >= 1);
    let elsewhere = register_from(&mut Browser::new(), &app, addr(6), "r5", "R").await;
    assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn registration_waits_while_the_address_waits_for_login() {
    let site = site(1, 4);
    let app = start(&site).await;
    let mut sprayer = Browser::new();
    for i in 0..4 {
        login_from(&mut sprayer, &app, addr(8), &format!("nobody{i}"), "guess").await;
    }
    let page = register_from(&mut Browser::new(), &app, addr(8), "newcomer", "N").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

/// A site whose folder holds `files` before the app is built.
fn site_with_files(config: &str, files: &[(&str, &str)]) -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("write config");
    let config = Config::load(&path).expect("valid config");
    let key =
        session_server::secret::load_or_create(&config.session.secret_key_file, None).expect("key");
    let state = AppState::new(config, key).expect("state");
    Site { dir, state }
}

#[actix_web::test]
async fn a_legacy_users_json_is_imported_at_first_start() {
    let hash = bcrypt::hash("legacy password", 4).expect("hash");
    let legacy = format!(
        r#"{{"version": 1, "users": {{"OldTimer": {{"name": "Old Timer", "password_hash": "{hash}", "created_at": "2024-05-01T10:00:00Z"}}}}}}"#
    );
    let site = site_with_files(
        "[session]\nlifetime = 60\n[auth]\nbcrypt_cost = 4\n",
        &[("users.json", &legacy)],
    );
    let dir = site.dir.path();
    assert!(dir.join("users.db").exists());
    assert!(!dir.join("users.json").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("users.json.imported")).expect("kept"),
        legacy
    );
    let app = start(&site).await;
    let mut b = Browser::new();
    assert_eq!(
        b.login(&app, "oldtimer", "legacy password").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        Browser::new().register(&app, "OLDTIMER").await.status,
        StatusCode::CONFLICT
    );
}

#[actix_web::test]
async fn a_login_rehashes_a_password_stored_at_another_cost() {
    let site = site(5, 5);
    let app = start(&site).await;
    Browser::new().register(&app, "dana").await;
    assert_eq!(site.state.users.stored_cost("dana").expect("db"), Some(5));
    // The same folder served with a lower configured cost, as after an edit and a restart.
    let config = site.dir.path().join("config-cost4.toml");
    std::fs::write(
        &config,
        "[session]\nlifetime = 60\n[auth]\nbcrypt_cost = 4\n",
    )
    .expect("write");
    let config = Config::load(&config).expect("valid");
    let state = AppState::new(config, site.key()).expect("state");
    let app4 = actix_web::test::init_service(session_server::web::app(state)).await;
    let mut b = Browser::new();
    assert_eq!(
        b.login(&app4, "dana", "wrong password").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(site.state.users.stored_cost("dana").expect("db"), Some(5));
    assert_eq!(
        b.login(&app4, "dana", "password123").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(site.state.users.stored_cost("dana").expect("db"), Some(4));
    assert_eq!(
        Browser::new()
            .login(&app, "dana", "password123")
            .await
            .status,
        StatusCode::SEE_OTHER,
        "the new hash works everywhere"
    );
}

#[test]
fn two_processes_share_the_user_database() {
    use common::{server_config, HttpClient, ServerProcess};
    let dir = tempfile::tempdir().expect("tempdir");
    let (config_a, addr_a) = server_config(dir.path(), "", "");
    let config_b = dir.path().join("config-b.toml");
    let port_b = common::free_port();
    let text_b = std::fs::read_to_string(&config_a)
        .expect("config")
        .replace(&addr_a.port().to_string(), &port_b.to_string());
    std::fs::write(&config_b, text_b).expect("write");
    let addr_b: SocketAddr = format!("127.0.0.1:{port_b}").parse().expect("addr");
    let a = ServerProcess::start(&config_a, addr_a);
    let b = ServerProcess::start(&config_b, addr_b);
    // Registrations on both at once, then each user logs in on the other process.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (here, name) = if i % 2 == 0 {
                (a.addr, "on-a")
            } else {
                (b.addr, "on-b")
            };
            std::thread::spawn(move || HttpClient::new(here).register(&format!("{name}-{i}")))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("thread"), Some(303));
    }
    for i in 0..8 {
        let (there, name) = if i % 2 == 0 {
            (b.addr, "on-a")
        } else {
            (a.addr, "on-b")
        };
        assert_eq!(
            HttpClient::new(there).login(&format!("{name}-{i}")),
            Some(303),
            "{name}-{i}"
        );
    }
    assert!(
        !a.log().contains("ERROR") && !b.log().contains("ERROR"),
        "{}{}",
        a.log(),
        b.log()
    );
}
