//! The engine-fault suite: what every engine's fault tests check (`tests/*_faults.rs`), written
//! once over [`EngineHarness`] and instantiated per engine with [`engine_fault_suite!`]: the clear
//! 503 page, anonymous pages working on, health turning and coming back, a full recovery (an
//! account, a login, a logged-in page) without restarting the server, and what the engine kept.
//! The helpers below serve the engine-specific scenarios that stay in their files too.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;

use super::engines::{current_test, EngineHarness, Via};
use super::{start, Browser, Page, Site, Transport};

/// The scenarios every engine shares, as tests of module `shared` in the file that names the
/// engine's harness (a type of `common::engines`): `engine_fault_suite!(RedisServer);` gives
/// `shared::<scenario>` for each function listed here, calling
/// `common::faults::<scenario>::<RedisServer>()`. Scenarios of this module that an engine runs
/// besides (another transport) follow its name: `engine_fault_suite!(MemcachedServer; other)`.
#[macro_export]
macro_rules! engine_fault_suite {
    ($engine:ident $(; $($also:ident),+)?) => {
        /// The engine-fault scenarios every engine shares (`common::faults`).
        mod shared {
            $crate::engine_fault_suite!(@tests $crate::common::engines::$engine;
                a_server_started_while_the_engine_is_down_recovers_when_it_comes_up,
                an_engine_killed_under_load_gets_503_pages_and_the_server_recovers_when_it_is_back,
                an_engine_paused_past_the_command_timeout_answers_a_login_within_about_one_timeout,
                a_pending_legacy_import_does_not_stop_a_start_while_the_engine_is_down
                $($(, $also)+)?);
        }
    };
    (@tests $engine:ty; $($scenario:ident),*) => {
        $(
            #[actix_web::test]
            async fn $scenario() {
                $crate::common::faults::$scenario::<$engine>().await
            }
        )*
    };
}

/// The bound on every engine call in the fault tests (`connect_timeout`, `command_timeout`):
/// short, so that a dead engine is noticed quickly.
pub const ENGINE_TIMEOUT: Duration = Duration::from_millis(500);

/// A site whose sessions live in the engine of type `kind`, its `[session.<kind>]` table being
/// `table` (and `extra`), with [`ENGINE_TIMEOUT`].
pub fn engine_site(kind: &str, table: &str) -> Site {
    let secs = ENGINE_TIMEOUT.as_secs_f64();
    Site::with_config(&format!(
        "[session]\ntype = \"{kind}\"\nlifetime = 60\n[session.{kind}]\n{table}\
         connect_timeout = {secs}\ncommand_timeout = {secs}\n\
         [auth]\nbcrypt_cost = 4\nmin_password_length = 8\n"
    ))
}

/// The site of [`engine_site`] on `engine`, with `extra` lines in its table.
fn site_on<E: EngineHarness>(engine: &E, extra: &str) -> Site {
    engine_site(E::TYPE, &format!("{}{extra}", engine.session_table()))
}

