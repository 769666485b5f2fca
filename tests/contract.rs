//! The HTTP contract around sessions and their cookies: what may be cached, logout from this
//! site and from elsewhere, HEAD, the anonymous CSRF cookie (rotation, `__Host-`), and one signing
//! key per cookie.

mod common;

use actix_web::http::{header, StatusCode};
use actix_web::test::TestRequest;
use common::{start, Browser, Site};

#[actix_web::test]
async fn static_files_never_touch_the_session_and_cookies_are_never_cached() {
    // `permanent = true` (the default): every session response refreshes the cookie's Max-Age.
    let site = Site::new("permanent = true\n");
    let app = start(&site).await;
    let mut b = Browser::new();
    let login = b.register(&app, "nina").await;
    let cache_control = |page: &common::Page| {
        page.headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(login.set_cookie("session").is_some());
    assert_eq!(cache_control(&login), "no-store, private");
    let home = b.get(&app, "/").await;
    assert!(
        home.set_cookie("session").is_some(),
        "permanent cookie refreshed"
    );
    assert_eq!(cache_control(&home), "no-store, private");

    for method in [
        TestRequest::get(),
        TestRequest::default().method(actix_web::http::Method::HEAD),
    ] {
        let css = b.send(&app, method.uri("/static/style.css")).await;
        assert_eq!(css.status, StatusCode::OK);
        assert!(
            css.set_cookies().is_empty(),
            "a cacheable file sets no cookie"
        );
        assert_eq!(cache_control(&css), "public, max-age=3600");
    }
    let missing = b.get(&app, "/static/nope.css").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("Page not found"));
    assert!(!missing.body.contains("Signed in as"), "{}", missing.body);
    assert!(missing.set_cookies().is_empty());
    assert_eq!(cache_control(&missing), "no-store, private");
    assert_eq!(
        b.get(&app, "/").await.element_text("user").as_deref(),
        Some("nina"),
        "the session is still there"
    );
}

#[actix_web::test]
async fn a_get_logout_from_elsewhere_asks_first() {
    let site = Site::new("");
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "olga").await;
    let still_in = |page: &common::Page| page.element_text("user").as_deref() == Some("olga");

    // A link on another site, a site without Sec-Fetch-Site sending another Referer, and a
    // request with no evidence at all: each gets a page asking, and the user stays logged in.
    let cross_site = TestRequest::get()
        .uri("/logout")
        .insert_header(("sec-fetch-site", "cross-site"));
    let same_site = TestRequest::get()
        .uri("/logout")
        .insert_header(("sec-fetch-site", "same-site"));
    let mut no_fetch_site = b.clone();
    no_fetch_site.fetch_site = None;
    let other_referer = TestRequest::get()
        .uri("/logout")
        .insert_header((header::HOST, "app.test"))
        .insert_header((header::REFERER, "https://evil.test/page"));
    let other_origin = TestRequest::get()
        .uri("/logout")
        .insert_header((header::HOST, "app.test"))
        .insert_header((header::ORIGIN, "https://app.test.evil.test"));
    let pages = [
        b.send(&app, cross_site).await,
        b.send(&app, same_site).await,
        no_fetch_site.get(&app, "/logout").await,
        no_fetch_site.send(&app, other_referer).await,
        no_fetch_site.send(&app, other_origin).await,
    ];
    for page in &pages {
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("<h1>Log out?</h1>"), "{}", page.body);
        assert!(page
            .body
            .contains(r#"<form method="post" action="/logout">"#));
        assert!(page
            .set_cookie("session")
            .is_none_or(|c| !c.value().is_empty()));
        assert!(
            still_in(&b.get(&app, "/").await),
            "logged out by a cross-site GET"
        );
    }
    // An anonymous visitor sent from elsewhere keeps their CSRF cookie: nothing to log out of.
    let mut anon = Browser::new();
    let token = anon.get(&app, "/login").await.csrf_token();
    let res = anon
        .send(
            &app,
            TestRequest::get()
                .uri("/logout")
                .insert_header(("sec-fetch-site", "cross-site")),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(
        res.set_cookie("session_csrf").is_none(),
        "a cross-site GET keeps the token"
    );
    assert_eq!(anon.get(&app, "/login").await.csrf_token(), token);
    // Its button posts the form with the token, and that logs out.
    let confirm = b
        .post(&app, "/logout", &[("csrf_token", &pages[0].csrf_token())])
        .await;
    assert_eq!(confirm.status, StatusCode::SEE_OTHER);
    assert!(!still_in(&b.get(&app, "/").await));

    // Same-origin evidence without Sec-Fetch-Site (an older browser) logs out at once.
    for evidence in [
        (header::REFERER, "http://app.test/"),
        (header::ORIGIN, "http://app.test"),
    ] {
        let mut old = Browser::new();
        old.fetch_site = None;
        old.register(&app, &format!("old-{}", evidence.0)).await;
        let res = old
            .send(
                &app,
                TestRequest::get()
                    .uri("/logout")
                    .insert_header((header::HOST, "app.test"))
                    .insert_header(evidence.clone()),
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{evidence:?}");
        assert!(old.get(&app, "/").await.element_text("user").is_none());
    }
}

#[actix_web::test]
async fn logout_without_a_body_and_head_requests() {
    let site = Site::new("");
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "pat").await;
    let bare = b.send(&app, TestRequest::post().uri("/logout")).await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST, "{}", bare.body);
    assert!(bare
        .body
        .contains("This form has expired or did not come from this site"));
    // No form at all, as `navigator.sendBeacon` or a `fetch` with text sends it: the same.
    let beacon = b
        .send(
            &app,
            TestRequest::post()
                .uri("/logout")
                .insert_header((header::CONTENT_TYPE, "text/plain;charset=UTF-8"))
                .set_payload("bye"),
        )
        .await;
    assert_eq!(beacon.status, StatusCode::BAD_REQUEST, "{}", beacon.body);
    assert_eq!(
        b.get(&app, "/").await.element_text("visits").as_deref(),
        Some("1")
    );
    for path in ["/", "/healthz", "/api/session"] {
        let head = b
            .send(
                &app,
                TestRequest::default()
                    .method(actix_web::http::Method::HEAD)
                    .uri(path),
            )
            .await;
        assert_eq!(head.status, StatusCode::OK, "HEAD {path}");
    }
    assert_eq!(
        b.get(&app, "/").await.element_text("visits").as_deref(),
        Some("2"),
        "HEAD / is no visit"
    );
}

