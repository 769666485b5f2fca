//! Every page, styled and accessible, in both languages, at desktop and phone width; and the
//! README's screenshots.

use std::path::Path;

use crate::forms::other_site;
use crate::harness::{browser_installed, start, Chrome, Options, Page, Server, VARIANTS};
use crate::languages::is_korean;

/// Whether the stylesheet is applied: the main column has its maximum width.
async fn styled(page: &Page) -> bool {
    page.js("return getComputedStyle(document.querySelector('main')).maxWidth")
        .await
        .as_str()
        .is_some_and(|w| w.ends_with("px") && w != "none")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_404_and_503_pages_render_styled() {
    let Some((server, _chrome, page)) = start("", Options::default()).await else {
        return;
    };
    page.goto(&server.url("/nowhere")).await;
    assert_eq!(page.text("h1").await, "Page not found");
    assert!(styled(&page).await, "the 404 page has its stylesheet");
    page.screenshot("page-404").await;

    page.register(&server, "heidi").await;
    // The session folder becomes a plain file: nothing can be read or written there.
    let dir = server.sessions_dir();
    let aside = dir.with_extension("moved");
    std::fs::rename(&dir, &aside).expect("move the folder");
    std::fs::write(&dir, b"not a folder").expect("a plain file");
    page.reload().await;
    assert_eq!(page.text("h1").await, "Sessions unavailable");
    assert_eq!(page.text(".status-code").await, "503");
    assert!(styled(&page).await, "the 503 page has its stylesheet");
    page.screenshot("page-503").await;

    std::fs::remove_file(&dir).expect("remove the file");
    std::fs::rename(&aside, &dir).expect("restore the folder");
    page.reload().await;
    assert_eq!(page.text("#user").await, "heidi", "back by itself");
}

/// Every page a visitor can reach, as `(name, how to get there)`; each is checked in both
/// languages at both widths.
async fn visit_every_page(
    page: &Page,
    server: &Server,
    lang: &str,
    width: &str,
    user: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut check = |name: String| seen.push(name);
    for (name, path) in [
        ("home-guest", "/"),
        ("login", "/login"),
        ("register", "/register"),
        ("404", "/nothing-here"),
    ] {
        page.goto(&server.url(path)).await;
        check_page(page, &format!("{lang}-{width}-{name}"), lang).await;
        check(name.to_owned());
    }
    // Refused forms: their errors are announced.
    page.goto(&server.url("/login")).await;
    page.fill_and_submit(&[("user_id", "nobody"), ("password", "wrong-password")])
        .await;
    assert!(
        page.has("[role=alert]").await,
        "the login error is announced"
    );
    check_page(page, &format!("{lang}-{width}-login-refused"), lang).await;
    check("login-refused".into());
    page.goto(&server.url("/register")).await;
    // Past the browser's own checks (pattern, minlength), to the server's answer.
    page.js("document.querySelector('form.form').noValidate = true")
        .await;
    page.fill_and_submit(&[
        ("user_id", "x y"),
        ("user_name", "X"),
        ("password", "short"),
        ("repassword", "other"),
    ])
    .await;
    check_page(page, &format!("{lang}-{width}-register-refused"), lang).await;
    check("register-refused".into());

    page.register(server, user).await;
    check_page(page, &format!("{lang}-{width}-home"), lang).await;
    check("home".into());
    page.goto(&server.url("/password")).await;
    check_page(page, &format!("{lang}-{width}-password"), lang).await;
    check("password".into());
    // A logout link on another site gets the confirmation page, whose button logs out.
    let (elsewhere, _thread) = other_site(format!(
        "<!doctype html><html lang=en><title>Links</title><a id=out href=\"{}\">out</a>",
        server.url("/logout")
    ));
    page.goto(&format!("http://{elsewhere}/")).await;
    page.follow("#out").await;
    assert_eq!(page.path().await, "/logout", "asked, not logged out");
    check_page(page, &format!("{lang}-{width}-logout-confirm"), lang).await;
    check("logout-confirm".into());
    page.follow("#logout").await;
    assert!(page.has("[role=status]").await, "the logout is announced");
    check_page(page, &format!("{lang}-{width}-logged-out"), lang).await;
    check("logged-out".into());
    seen
}

/// One page: in `lang`, styled, fitting the width, accessible; its screenshot.
async fn check_page(page: &Page, name: &str, lang: &str) {
    let html_lang = page.html_lang().await;
    assert!(
        html_lang.starts_with(lang),
        "{name}: <html lang={html_lang}>"
    );
    if lang == "ko" {
        assert!(is_korean(&page.body().await), "{name} is not in Korean");
    }
    assert!(styled(page).await, "{name} has no stylesheet");
    assert!(page.fits_width().await, "{name} scrolls sideways");
    page.assert_accessible(name).await;
    page.screenshot(name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_accessible_in_both_languages_at_both_widths() {
    if !browser_installed() {
        return;
    }
    let server = Server::start("");
    for variant in VARIANTS {
        let (lang, _, width_name, _) = variant;
        let (page, _chrome) = open_variant(variant).await;
        let user = format!("{lang}-{width_name}");
        let seen = visit_every_page(&page, &server, lang, width_name, &user).await;
        assert_eq!(seen.len(), 10, "{lang} {width_name}: {seen:?}");
        page.close().await;
    }
}

/// A browser in `variant`'s language and width (with its driver, which must outlive it).
async fn open_variant(variant: (&str, &'static str, &str, (u32, u32))) -> (Page, Chrome) {
    let (_, browser_lang, _, size) = variant;
    let chrome = Chrome::start();
    let page = chrome
        .open(Options {
            lang: browser_lang,
            size,
            ..Options::default()
        })
        .await;
    (page, chrome)
}

/// The README's screenshots: the logged-in page at phone and desktop width, in both languages.
/// Not a test (it checks nothing the tests above do not): ignored by the suite, run by
/// `scripts/screenshots` (`--ignored --exact`, with `SESSION_SERVER_DOCS=1`), which writes them
/// under `target/e2e/docs/` and into `docs/screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a generator, not a test: scripts/screenshots runs it"]
async fn screenshots_for_the_readme() {
    if !browser_installed() {
        return;
    }
    // As the shipped config.toml: a browser-session cookie, 30 s.
    let server = Server::start("permanent = false\nlifetime = 30");
    let into_docs = std::env::var_os("SESSION_SERVER_DOCS").is_some_and(|v| v == "1");
    for variant in VARIANTS {
        let (lang, _, width_name, size) = variant;
        let (page, _chrome) = open_variant(variant).await;
        let user = if lang == "ko" { "minji" } else { "alice" };
        page.register(&server, &format!("{user}-{width_name}"))
            .await;
        page.reload().await;
        page.reload().await;
        let name = format!("logged-in-{lang}-{width_name}.png");
        let shot = crate::harness::e2e_dir().join("docs").join(&name);
        page.full_screenshot(&shot, size.0).await;
        if into_docs {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&docs).expect("docs/screenshots");
            std::fs::copy(&shot, docs.join(&name)).expect("copy into docs");
        }
        page.close().await;
    }
}

/// The checker itself: a page with known faults must fail it, or a pass above means nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_core_finds_faults_on_a_faulty_page() {
    if !browser_installed() {
        return;
    }
    let (faulty, _thread) = other_site(
        "<!doctype html><html><title>x</title><img src=/x.png><input id=q>\
         <p style=\"color:#aaa;background:#fff\">low contrast</p>"
            .into(),
    );
    let chrome = Chrome::start();
    let page = chrome.open(Options::default()).await;
    page.goto(&format!("http://{faulty}/")).await;
    let Some(found) = page.axe().await else {
        return;
    };
    let rules: Vec<&str> = found.iter().map(|v| v.0.as_str()).collect();
    for rule in ["image-alt", "label", "html-has-lang", "color-contrast"] {
        assert!(rules.contains(&rule), "axe-core missed {rule}: {found:#?}");
    }
}

/// Dark mode: the colours change, and every pairing still passes axe-core's contrast check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dark_mode_is_followed_and_accessible() {
    if !browser_installed() {
        return;
    }
    let server = Server::start("permanent = false\nlifetime = 30");
    let chrome = Chrome::start();
    for lang in ["en-US", "ko-KR"] {
        let page = chrome
            .open(Options {
                lang,
                dark: true,
                ..Options::default()
            })
            .await;
        page.goto(&server.url("/login")).await;
        let dark = page
            .js("return matchMedia('(prefers-color-scheme: dark)').matches")
            .await;
        assert_eq!(dark.as_bool(), Some(true), "the browser is in dark mode");
        let background = page
            .js("return getComputedStyle(document.body).backgroundColor")
            .await;
        assert_eq!(
            background.as_str(),
            Some("rgb(16, 20, 27)"),
            "the dark background"
        );
        page.assert_accessible(&format!("{lang} dark login")).await;
        page.screenshot(&format!("dark-{lang}-login")).await;
        page.register(&server, &format!("dark-{lang}")).await;
        page.assert_accessible(&format!("{lang} dark home")).await;
        page.screenshot(&format!("dark-{lang}-home")).await;
        page.goto(&server.url("/nothing")).await;
        page.assert_accessible(&format!("{lang} dark 404")).await;
        page.close().await;
    }
}