/// Polls `/healthz` until it answers `want`, for at most 10 s.
pub async fn wait_for_health(app: &impl Transport, want: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = Browser::new().get(app, "/healthz").await.status;
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz still {status}, not {want}, after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The clear 503 page: a page that says so, not an empty 500.
pub fn assert_unavailable(page: &Page, what: &str) {
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert!(
        page.body.contains("Sessions unavailable"),
        "{what}: a page, not an empty error: {:?}",
        page.body
    );
}

/// A login while the engine is out: its own 503 page where the accounts and the login's
/// throttle counters are in the engine too; else the account is checked (in SQLite) and the new
/// session cannot be stored, the sessions' 503 page.
fn assert_login_unavailable<E: EngineHarness>(page: &Page) {
    if E::HOLDS_ACCOUNTS {
        assert_eq!(
            page.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "the login POST"
        );
        assert!(
            page.body.contains("Accounts unavailable"),
            "the login POST: a page, not an empty error: {:?}",
            page.body
        );
    } else {
        assert_unavailable(page, "the login POST");
    }
}

/// After the engine is back: health, a new account, a login and a logged-in page.
pub async fn assert_recovered(app: &impl Transport, user: &str) {
    wait_for_health(app, StatusCode::OK).await;
    let mut b = Browser::new();
    assert_eq!(b.register(app, user).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        b.get(app, "/").await.element_text("user").as_deref(),
        Some(user)
    );
    b.get(app, "/logout").await;
    assert_eq!(
        b.login(app, user, "password123").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.get(app, "/").await.element_text("user").as_deref(),
        Some(user)
    );
}

/// Two accounts: alice logged in, bob registered and logged out.
pub async fn alice_in_bob_registered(app: &impl Transport) -> (Browser, Browser) {
    let mut alice = Browser::new();
    alice.register(app, "alice").await;
    let mut bob = Browser::new();
    bob.register(app, "bob").await;
    bob.get(app, "/logout").await;
    (alice, bob)
}

/// A server started while its engine is down starts, serves anonymous pages, answers 503 for
/// sessions (a registration gets the clear 503 page, or registers without a session where the
/// accounts are elsewhere; never a 500), and recovers once the engine comes up.
pub async fn a_server_started_while_the_engine_is_down_recovers_when_it_comes_up<
    E: EngineHarness,
>() {
    started_while_down::<E>(Via::Tcp).await;
}

/// The same over the engine's unix socket, which refuses rather than a port (for memcached,
/// whose `servers` entry for a socket is a form of its own).
pub async fn a_server_started_while_the_engine_is_down_over_its_unix_socket_recovers<
    E: EngineHarness,
>() {
    started_while_down::<E>(Via::Unix).await;
}

async fn started_while_down<E: EngineHarness>(via: Via) {
    let Some(mut engine) = E::start_via(&current_test(), via) else {
        return;
    };
    engine.kill();
    let site = site_on(&engine, "");
    let app = start(&site).await;
    assert_eq!(Browser::new().get(&app, "/").await.status, StatusCode::OK);
    wait_for_health(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    let page = Browser::new().register(&app, "dave").await;
    if E::HOLDS_ACCOUNTS {
        assert_eq!(
            page.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{:?}",
            page.body
        );
    } else {
        assert!(
            page.status == StatusCode::SERVICE_UNAVAILABLE || page.status == StatusCode::SEE_OTHER,
            "a clear 503, or registered without a session: {}",
            page.status
        );
    }
    assert_ne!(page.status, StatusCode::INTERNAL_SERVER_ERROR);

    engine.restart();
    assert_recovered(&app, "erin").await;
}

/// Logged-in browsers loading pages when the engine is killed: the pages before are alice's, and
/// every one answered after is hers or the clear 503 page (never an empty 500, never anonymous,
/// however far the request had gone); then logged-in pages and
/// the login get 503 pages, anonymous pages keep working, `/healthz` says 503. Once the engine
/// is back the server recovers by itself, with what the engine kept: PostgreSQL keeps alice's
/// session and bob's account; a Redis without persistence keeps neither (bob registers again);
/// memcached loses the session while the account, in SQLite, stays.
pub async fn an_engine_killed_under_load_gets_503_pages_and_the_server_recovers_when_it_is_back<
    E: EngineHarness,
>() {
    /// Browsers with alice's session loading `/` at once, and their rounds.
    const LOAD: usize = 8;
    const ROUNDS: usize = 3;
    let Some(mut engine) = E::start_via(&current_test(), Via::Tcp) else {
        return;
    };
    let site = site_on(&engine, "");
    let app = start(&site).await;
    let (mut alice, mut bob) = alice_in_bob_registered(&app).await;
    assert_eq!(
        alice.get(&app, "/").await.element_text("user").as_deref(),
        Some("alice")
    );
    wait_for_health(&app, StatusCode::OK).await;

    // Round one is served whole; the engine is killed once it has been, while the next round's
    // requests are on their way to it.
    let mut load: Vec<Browser> = vec![alice.clone(); LOAD];
    let served = std::cell::Cell::new(0);
    let (pages, ()) = futures_util::future::join(
        async {
            let mut pages = Vec::new();
            for _ in 0..ROUNDS {
                let round = load.iter_mut().map(|b| async {
                    let page = b.get(&app, "/").await;
                    served.set(served.get() + 1);
                    page
                });
                pages.extend(futures_util::future::join_all(round).await);
            }
            pages
        },
        async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while served.get() < LOAD {
                assert!(Instant::now() < deadline, "the first round was not served");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            engine.kill();
        },
    )
    .await;
    for (i, page) in pages.iter().enumerate() {
        if i < LOAD || page.status == StatusCode::OK {
            assert_eq!(page.status, StatusCode::OK, "page {i} under load");
            assert_eq!(
                page.element_text("user").as_deref(),
                Some("alice"),
                "page {i} under load: served, so with her session"
            );
        } else {
            assert_unavailable(page, &format!("page {i} under load"));
        }
    }

    assert_unavailable(&alice.get(&app, "/").await, "a logged-in page");
    let anon = Browser::new().get(&app, "/").await;
    assert_eq!(anon.status, StatusCode::OK, "anonymous pages keep working");
    assert!(anon.element_text("user").is_none());
    assert_login_unavailable::<E>(&bob.login(&app, "bob", "password123").await);
    wait_for_health(&app, StatusCode::SERVICE_UNAVAILABLE).await;

    engine.restart();
    assert_recovered(&app, "carol").await;
    let page = alice.get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    if E::KEEPS_DATA {
        assert_eq!(
            page.element_text("user").as_deref(),
            Some("alice"),
            "her session outlived the crash"
        );
    } else {
        assert!(
            page.element_text("user").is_none(),
            "her session died with the engine"
        );
    }
    let login = bob.login(&app, "bob", "password123").await;
    if E::HOLDS_ACCOUNTS && !E::KEEPS_DATA {
        // His account died with the engine: he can register again.
        assert_eq!(login.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            bob.register(&app, "bob").await.status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            bob.get(&app, "/").await.element_text("user").as_deref(),
            Some("bob")
        );
    } else {
        assert_eq!(
            login.status,
            StatusCode::SEE_OTHER,
            "his account outlived the crash"
        );
    }
}

/// An engine that stalls (SIGSTOP; in life a slow fsync, a fork for a snapshot, a network
/// blip) past `command_timeout`, with a pool of 8 connections: a login gets its 503 page in
/// about one `command_timeout`, not one per pooled connection tried in turn (review round 2,
/// finding 5: 4.5 s before the fix at 0.5 s), and the server recovers once the engine resumes.
pub async fn an_engine_paused_past_the_command_timeout_answers_a_login_within_about_one_timeout<
    E: EngineHarness,
>() {
    let Some(mut engine) = E::start_via(&current_test(), Via::Tcp) else {
        return;
    };
    let site = site_on(&engine, "pool_size = 8\n");
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "alice").await;
    b.get(&app, "/logout").await;
    let token = b.get(&app, "/login").await.csrf_token();
    engine.pause();
    let started = Instant::now();
    let page = b.post_login(&app, "alice", "password123", &token).await;
    let took = started.elapsed();
    engine.resume();
    assert_login_unavailable::<E>(&page);
    assert!(
        took < ENGINE_TIMEOUT * 3,
        "the 503 took {took:?}, command_timeout being {ENGINE_TIMEOUT:?}"
    );
    assert_recovered(&app, "bob").await;
}

/// A server whose engine is down must start (issue 8, review finding 2), even with a legacy
/// `users_file` pending its one-time import: where the accounts follow the session type into
/// the engine, that import needs the engine, and a start that waited for it would fail on every
/// machine still holding its copy of the file.
pub async fn a_pending_legacy_import_does_not_stop_a_start_while_the_engine_is_down<
    E: EngineHarness,
>() {
    let Some(mut engine) = E::start_via(&current_test(), Via::Tcp) else {
        return;
    };
    engine.kill();
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("password123", 4).expect("hash");
    let legacy = serde_json::json!({
        "version": 1,
        "users": {"alice": {
            "name": "Alice",
            "password_hash": hash,
            "created_at": "2026-01-01T00:00:00Z",
        }},
    });
    std::fs::write(dir.path().join("users.json"), legacy.to_string()).expect("legacy file");
    let path = dir.path().join("config.toml");
    let secs = ENGINE_TIMEOUT.as_secs_f64();
    std::fs::write(
        &path,
        format!(
            "[session]\ntype = \"{kind}\"\n[session.{kind}]\n{table}\
             connect_timeout = {secs}\ncommand_timeout = {secs}\n[auth]\nbcrypt_cost = 4\n",
            kind = E::TYPE,
            table = engine.session_table(),
        ),
    )
    .expect("config");
    let config = session_server::config::Config::load(&path).expect("valid config");
    let key = session_server::secret::load_or_create(&config.session.secret_key_file, None)
        .expect("secret key");
    let started = session_server::web::AppState::new(config, key);
    assert!(
        started.is_ok(),
        "the server does not start: {:?}",
        started.err()
    );
}
