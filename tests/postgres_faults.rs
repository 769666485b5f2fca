//! PostgreSQL going away under a running server, in process over HTTP: the database killed
//! (SIGKILL to the postmaster) and restarted, and a server started while it is down. Requests
//! that need a session or an account get the clear 503 page (never an empty 500 or a panic),
//! anonymous pages keep working, `/healthz` says 503, and once the database is back the server
//! recovers by itself, with no restart. Unlike a Redis without persistence, the database keeps
//! what it had acknowledged: the sessions and accounts from before the crash are still there.

mod common;

use actix_web::http::StatusCode;
use common::engines::PostgresServer;
use common::faults::{
    alice_in_bob_registered, assert_recovered, assert_unavailable, wait_for_health,
};
use common::{start, Browser, Site};

/// A site whose sessions, accounts and throttle live in `pg`, with short bounds so that a dead
/// database is noticed quickly.
fn postgres_site(pg: &PostgresServer) -> Site {
    Site::with_config(&format!(
        "[session]\ntype = \"postgres\"\nlifetime = 60\n[session.postgres]\nurl = \"{}\"\n\
         connect_timeout = 0.5\ncommand_timeout = 0.5\n\
         [auth]\nbcrypt_cost = 4\nmin_password_length = 8\n",
        pg.url()
    ))
}

#[actix_web::test]
async fn a_killed_database_gets_503_pages_and_the_server_recovers_when_it_is_back() {
    let Some(mut pg) = PostgresServer::start() else {
        return;
    };
    let site = postgres_site(&pg);
    let app = start(&site).await;
    let (mut alice, mut bob) = alice_in_bob_registered(&app).await;
    assert_eq!(
        alice.get(&app, "/").await.element_text("user").as_deref(),
        Some("alice")
    );
    wait_for_health(&app, StatusCode::OK).await;

    pg.kill();

    assert_unavailable(&alice.get(&app, "/").await, "a logged-in page");
    let anon = Browser::new().get(&app, "/").await;
    assert_eq!(anon.status, StatusCode::OK, "anonymous pages keep working");
    assert!(anon.element_text("user").is_none());
    let login = bob.login(&app, "bob", "password123").await;
    assert_eq!(
        login.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the login POST"
    );
    assert!(
        login.body.contains("Accounts unavailable"),
        "the login POST: a page, not an empty error: {:?}",
        login.body
    );
    wait_for_health(&app, StatusCode::SERVICE_UNAVAILABLE).await;

    pg.restart();
    assert_recovered(&app, "carol").await;
    // What the database acknowledged before the crash is still there.
    assert_eq!(
        alice.get(&app, "/").await.element_text("user").as_deref(),
        Some("alice"),
        "her session outlived the crash"
    );
    assert_eq!(
        bob.login(&app, "bob", "password123").await.status,
        StatusCode::SEE_OTHER,
        "his account outlived the crash"
    );
}

#[actix_web::test]
async fn a_server_started_while_the_database_is_down_recovers_when_it_comes_up() {
    let Some(mut pg) = PostgresServer::start() else {
        return;
    };
    pg.kill();
    let site = postgres_site(&pg);
    let app = start(&site).await;
    assert_eq!(Browser::new().get(&app, "/").await.status, StatusCode::OK);
    wait_for_health(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    let mut dave = Browser::new();
    let page = dave.register(&app, "dave").await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        page.body
    );

    pg.restart();
    assert_recovered(&app, "erin").await;
}
