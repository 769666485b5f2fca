//! Lifetimes of 1-2 s: sessions end `lifetime` after last use, for permanent and browser-session
//! cookies, with sliding and non-sliding expiry; and the cookie's attributes in each mode. Time
//! passes by the site's clock where the store judges expiry itself (file, memory, SQLite,
//! cookie), and in real time for the engines that keep their own clock.

mod common;

use std::time::Duration;

use actix_web::cookie::SameSite;
use actix_web::http::StatusCode;
use common::{start, Browser, Site, StoreKind};

for_every_store_type!(
    browser_session_cookie_has_no_max_age_but_the_server_expires_it,
    permanent_cookie_carries_max_age_and_expires_too,
    refresh_each_request_slides_the_expiry_on_reads,
    without_refresh_each_request_only_changes_slide_it,
    writes_slide_the_expiry_whatever_the_refresh_setting,
    an_ended_session_is_announced_once_and_its_cookie_removed
);

/// `ms` milliseconds pass for `site`'s sessions: at once where the store judges expiry by the
/// site's clock, in real time for an engine that keeps its own ([`common::Site::pass`]).
async fn pause(site: &Site, ms: u64) {
    site.pass(Duration::from_millis(ms)).await;
}

async fn browser_session_cookie_has_no_max_age_but_the_server_expires_it(kind: StoreKind) {
    let Some(site) = Site::of(kind, "permanent = false\nlifetime = 1\n") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    let res = b.register(&app, "alice").await;
    let cookie = res.set_cookie("session").expect("session cookie");
    assert_eq!(cookie.max_age(), None);
    assert!(cookie.expires().is_none());
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_ne!(cookie.secure(), Some(true));
    assert_eq!(
        b.get(&app, "/").await.element_text("user").as_deref(),
        Some("alice")
    );

    pause(&site, 2100).await;
    let page = b.get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.element_text("user").is_none(),
        "expired after 1 s idle"
    );
    site.expect_sessions(0, "expired file deleted when read")
        .await;
}

async fn permanent_cookie_carries_max_age_and_expires_too(kind: StoreKind) {
    let Some(site) = Site::of(
        kind,
        "permanent = true\nlifetime = \"1s\"\ncookie_secure = true\ncookie_samesite = \"strict\"\n",
    ) else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    let res = b.register(&app, "bob").await;
    let cookie = res.set_cookie("session").expect("session cookie");
    assert_eq!(
        cookie.max_age(),
        Some(actix_web::cookie::time::Duration::seconds(1))
    );
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Strict));
    assert_eq!(cookie.http_only(), Some(true));
    pause(&site, 2100).await;
    // A client that ignores Max-Age still finds the session gone on the server.
    assert!(
        b.session_cookie().is_some(),
        "the client still sends the cookie"
    );
    assert!(b.get(&app, "/").await.element_text("user").is_none());
}

/// `GET /login` reads the session (the header shows who is logged in) without changing it. With a
/// lifetime of 2 s: whether each of five reads 0.7 s apart saw the user, then whether `GET /` still
/// does 3.5 s after the last change.
async fn logged_in_through_reads(kind: StoreKind, refresh_each_request: bool) -> Option<Vec<bool>> {
    let site = Site::of(
        kind,
        &format!("permanent = true\nlifetime = 2\nrefresh_each_request = {refresh_each_request}\n"),
    )?;
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "carol").await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        pause(&site, 700).await;
        let page = b.get(&app, "/login").await;
        seen.push(page.body.contains("Signed in as <strong>carol</strong>"));
    }
    seen.push(b.get(&app, "/").await.element_text("user").is_some());
    Some(seen)
}

async fn refresh_each_request_slides_the_expiry_on_reads(kind: StoreKind) {
    if let Some(seen) = logged_in_through_reads(kind, true).await {
        if kind.name == "cookie" {
            // A cookie session's end is in its payload, which moves when the session is
            // written; a read renews only the cookie's age (the README's cookie section).
            // Ended 2-3 s after its last write (ends are rounded up to the second).
            assert!(
                seen[..2].iter().all(|s| *s) && seen[4..].iter().all(|s| !s),
                "{seen:?}"
            );
        } else {
            assert_eq!(seen, vec![true; 6]);
        }
    }
}

async fn without_refresh_each_request_only_changes_slide_it(kind: StoreKind) {
    let Some(seen) = logged_in_through_reads(kind, false).await else {
        return;
    };
    // The first read (0.7 s in) sees the user: the session worked. It ends 2 s after the
    // registration (rounded up to a whole second) whatever the reads did: the reads from 3.5 s on
    // find it gone.
    assert!(seen[0], "{seen:?}");
    assert!(seen[4..].iter().all(|s| !s), "{seen:?}");
}

async fn writes_slide_the_expiry_whatever_the_refresh_setting(kind: StoreKind) {
    let Some(site) = Site::of(
        kind,
        "permanent = false\nlifetime = 2\nrefresh_each_request = false\n",
    ) else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "dave").await;
    for expected in 1..=4 {
        pause(&site, 800).await;
        let page = b.get(&app, "/").await;
        assert_eq!(
            page.element_text("visits"),
            Some(expected.to_string()),
            "each visit is a write"
        );
    }
}

async fn an_ended_session_is_announced_once_and_its_cookie_removed(kind: StoreKind) {
    let Some(site) = Site::of(kind, "permanent = false\nlifetime = 1\n") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "alice").await;
    pause(&site, 2100).await;
    let page = b.get(&app, "/").await;
    assert!(page.element_text("user").is_none(), "expired");
    assert!(
        page.body.contains("Your session has ended"),
        "the page says why: {}",
        page.body
    );
    let removal = page
        .set_cookie("session")
        .expect("the stale cookie is removed");
    assert_eq!(removal.value(), "");
    assert_eq!(
        removal.max_age(),
        Some(actix_web::cookie::time::Duration::ZERO)
    );
    let again = b.get(&app, "/").await;
    assert!(!again.body.contains("Your session has ended"), "said once");

    // A visitor who never had a session, and one who logged out, are told nothing.
    let fresh = Browser::new().get(&app, "/").await;
    assert!(!fresh.body.contains("Your session has ended"));
    let mut c = Browser::new();
    c.register(&app, "carol").await;
    c.get(&app, "/logout").await;
    assert!(!c
        .get(&app, "/")
        .await
        .body
        .contains("Your session has ended"));
}
