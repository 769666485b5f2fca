//! Faults in the store and hostile clients, in process: corrupt files, an unwritable session
//! folder, oversized sessions, parallel requests of one session.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use actix_session::storage::{SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::http::{header, StatusCode};
use common::{start, Browser, Site};
use futures_util::future::join_all;
use session_server::engines::filesystem::{FileSessionStore, FileStoreOptions};
use session_server::engines::memory::MemorySessionStore;

/// Every log line of this test binary, for tests that check what was logged.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().expect("logs")).into_owned()
}

#[actix_web::test]
async fn corrupt_files_are_served_anonymous_logged_and_moved_aside() {
    let _ = logs();
    // Every request reads the file (the read cache would serve the session it remembers for up
    // to a second: `changes_made_by_hand_are_seen_within_a_second`).
    let site = Site::with_config(
        "[session]\nlifetime = 60\n[session.filesystem]\nread_cache = false\n[auth]\nbcrypt_cost = 4\n",
    );
    let app = start(&site).await;
    let variants: [(&str, &[u8]); 6] = [
        ("truncated", b"{\n  \"version\": 1,\n  \"created_at\": \"2026-"),
        ("empty", b""),
        ("unknown version", br#"{"version":9,"created_at":"2026-01-01T00:00:00Z","expires_at":"2999-01-01T00:00:00Z","ttl_seconds":1,"data":{}}"#),
        ("foreign JSON", br#"{"user_id":"admin"}"#),
        ("binary junk", b"\x00\xff\x80garbage\x00"),
        ("wrong types", br#"{"version":1,"created_at":5,"expires_at":"x","ttl_seconds":-1,"data":[]}"#),
    ];
    for (i, (what, bytes)) in variants.iter().enumerate() {
        let mut b = Browser::new();
        b.register(&app, &format!("user{i}")).await;
        let file = site.session_files().pop().expect("session file");
        std::fs::write(&file, bytes).expect("corrupt it");
        let page = b.get(&app, "/").await;
        assert_eq!(page.status, StatusCode::OK, "{what}");
        assert!(
            page.element_text("user").is_none(),
            "{what}: served as anonymous"
        );
        assert!(!file.exists(), "{what}: moved out of the way");
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        let aside = std::fs::read_dir(site.sessions_dir().join(".corrupt"))
            .expect("quarantine")
            .count();
        assert_eq!(aside, i + 1, "{what}: kept for inspection");
        assert!(log_text().contains(&name), "{what}: the log names the file");
        // Logging in again works and writes a fresh, valid file.
        assert_eq!(
            b.login(&app, &format!("user{i}"), "password123")
                .await
                .status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            b.get(&app, "/").await.element_text("user"),
            Some(format!("user{i}"))
        );
        std::fs::remove_file(site.session_files().pop().expect("new file")).expect("clean");
    }
    assert!(log_text().contains("unreadable session file moved aside"));
}

#[actix_web::test]
async fn an_unwritable_store_gets_503_pages_and_recovers_by_itself() {
    let site = Site::new("");
    let app = start(&site).await;
    let mut alice = Browser::new();
    alice.register(&app, "alice").await;
    let mut bob = Browser::new();
    bob.register(&app, "bob").await;
    bob.get(&app, "/logout").await;

    // The session folder is replaced by a plain file: nothing can be read or written there.
    let dir = site.sessions_dir();
    let aside = dir.with_extension("moved");
    std::fs::rename(&dir, &aside).expect("move folder");
    std::fs::write(&dir, b"not a folder").expect("plain file");

    let health = bob.get(&app, "/healthz").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    let anon = Browser::new().get(&app, "/").await;
    assert_eq!(anon.status, StatusCode::OK, "anonymous pages keep working");
    assert_eq!(
        Browser::new().get(&app, "/login").await.status,
        StatusCode::OK
    );
    let login = bob.login(&app, "bob", "password123").await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        login.body.contains("Sessions unavailable"),
        "a page, not an empty 500: {}",
        login.body
    );
    assert!(login.headers.contains_key("content-security-policy"));
    assert!(
        login.headers.contains_key("x-request-id"),
        "an outage's page names its request, as the log line does"
    );
    assert_eq!(
        login
            .headers
            .get(header::CACHE_CONTROL)
            .map(|v| v.as_bytes()),
        Some(&b"no-store, private"[..])
    );
    let logged_in = alice.get(&app, "/").await;
    assert_eq!(logged_in.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(logged_in.body.contains("Sessions unavailable"));

    // Back as it was: no restart needed.
    std::fs::remove_file(&dir).expect("remove file");
    std::fs::rename(&aside, &dir).expect("restore folder");
    assert_eq!(bob.get(&app, "/healthz").await.status, StatusCode::OK);
    assert_eq!(
        alice.get(&app, "/").await.element_text("user").as_deref(),
        Some("alice")
    );
    assert_eq!(
        bob.login(&app, "bob", "password123").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        bob.get(&app, "/").await.element_text("user").as_deref(),
        Some("bob")
    );

    // A folder that vanished altogether is made again.
    std::fs::remove_dir_all(&dir).expect("remove folder");
    let mut carol = Browser::new();
    assert_eq!(
        carol.register(&app, "carol").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        carol.get(&app, "/").await.element_text("user").as_deref(),
        Some("carol")
    );
}

async fn oversized_writes_are_refused_and_the_old_state_kept(store: impl SessionStore) {
    let ttl = time::Duration::seconds(60);
    let small: std::collections::HashMap<String, String> =
        [("k".to_owned(), "\"small\"".to_owned())].into();
    let big: std::collections::HashMap<String, String> =
        [("k".to_owned(), format!("\"{}\"", "x".repeat(2000)))].into();
    assert!(matches!(
        store.save(big.clone(), &ttl).await,
        Err(SaveError::Serialization(_))
    ));
    let key = store.save(small.clone(), &ttl).await.expect("small fits");
    let copy = SessionKey::try_from(key.as_ref().to_owned()).expect("key");
    assert!(matches!(
        store.update(copy, big, &ttl).await,
        Err(UpdateError::Serialization(_))
    ));
    let mut loaded = store.load(&key).await.expect("load").expect("present");
    loaded.retain(|k, _| !k.starts_with('$'));
    assert_eq!(Some(loaded), Some(small), "previous state intact");
}

#[actix_web::test]
async fn both_stores_refuse_oversized_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = FileSessionStore::open(FileStoreOptions::new(dir.path()).max_session_bytes(1024))
        .expect("open");
    oversized_writes_are_refused_and_the_old_state_kept(file).await;
    oversized_writes_are_refused_and_the_old_state_kept(MemorySessionStore::with_limit(1024)).await;
}

#[actix_web::test]
async fn a_session_over_the_limit_gets_a_clear_page() {
    let site = Site::new("max_session_bytes = 256\n");
    let app = start(&site).await;
    let mut b = Browser::new();
    let res = b
        .register(
            &app,
            "a-rather-long-user-id-to-fill-the-session-past-its-limit",
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.body.contains("Session too large"));
    assert!(site.session_files().is_empty());
}

async fn parallel_visits(lock: bool) -> (u64, u64) {
    // The 50 visits queue on one lock; what is tested is that none is lost, not the wait bound.
    let site = Site::new(&format!("lock = {lock}\nlock_timeout = 60\n"));
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "paula").await;
    let before: u64 = b
        .get(&app, "/")
        .await
        .element_text("visits")
        .and_then(|v| v.parse().ok())
        .expect("visits");
    let pages = join_all((0..50).map(|_| {
        let mut client = b.clone();
        let app = &app;
        async move { client.get(app, "/").await }
    }))
    .await;
    for p in &pages {
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    }
    for f in site.session_files() {
        let bytes = std::fs::read(&f).expect("read");
        session_server::store::SessionRecord::from_bytes(&bytes).expect("never torn");
    }
    let after: u64 = b
        .get(&app, "/")
        .await
        .element_text("visits")
        .and_then(|v| v.parse().ok())
        .expect("visits");
    (before, after)
}

#[actix_web::test]
async fn fifty_parallel_requests_of_one_session_never_tear_or_fail() {
    let (before, after) = parallel_visits(false).await;
    assert!(
        after > before && after <= before + 51,
        "{before} -> {after}"
    );
}

#[actix_web::test]
async fn with_lock_fifty_parallel_increments_give_exactly_fifty() {
    let (before, after) = parallel_visits(true).await;
    assert_eq!(after, before + 51, "50 parallel visits and the final one");
}

#[actix_web::test]
async fn passwords_never_reach_the_logs() {
    let _ = logs();
    let site = Site::new("");
    let app = start(&site).await;
    let mut owner = Browser::new();
    owner.register(&app, "secretive").await;
    let guesses = ["guess-Kq7tP2vX", "guess-Zr4mW9bN", "guess-Hd3sL8cY"];
    let mut attacker = Browser::new();
    for guess in guesses {
        assert_eq!(
            attacker.login(&app, "secretive", guess).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        owner.login(&app, "secretive", "password123").await.status,
        StatusCode::SEE_OTHER
    );
    let text = log_text();
    // The log did record these logins: an empty or silent log proves nothing.
    assert!(
        text.contains("failed login") && text.contains("secretive"),
        "the failed logins were logged: {text}"
    );
    for password in guesses.iter().chain(&["password123"]) {
        assert!(!text.contains(password), "{password} reached the log");
    }
}

#[actix_web::test]
async fn session_ids_never_reach_the_logs() {
    let _ = logs();
    let site = Site::new("");
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "quiet").await;
    let cookie = b.session_cookie().expect("logged in").clone();
    let id = &cookie[cookie.len() - session_server::store::id::ID_LEN..];
    // Corrupt the file and log in again: both paths log about this session.
    std::fs::write(&site.session_files()[0], b"junk").expect("corrupt");
    b.get(&app, "/").await;
    b.login(&app, "quiet", "password123").await;
    let cookie2 = b.session_cookie().expect("logged in").clone();
    let id2 = &cookie2[cookie2.len() - session_server::store::id::ID_LEN..];
    let text = log_text();
    assert!(
        text.contains("unreadable session file"),
        "the events were logged"
    );
    assert!(
        !text.contains(id) && !text.contains(id2),
        "a session id was logged"
    );
}
