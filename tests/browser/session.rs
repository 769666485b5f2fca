//! The session as a person meets it.

use std::time::Duration;

use crate::harness::{eventually, start, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_the_counter_rises_and_the_countdown_moves() {
    // As the shipped config.toml: a browser-session cookie, 30 s.
    let Some((server, _chrome, page)) =
        start("permanent = false\nlifetime = 30", Options::default()).await
    else {
        return;
    };
    page.register(&server, "alice").await;
    assert_eq!(page.text("#user").await, "alice");
    assert_eq!(page.text("#visits").await, "1");
    let body = page.body().await;
    assert!(body.contains("Welcome, Alice Kim."), "{body}");
    assert!(body.contains("session id was changed at login"), "{body}");
    page.reload().await;
    assert_eq!(page.text("#visits").await, "2");

    // The panel: what the browser holds and what the server keeps.
    assert_eq!(page.text("#cookie-name").await, "session");
    assert_eq!(page.text("#store-type").await, "filesystem");
    let files: Vec<String> = std::fs::read_dir(server.sessions_dir())
        .expect("sessions")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        page.text("#stored-where").await.contains(&files[0]),
        "the panel names the session's file"
    );
    let data = page.text("#stored-data").await;
    assert!(data.contains("\"user_id\": \"alice\""), "{data}");
    assert!(data.contains("\"visits\": 2"), "{data}");
    assert!(data.contains("(masked)"), "{data}");
    assert!(!data.contains("password"), "{data}");
    let cookie_kind = page.text("#cookie-kind").await;
    assert!(
        cookie_kind.contains("Ends with the browser"),
        "{cookie_kind}"
    );

    // The countdown counts, in the page, without a request.
    let first = page.text("#countdown-value").await;
    assert!(first.contains(':'), "a clock: {first:?}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            page.text("#countdown-value").await != first
        })
        .await,
        "the countdown did not move from {first}"
    );
    page.screenshot("session-logged-in").await;

    // Log out and in again through the login form: a new session, counted from 1.
    page.follow("#logout").await;
    assert!(!page.has("#user").await, "logged out");
    page.goto(&server.url("/login")).await;
    page.fill_and_submit(&[("user_id", "alice"), ("password", "password123")])
        .await;
    assert_eq!(page.text("#user").await, "alice");
    assert_eq!(page.text("#visits").await, "1", "a new session");
    assert!(page.body().await.contains("Welcome back, Alice Kim."));
}

