//! The pages' language over HTTP: `Accept-Language`, the switch link and its cookie,
//! `[server] default_language`, and plain clients (curl) getting English. The same in a real
//! browser is in `tests/browser/languages.rs`.

mod common;

use actix_web::http::{header, StatusCode};
use actix_web::test::TestRequest;
use common::{start, Browser, Site};

/// `GET path` from `browser`, whose `Accept-Language` is `languages`.
async fn get_in(
    browser: &mut Browser,
    app: &impl common::Transport,
    path: &str,
    languages: &str,
) -> common::Page {
    let req = TestRequest::get()
        .uri(path)
        .insert_header((header::ACCEPT_LANGUAGE, languages));
    browser.send(app, req).await
}

fn html_lang(body: &str) -> &str {
    body.split("<html lang=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
}

#[actix_web::test]
async fn plain_clients_get_english_and_accept_language_picks_korean() {
    let site = Site::new("");
    let app = start(&site).await;
    let plain = Browser::new().get(&app, "/login").await;
    assert_eq!(html_lang(&plain.body), "en-US");
    assert!(plain.body.contains("<h1>Log in</h1>"));

    for header_value in [
        "ko-KR,ko;q=0.9,en-US;q=0.8",
        "ko",
        "fr;q=0.9, ko;q=0.8, en;q=0.1",
    ] {
        let page = get_in(&mut Browser::new(), &app, "/login", header_value).await;
        assert_eq!(html_lang(&page.body), "ko-KR", "{header_value}");
        assert!(page.body.contains("<h1>로그인</h1>"), "{header_value}");
        assert!(page.body.contains("비밀번호"));
    }
    let english = get_in(&mut Browser::new(), &app, "/login", "en-GB,ko;q=0.5").await;
    assert_eq!(html_lang(&english.body), "en-US");
}

#[actix_web::test]
async fn the_switch_link_sets_a_cookie_that_is_not_the_session_and_wins() {
    let site = Site::new("");
    let app = start(&site).await;
    let mut b = Browser::new();
    let page = b.get(&app, "/register").await;
    assert!(
        // (tera escapes `/` in attributes as `&#x2F;`, which the browser reads back as `/`)
        page.body
            .replace("&#x2F;", "/")
            .contains("href=\"/lang/ko?next=%2Fregister\""),
        "the switch link comes back here: {}",
        page.body
    );
    let switched = b.get(&app, "/lang/ko?next=%2Fregister").await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.location(), Some("/register"));
    let cookie = switched.set_cookie("lang").expect("the language cookie");
    assert_eq!(cookie.value(), "ko");
    assert_eq!(cookie.http_only(), Some(true));
    assert!(
        cookie.max_age().is_some(),
        "remembered across browser restarts"
    );
    assert!(
        switched.set_cookie("session").is_none(),
        "no session for a preference"
    );
    site.expect_sessions(0, "switching language stores nothing")
        .await;

    // The cookie wins over the browser's own preference.
    let page = get_in(&mut b, &app, "/register", "en-US").await;
    assert_eq!(html_lang(&page.body), "ko-KR");
    assert!(page.body.contains("회원가입"));

    // Flash messages and error pages follow it.
    b.register(&app, "alice").await;
    let home = b.get(&app, "/").await;
    assert!(
        home.body.contains("alice name님, 환영합니다."),
        "{}",
        home.body
    );
    let refused = b.post(&app, "/logout", &[("csrf_token", "forged")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("양식 거부"), "{}", refused.body);
    let missing = b.get(&app, "/nothing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("페이지를 찾을 수 없습니다"));

    // Back to English; an unknown language is a 404, and `next` never leaves the site.
    let back = b.get(&app, "/lang/en?next=%2F").await;
    assert_eq!(
        back.set_cookie("lang")
            .map(|c| c.value().to_owned())
            .as_deref(),
        Some("en")
    );
    assert_eq!(b.get(&app, "/lang/xx").await.status, StatusCode::NOT_FOUND);
    for hostile in [
        "//evil.example",
        "https://evil.example/",
        "/%5Cevil.example",
    ] {
        let query = format!("/lang/en?next={}", hostile.replace('/', "%2F"));
        let res = b.get(&app, &query).await;
        assert_eq!(res.location(), Some("/"), "{hostile}");
    }
}

#[actix_web::test]
async fn default_language_is_for_those_who_ask_for_none_of_ours() {
    let site = Site::with_config(
        "[server]\ndefault_language = \"ko\"\n[session]\ntype = \"memory\"\n[auth]\nbcrypt_cost = 4\n",
    );
    let app = start(&site).await;
    let plain = Browser::new().get(&app, "/").await;
    assert_eq!(html_lang(&plain.body), "ko-KR");
    let french = get_in(&mut Browser::new(), &app, "/", "fr-FR").await;
    assert_eq!(html_lang(&french.body), "ko-KR");
    let english = get_in(&mut Browser::new(), &app, "/", "en").await;
    assert_eq!(html_lang(&english.body), "en-US");
}

#[actix_web::test]
async fn the_panel_shows_the_session_and_the_script_stays_within_the_policy() {
    let site = Site::new("permanent = false\nlifetime = 30");
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "alice").await;
    let home = b.get(&app, "/").await;
    assert!(home
        .body
        .contains("<script src=\"/static/session.js\" defer></script>"));
    assert!(!home.body.contains("<script>"), "no inline script");
    let csp = home
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(
        home.body.contains("data-seconds-left=\"30\""),
        "{}",
        home.body
    );
    let stem = site.session_files()[0]
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .expect("one session file");
    assert!(home.body.contains(&stem), "the panel names the file {stem}");
    assert!(home.body.contains("(masked)"));
    let token = b.session_cookie().cloned().unwrap_or_default();
    assert!(!token.is_empty());
    assert!(
        !home.body.contains(&token),
        "the cookie value is never on the page"
    );

    let script = b.get(&app, "/static/session.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script
        .headers
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"text/javascript")));
    assert!(script.body.contains("countdown"));
}
