//! Forms from elsewhere.

use std::io::{Read, Write};

use crate::harness::{start, Options};

/// A page on another origin (another port of the loopback address), whose form posts to the
/// server's logout without the token: what a hostile site would do.
fn hostile_site(target: String) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    other_site(format!(
        "<!doctype html><html lang=en><title>Win a prize</title><form method=post action=\"{target}\">\
         <input type=hidden name=csrf_token value=guessed><button id=go type=submit>Claim</button></form>"
    ))
}

/// `page`, served on another origin (a thread on its own loopback port) for a few requests.
pub fn other_site(page: String) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        // A test views the page once or twice; the browser may ask for a favicon too. The
        // thread ends with the test binary.
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (addr, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_origin_is_refused() {
    let Some((server, _chrome, page)) = start("", Options::default()).await else {
        return;
    };
    page.register(&server, "grace").await;

    let (hostile, _thread) = hostile_site(server.url("/logout"));
    page.goto(&format!("http://{hostile}/")).await;
    page.follow("#go").await;
    let body = page.body().await;
    assert!(body.contains("Form refused"), "{body}");
    assert!(
        body.contains("Signed in as grace"),
        "the refusal still shows who is logged in: {body}"
    );
    page.screenshot("cross-origin-refused").await;

    page.goto(&server.url("/")).await;
    assert_eq!(
        page.text("#user").await,
        "grace",
        "the other site logged the user out"
    );
}