/// Keyboard alone: the skip link comes first, and a form is filled and sent without a mouse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_from_the_keyboard_alone() {
    use fantoccini::key::Key;
    let Some((server, _chrome, page)) = start("", Options::default()).await else {
        return;
    };
    page.goto(&server.url("/")).await;
    let body = page
        .client
        .find(fantoccini::Locator::Css("body"))
        .await
        .expect("body");
    body.send_keys(&Key::Tab.to_string()).await.expect("tab");
    let focused = page.js("return document.activeElement.className").await;
    assert_eq!(
        focused.as_str(),
        Some("skip"),
        "the skip link is the first stop"
    );
    let outline = page
        .js("return getComputedStyle(document.activeElement).outlineStyle")
        .await;
    assert_eq!(outline.as_str(), Some("solid"), "focus is visible");
    page.screenshot("keyboard-skip-link").await;

    page.goto(&server.url("/register")).await;
    // The user id field has the focus on arrival; Tab moves through the form in order.
    let keys = [
        "kim".to_owned(),
        Key::Tab.to_string(),
        "Kim".to_owned(),
        Key::Tab.to_string(),
        "password123".to_owned(),
        Key::Tab.to_string(),
        "password123".to_owned(),
        Key::Enter.to_string(),
    ];
    let field = page.client.active_element().await.expect("focused field");
    assert_eq!(
        field.attr("id").await.expect("id").as_deref(),
        Some("user_id")
    );
    page.js("window.__before = true").await;
    for k in keys {
        let active = page.client.active_element().await.expect("focus");
        active.send_keys(&k).await.expect("type");
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            page.path().await == "/" && page.has("#user").await
        })
        .await,
        "registered by keyboard: {}",
        page.body().await
    );
    assert_eq!(page.text("#user").await, "kim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_scripts_cannot_read_the_session_cookie() {
    let Some((server, _chrome, page)) = start("permanent = false", Options::default()).await else {
        return;
    };
    page.register(&server, "bob").await;
    let cookies = page.js("return document.cookie").await;
    let cookies = cookies.as_str().unwrap_or_default();
    assert!(
        !cookies.split(';').any(|c| c.trim().starts_with("session=")),
        "document.cookie shows the session cookie: {cookies:?}"
    );
    // The browser does hold it: WebDriver sees every cookie.
    let all = page.client.get_all_cookies().await.expect("cookies");
    let session = all
        .iter()
        .find(|c| c.name() == "session")
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert!(session.expires().is_none(), "a browser-session cookie");
    page.screenshot("session-httponly").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_the_page_says_so() {
    let Some((server, _chrome, page)) =
        start("permanent = false\nlifetime = 2", Options::default()).await
    else {
        return;
    };
    page.register(&server, "carol").await;
    assert_eq!(page.text("#user").await, "carol");
    // The countdown reaches zero and says what a refresh will do.
    assert!(
        eventually(Duration::from_secs(6), || async {
            page.text("#countdown-ended").await.contains("Refresh")
        })
        .await,
        "the countdown did not end"
    );
    page.screenshot("session-countdown-ended").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    page.reload().await;
    assert!(
        !page.has("#user").await,
        "still logged in after the lifetime"
    );
    let body = page.body().await;
    assert!(body.contains("Your session has ended"), "{body}");
    page.screenshot("session-ended").await;
    // Said once: the stale cookie is gone.
    page.reload().await;
    assert!(!page.body().await.contains("Your session has ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_script_the_page_gives_the_end_time() {
    let Some((server, _chrome, page)) = start(
        "",
        Options {
            javascript: false,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    page.register(&server, "dave").await;
    let expires = page.text("#expires-at").await;
    assert!(expires.ends_with("UTC"), "{expires}");
    let countdown = page.text("#countdown").await;
    assert!(
        countdown.contains(&format!("The session ends at {expires}")),
        "{countdown}"
    );
    assert!(!page.text("#countdown-value").await.contains(':'));
    page.screenshot("session-without-script").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_browser_ends_a_browser_session_login() {
    let Some((server, chrome, page)) = start("permanent = false", Options::default()).await else {
        return;
    };
    page.register(&server, "erin").await;
    assert_eq!(page.text("#user").await, "erin");
    page.close().await;

    let page = chrome.open(Options::default()).await;
    page.goto(&server.url("/")).await;
    assert!(
        !page.has("#user").await,
        "a browser-session cookie survived a restart"
    );
    page.screenshot("restart-browser-session").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_login_survives_a_restart_until_its_lifetime_ends() {
    let lifetime = 8;
    let config = format!("permanent = true\nlifetime = {lifetime}");
    let Some((server, chrome, page)) = start(&config, Options::default()).await else {
        return;
    };
    page.register(&server, "frank").await;
    let cookie_kind = page.text("#cookie-kind").await;
    assert!(cookie_kind.contains("Permanent"), "{cookie_kind}");
    page.close().await;

    let page = chrome.open(Options::default()).await;
    page.goto(&server.url("/")).await;
    assert_eq!(
        page.text("#user").await,
        "frank",
        "a permanent cookie was lost with the browser"
    );
    page.screenshot("restart-permanent").await;
    tokio::time::sleep(Duration::from_secs(lifetime + 2)).await;
    page.reload().await;
    assert!(!page.has("#user").await, "logged in past the lifetime");
}