#[actix_web::test]
async fn the_anonymous_csrf_token_changes_at_login_and_at_logout() {
    let site = Site::new("");
    let app = start(&site).await;
    Browser::new().register(&app, "quinn").await;
    let mut b = Browser::new();
    let before = b.get(&app, "/login").await.csrf_token();
    let login = b.post_login(&app, "quinn", "password123", &before).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert!(
        !b.cookies.contains_key("session_csrf"),
        "login drops the anonymous token"
    );
    let home = b.get(&app, "/").await;
    let logout = b
        .post(&app, "/logout", &[("csrf_token", &home.csrf_token())])
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    let after = b.get(&app, "/login").await.csrf_token();
    assert_ne!(
        before, after,
        "the next visitor of this browser gets a new token"
    );
    // And again, without logging in in between: a logout alone rotates it too.
    let mut anon = Browser::new();
    let first = anon.get(&app, "/login").await.csrf_token();
    anon.get(&app, "/logout").await;
    assert_ne!(first, anon.get(&app, "/login").await.csrf_token());
}

#[actix_web::test]
async fn with_cookie_secure_the_csrf_cookie_has_the_host_prefix() {
    let site = Site::new("cookie_secure = true\n");
    let app = start(&site).await;
    Browser::new().register(&app, "rae").await;
    let mut b = Browser::new();
    let page = b.get(&app, "/login").await;
    let cookie = page
        .set_cookie("__Host-session_csrf")
        .expect("__Host- cookie");
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    assert!(page.set_cookie("session_csrf").is_none());
    let res = b
        .post_login(&app, "rae", "password123", &page.csrf_token())
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_cookie_value_never_verifies_as_another_cookie() {
    let site = Site::new("");
    let app = start(&site).await;
    let mut victim = Browser::new();
    victim.register(&app, "sam").await;
    let signed_session = victim.session_cookie().expect("logged in").clone();
    let id = &signed_session[signed_session.len() - session_server::store::id::ID_LEN..];

    // The session cookie offered as the CSRF cookie, with the session id as the token.
    let mut forger = Browser::new();
    forger
        .cookies
        .insert("session_csrf".into(), signed_session.clone());
    let res = forger.post_login(&app, "sam", "password123", id).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);

    // A CSRF cookie and a flash cookie offered as the session cookie: anonymous.
    let mut anon = Browser::new();
    anon.get(&app, "/login").await;
    let csrf_cookie = anon
        .cookies
        .get("session_csrf")
        .expect("csrf cookie")
        .clone();
    let mut flashed = Browser::new();
    flashed.register(&app, "tess").await;
    let flash_cookie = flashed
        .cookies
        .get("session_flash")
        .expect("flash cookie")
        .clone();
    for value in [csrf_cookie, flash_cookie] {
        let mut b = Browser::new();
        b.cookies.insert("session".into(), value);
        let page = b.get(&app, "/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.element_text("user").is_none());
    }
}
