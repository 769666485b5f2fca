//! memcached going away under a running server, in process over HTTP: killed and restarted
//! (empty, as memcached always comes back), and a server started while it is down. Requests that
//! need a session get the clear 503 page (never an empty 500 or a panic), anonymous pages keep
//! working, `/healthz` says 503, and once memcached is back the server recovers by itself. The
//! accounts live in SQLite (memcached may evict), so they survive; the sessions do not.

mod common;

use actix_web::http::StatusCode;
use common::engines::MemcachedServer;
use common::faults::{
    alice_in_bob_registered, assert_recovered, assert_unavailable, wait_for_health,
};
use common::{start, Browser, Site};

fn memcached_site(mc: &MemcachedServer) -> Site {
    Site::with_config(&format!(
        "[session]\ntype = \"memcached\"\nlifetime = 60\n[session.memcached]\nservers = [\"{}\"]\n\
         connect_timeout = 0.5\ncommand_timeout = 0.5\n\
         [auth]\nbcrypt_cost = 4\nmin_password_length = 8\n",
        mc.server()
    ))
}

#[actix_web::test]
async fn a_killed_memcached_gets_503_pages_and_the_server_recovers_when_it_is_back() {
    let Some(mut mc) = MemcachedServer::start() else {
        return;
    };
    let site = memcached_site(&mc);
    let app = start(&site).await;
    let (mut alice, mut bob) = alice_in_bob_registered(&app).await;
    assert_eq!(
        alice.get(&app, "/").await.element_text("user").as_deref(),
        Some("alice")
    );
    wait_for_health(&app, StatusCode::OK).await;

    mc.kill();

    assert_unavailable(&alice.get(&app, "/").await, "a logged-in page");
    let anon = Browser::new().get(&app, "/").await;
    assert_eq!(anon.status, StatusCode::OK, "anonymous pages keep working");
    assert!(anon.element_text("user").is_none());
    // The account is checked (it is in SQLite), but the new session cannot be stored.
    assert_unavailable(
        &bob.login(&app, "bob", "password123").await,
        "the login POST",
    );
    wait_for_health(&app, StatusCode::SERVICE_UNAVAILABLE).await;

    mc.restart();
    assert_recovered(&app, "carol").await;
    let page = alice.get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.element_text("user").is_none(),
        "her session died with memcached"
    );
    assert_eq!(
        bob.login(&app, "bob", "password123").await.status,
        StatusCode::SEE_OTHER,
        "his account is not in memcached"
    );
}

#[actix_web::test]
async fn a_server_started_while_memcached_is_down_recovers_when_it_comes_up() {
    let Some(mut mc) = MemcachedServer::start_unix() else {
        return;
    };
    mc.kill();
    let site = memcached_site(&mc);
    let app = start(&site).await;
    assert_eq!(Browser::new().get(&app, "/").await.status, StatusCode::OK);
    wait_for_health(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    mc.restart();
    assert_recovered(&app, "erin").await;
}
