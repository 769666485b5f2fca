//! Korean and English.

use crate::harness::{start, Options};

/// Whether `text` has Hangul syllables in it.
pub fn is_korean(text: &str) -> bool {
    text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_korean_browser_gets_korean_everywhere_and_the_switch_changes_it() {
    let Some((server, _chrome, page)) = start(
        "",
        Options {
            lang: "ko-KR",
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    for path in ["/", "/login", "/register", "/no-such-page"] {
        page.goto(&server.url(path)).await;
        assert_eq!(page.html_lang().await, "ko-KR", "{path}");
        let body = page.body().await;
        assert!(is_korean(&body), "{path} is not in Korean: {body}");
    }
    assert_eq!(page.text("h1").await, "페이지를 찾을 수 없습니다");

    page.goto(&server.url("/register")).await;
    assert_eq!(page.text("label[for=password]").await, "비밀번호");
    page.fill_and_submit(&[
        ("user_id", "minji"),
        ("user_name", "김민지"),
        ("password", "password123"),
        ("repassword", "password123"),
    ])
    .await;
    let body = page.body().await;
    assert!(body.contains("김민지님, 환영합니다."), "{body}");
    assert!(body.contains("세션 ID를 새로 바꿨습니다"), "{body}");
    assert_eq!(page.text("#panel-title").await, "나의 세션");
    assert_eq!(page.text("#logout").await, "로그아웃");
    page.screenshot("ko-logged-in").await;

    // The switch link: English from here on, over the browser's own preference.
    assert_eq!(page.text("#lang-switch").await, "English");
    page.follow("#lang-switch").await;
    assert_eq!(page.path().await, "/", "back where the link was");
    assert_eq!(page.html_lang().await, "en-US");
    assert_eq!(page.text("#panel-title").await, "Your session");
    assert_eq!(
        page.text("#user").await,
        "minji",
        "the session is untouched"
    );
    page.goto(&server.url("/login")).await;
    assert_eq!(page.html_lang().await, "en-US", "remembered on other pages");
    page.screenshot("ko-switched-to-en").await;
    let cookies = page.client.get_all_cookies().await.expect("cookies");
    let lang = cookies
        .iter()
        .find(|c| c.name() == "lang")
        .expect("the language cookie");
    assert_eq!(lang.value(), "en");

    // Logging out ends the session, not the choice.
    page.goto(&server.url("/")).await;
    page.follow("#logout").await;
    assert_eq!(page.html_lang().await, "en-US");
    assert!(page.body().await.contains("You have been logged out."));
    page.follow("#lang-switch").await;
    assert_eq!(page.html_lang().await, "ko-KR");
    assert_eq!(page.text("h1").await, "로그인");
}
