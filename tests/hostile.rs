//! Hostile session cookies: forged, oversized, path-like, not UTF-8, and even validly signed
//! values of the wrong shape. Each is answered as an anonymous visitor, and no file is touched.

mod common;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use common::{signed_cookie_value, start, Browser, Site, StoreKind};

for_every_store_type!(
    hostile_cookies_are_anonymous_and_touch_nothing,
    a_tampered_signature_is_anonymous
);

async fn hostile_cookies_are_anonymous_and_touch_nothing(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let outside = site.dir.path().join("outside.txt");
    std::fs::write(&outside, b"untouched").expect("sentinel");
    let etc = site.dir.path().join("etc");
    std::fs::create_dir(&etc).expect("mkdir");

    let key = site.key();
    let shapes = [
        "../../etc/passwd".to_owned(),
        "../outside.txt".to_owned(),
        "..%2F..%2Foutside.txt".to_owned(),
        "x".repeat(10 * 1024),
        "A".repeat(42) + "/",
        String::new(),
    ];
    let mut values: Vec<HeaderValue> = Vec::new();
    for shape in &shapes {
        // As sent by an attacker without the key, and as if signed with it.
        values.push(HeaderValue::from_str(&format!("session={shape}")).expect("header"));
        let signed = signed_cookie_value(&key, "session", shape);
        values.push(HeaderValue::from_str(&format!("session={signed}")).expect("header"));
    }
    values.push(HeaderValue::from_bytes(b"session=\xff\xfe\xfd").expect("obs-text header"));
    values.push(HeaderValue::from_bytes(b"session=\"unterminated").expect("header"));

    for value in values {
        for path in ["/", "/login"] {
            let req = TestRequest::get()
                .uri(path)
                .insert_header((header::COOKIE, value.clone()));
            let page = common::call(&app, req.to_request()).await;
            assert_eq!(page.status, StatusCode::OK, "{value:?} on {path}");
            assert!(page.body.contains("Log in"), "anonymous page for {value:?}");
            assert!(
                page.set_cookie("session").is_none(),
                "no session made for {value:?}"
            );
        }
    }
    assert_eq!(std::fs::read(&outside).expect("sentinel"), b"untouched");
    assert!(
        site.all_files().iter().all(|p| p == &outside),
        "{:?}",
        site.all_files()
    );
    site.expect_sessions(0, "no session stored").await;

    // Logging in with a hostile cookie yields a fresh, well-formed id.
    let mut b = Browser::new();
    b.cookies.insert(
        "session".into(),
        signed_cookie_value(&key, "session", "../../etc/passwd"),
    );
    assert_eq!(
        b.register(&app, "mallory").await.status,
        StatusCode::SEE_OTHER
    );
    site.expect_sessions(1, "one session").await;
    assert_eq!(
        b.get(&app, "/").await.element_text("user").as_deref(),
        Some("mallory")
    );
}

async fn a_tampered_signature_is_anonymous(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "trent").await;
    let good = b.session_cookie().expect("cookie").clone();
    assert_eq!(
        b.get(&app, "/").await.element_text("user").as_deref(),
        Some("trent"),
        "the untampered cookie is logged in"
    );
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    b.cookies.insert(
        "session".into(),
        String::from_utf8(tampered).expect("ascii"),
    );
    assert!(b.get(&app, "/").await.element_text("user").is_none());
    site.expect_sessions(1, "the real session is untouched")
        .await;
}
