//! Two server processes that share nothing but the engine (separate working folders, separate
//! config files, the same secret key), as behind a load balancer: a user registered through one
//! logs in through the other, the visit counter goes on across both, a logout through one ends
//! the session on the other, and the login throttle counts failures made through both.
//!
//! For `filesystem` the engine is a session folder and a user database both processes point at;
//! for `sqlite` one database file and the user database; for `redis` one Redis and for `postgres`
//! one database, and nothing else is shared.

mod common;

use std::path::Path;

use actix_web::http::StatusCode;
use common::engines::{PostgresServer, RedisServer};
use common::{Browser, ServerProcess, Tcp};

/// Failures free per (user id, address) before a delay: small, so that the test reaches it.
const FREE_FAILURES: u32 = 2;

/// Starts one instance in `root/<name>` with the session `tables` and `auth` lines (TOML) in its
/// config, and the secret key of `root/secret.key`.
fn instance(root: &Path, name: &str, tables: &str, auth: &str) -> ServerProcess {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("instance folder");
    let port = common::free_port();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n\
             {tables}\n\
             [auth]\nbcrypt_cost = 4\nmax_failed_logins = {FREE_FAILURES}\nfailed_login_window = 60\n{auth}"
        ),
    )
    .expect("write config");
    // The cookie-signing key must be the same on every instance (README, "Scaling out").
    let key = root.join("secret.key");
    if !key.exists() {
        session_server::secret::load_or_create(&key, None).expect("secret key");
    }
    std::fs::copy(&key, dir.join("secret.key")).expect("share the secret key");
    ServerProcess::start(&config, format!("127.0.0.1:{port}").parse().expect("addr"))
}

async fn shared_through_both(a: &ServerProcess, b: &ServerProcess) {
    let (via_a, via_b) = (Tcp(a.addr), Tcp(b.addr));

    let mut registrar = Browser::new();
    let res = registrar.register(&via_a, "alice").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "registered through A");

    let mut browser = Browser::new();
    let res = browser.login(&via_b, "alice", "password123").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "logged in through B");
    assert_eq!(browser.visit(&via_b).await, Some(1));
    assert_eq!(browser.visit(&via_a).await, Some(2), "A sees B's session");
    assert_eq!(browser.visit(&via_b).await, Some(3), "B sees A's write");
    assert_eq!(browser.visit(&via_a).await, Some(4));

    let before_logout = browser.clone();
    let res = browser.get(&via_b, "/logout").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "logged out through B");
    let mut replay = before_logout;
    let page = replay.get(&via_a, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.element_text("user").is_none(),
        "A serves the ended session as anonymous"
    );

    // Failures through either instance count together: the free ones spent through A and B,
    // the next attempt waits, whichever instance it reaches.
    let mut guesser = Browser::new();
    for (i, via) in [&via_a, &via_b].into_iter().enumerate() {
        let res = guesser.login(via, "alice", &format!("wrong-{i}")).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "free failure {i}");
    }
    for via in [&via_a, &via_b] {
        let res = guesser.login(via, "alice", "wrong-again").await;
        assert_eq!(
            res.status,
            StatusCode::TOO_MANY_REQUESTS,
            "the shared count delays the next guess: {}",
            res.body
        );
    }
}

#[actix_web::test]
async fn two_filesystem_servers_share_sessions_users_and_the_throttle() {
    let root = tempfile::tempdir().expect("tempdir");
    let shared = root.path().join("shared");
    let tables = format!(
        "[session]\ntype = \"filesystem\"\nlifetime = 600\n[session.filesystem]\ndir = \"{}\"\n",
        shared.join("sessions").display()
    );
    let users = format!("users_db = \"{}\"\n", shared.join("users.db").display());
    let (a, b) = (
        instance(root.path(), "a", &tables, &users),
        instance(root.path(), "b", &tables, &users),
    );
    shared_through_both(&a, &b).await;
}

#[actix_web::test]
async fn two_sqlite_servers_share_sessions_users_and_the_throttle() {
    let root = tempfile::tempdir().expect("tempdir");
    let shared = root.path().join("shared");
    let tables = format!(
        "[session]\ntype = \"sqlite\"\nlifetime = 600\n[session.sqlite]\npath = \"{}\"\n",
        shared.join("sessions.db").display()
    );
    let users = format!("users_db = \"{}\"\n", shared.join("users.db").display());
    let (a, b) = (
        instance(root.path(), "a", &tables, &users),
        instance(root.path(), "b", &tables, &users),
    );
    shared_through_both(&a, &b).await;
}

#[actix_web::test]
async fn two_postgres_servers_share_sessions_users_and_the_throttle() {
    let Some(pg) = PostgresServer::start_for("scale_out::two_postgres_servers") else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let tables = format!(
        "[session]\ntype = \"postgres\"\nlifetime = 600\nlock = true\n[session.postgres]\nurl = \"{}\"\n",
        pg.url()
    );
    let (a, b) = (
        instance(root.path(), "a", &tables, ""),
        instance(root.path(), "b", &tables, ""),
    );
    shared_through_both(&a, &b).await;
}

#[actix_web::test]
async fn two_redis_servers_share_sessions_users_and_the_throttle() {
    let Some(redis) = RedisServer::start_for("scale_out::two_redis_servers") else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let tables = format!(
        "[session]\ntype = \"redis\"\nlifetime = 600\n[session.redis]\nurl = \"{}\"\n",
        redis.url()
    );
    let (a, b) = (
        instance(root.path(), "a", &tables, ""),
        instance(root.path(), "b", &tables, ""),
    );
    shared_through_both(&a, &b).await;
}
