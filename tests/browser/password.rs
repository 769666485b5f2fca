//! Changing one's own password, in both languages: the form from the header's link, this
//! browser still logged in afterwards, another browser of the same account logged out.

use crate::harness::{start, Chrome, Options};
use crate::languages::is_korean;

async fn change_password_in(lang: &'static str, user: &str) {
    let Some((server, _chrome, page)) = start(
        "",
        Options {
            lang,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    page.register(&server, user).await;
    // Another browser (a second device, or a thief with the password), with a profile of its
    // own, logged in too.
    let other_chrome = Chrome::start();
    let other = other_chrome
        .open(Options {
            lang,
            ..Options::default()
        })
        .await;
    other.goto(&server.url("/login")).await;
    other
        .fill_and_submit(&[("user_id", user), ("password", "password123")])
        .await;
    assert_eq!(other.text("#user").await, user);

    page.follow("a[href='/password']").await;
    assert_eq!(page.path().await, "/password");
    assert_eq!(page.html_lang().await, lang);
    let title = page.text("h1").await;
    assert_eq!(is_korean(&title), lang == "ko-KR", "{title}");
    page.assert_accessible(&format!("{lang} password page"))
        .await;
    page.fill_and_submit(&[
        ("current_password", "password123"),
        ("password", "a brand new secret"),
        ("repassword", "a brand new secret"),
    ])
    .await;
    assert_eq!(page.path().await, "/", "sent home");
    assert_eq!(
        page.text("#user").await,
        user,
        "this browser stays logged in"
    );
    let body = page.body().await;
    let changed = if lang == "ko-KR" {
        "비밀번호가 변경되었습니다"
    } else {
        "Your password was changed"
    };
    assert!(body.contains(changed), "{body}");
    page.screenshot(&format!("password-changed-{lang}")).await;

    other.reload().await;
    assert!(!other.has("#user").await, "the other browser is logged out");
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_in_english_logs_out_the_other_browser() {
    change_password_in("en-US", "hana").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_in_korean_logs_out_the_other_browser() {
    change_password_in("ko-KR", "jisoo").await;
}
