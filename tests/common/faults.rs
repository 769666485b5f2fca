//! What every engine's fault tests check (`tests/*_faults.rs`): the clear 503 page, health
//! turning and coming back, and a full recovery (an account, a login, a logged-in page) without
//! restarting the server.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;

use super::{Browser, Page, Transport};

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
        tokio::time::sleep(Duration::from_millis(100)).await;
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
