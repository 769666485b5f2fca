//! Races on the session store that once lost or resurrected sessions, run in parallel on
//! purpose: the sweeper against fresh writes, a logout against requests already in flight, and
//! the read cache against changes made by another process or by hand.

mod common;

use std::time::Duration;

use actix_session::storage::{SessionKey, SessionStore};
use common::{start, Browser, Site};
use session_server::engines::filesystem::CACHE_BYTES;
use session_server::engines::filesystem::{FileSessionStore, FileStoreOptions};
use session_server::store::{CachingStore, SessionState, Store};

fn state(visits: u64) -> SessionState {
    [("visits".to_owned(), visits.to_string())].into()
}

fn key(s: &str) -> SessionKey {
    SessionKey::try_from(s.to_owned()).expect("key")
}

fn open(dir: &std::path::Path) -> FileSessionStore {
    FileSessionStore::open(FileStoreOptions::new(dir)).expect("open")
}

/// The file store behind the read cache, as `read_cache = true` builds it.
fn cached(dir: &std::path::Path) -> Store {
    Store::new(CachingStore::new(open(dir), CACHE_BYTES))
}

/// Item 1 of the hardening issue: the sweeper judged a file expired, a request swapped in a new
/// version, and the sweeper then deleted that acknowledged version. Now a write to an expired
/// session ends it (as a logout would), and the sweeper deletes through the session's I/O thread:
/// while a sweep runs, every write to the 1,500 expired sessions must report the session ended,
/// and none may come back.
#[actix_web::test]
async fn expired_sessions_written_during_a_sweep_stay_ended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = session_server::store::Clock::adjustable();
    let files = FileSessionStore::open(FileStoreOptions::new(dir.path()).clock(clock.clone()))
        .expect("open");
    let store = Store::new(CachingStore::new(files.clone(), CACHE_BYTES));
    let mut keys = Vec::new();
    for _ in 0..1500 {
        keys.push(
            store
                .save(state(0), &time::Duration::seconds(1))
                .await
                .expect("save"),
        );
    }
    clock
        .advance(Duration::from_millis(2100))
        .expect("adjustable");
    let sweeper = std::thread::spawn(move || files.sweep());
    let mut revived = 0;
    for k in keys.iter().rev() {
        let k2 = store
            .update(key(k.as_ref()), state(1), &time::Duration::seconds(600))
            .await
            .expect("update");
        if k2.as_ref() == k.as_ref() {
            revived += 1;
        }
        assert_eq!(
            store.load(&k2).await.expect("load"),
            None,
            "a fresh id carries nothing"
        );
    }
    let report = sweeper.join().expect("sweeper");
    assert!(report.expired > 0, "the sweep ran alongside: {report:?}");
    assert_eq!(revived, 0, "writes brought expired sessions back");
    for k in &keys {
        assert_eq!(store.load(k).await.expect("load"), None);
    }
    assert_eq!(common::session_files(dir.path()).len(), 0);
}

/// The other side of the sweeper's judgement, with two processes on one folder: sessions that
/// are live by their content but due by their file time (restored with `cp`, edited with
/// `sed -i`, `touch`ed) are judged again at every sweep of process A while process B writes and
/// logs them out. A live one is never moved (so never absent, and B's writes land), and a
/// logged-out one never comes back.
#[actix_web::test]
async fn live_sessions_due_by_their_file_time_survive_another_processs_sweeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sweeping = open(dir.path());
    let serving = open(dir.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sweeper = {
        let (store, stop) = (sweeping.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut sweeps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.sweep();
                sweeps += 1;
            }
            sweeps
        })
    };
    let hour = time::Duration::seconds(3600);
    for trial in 0..300u64 {
        let k = serving.save(state(trial), &hour).await.expect("save");
        let path = serving.path_of(k.as_ref());
        set_mtime_in_the_past(&path);
        let k2 = serving
            .update(key(k.as_ref()), state(trial + 1), &hour)
            .await
            .expect("update");
        assert_eq!(
            k2.as_ref(),
            k.as_ref(),
            "trial {trial}: a live session ended"
        );
        set_mtime_in_the_past(&path);
        assert_eq!(
            serving.load(&k).await.expect("load"),
            Some(state(trial + 1)),
            "trial {trial}: a live session looked absent"
        );
        serving.delete(&k).await.expect("logout");
        std::thread::sleep(Duration::from_micros(200));
        assert!(
            !path.exists(),
            "trial {trial}: a logged-out session came back"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(sweeper.join().expect("sweeper") > 0);
}

fn set_mtime_in_the_past(path: &std::path::Path) {
    // The file may be mid-swap: a missed touch only makes the trial easier.
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60));
    }
}

/// Item 2: with the read cache off (as with several processes), 8 requests of a logged-in
/// session in flight while it logs out. No response may hand out a session that is still logged
/// in, under the old id or a new one.
async fn logout_races_requests(read_cache: bool) {
    let site = Site::new(&format!(
        "[session.filesystem]\nread_cache = {read_cache}\n"
    ));
    let app = start(&site).await;
    for trial in 0..12 {
        let mut alice = Browser::new();
        alice.register(&app, &format!("alice{trial}")).await;
        let token = alice.get(&app, "/").await.csrf_token();
        let in_flight = (0..8).map(|_| {
            let mut tab = alice.clone();
            let app = &app;
            async move {
                let mut handed_out = Vec::new();
                for _ in 0..3 {
                    tab.get(app, "/").await;
                    handed_out.extend(tab.session_cookie().cloned());
                }
                handed_out
            }
        });
        let mut logout_tab = alice.clone();
        let logout = async {
            tokio::task::yield_now().await;
            logout_tab
                .post(&app, "/logout", &[("csrf_token", &token)])
                .await
        };
        let (handed_out, page) =
            futures_util::future::join(futures_util::future::join_all(in_flight), logout).await;
        assert_eq!(page.status.as_u16(), 303, "logged out");
        for cookie in handed_out.into_iter().flatten() {
            let mut later = Browser::new();
            later.cookies.insert("session".into(), cookie);
            let page = later.get(&app, "/api/session").await;
            assert_eq!(
                page.status.as_u16(),
                401,
                "trial {trial}: a session outlived its logout: {}",
                page.body
            );
        }
    }
}

#[actix_web::test]
async fn a_logout_is_never_undone_by_requests_in_flight_without_the_cache() {
    logout_races_requests(false).await;
}

#[actix_web::test]
async fn a_logout_is_never_undone_by_requests_in_flight_with_the_cache() {
    logout_races_requests(true).await;
}

/// Item 4: the read cache must never serve what the file no longer holds, whoever changed it.
/// The reader is opened first, so it is the process that used to believe it was alone.
#[actix_web::test]
async fn another_processs_writes_and_deletes_are_seen_at_the_next_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reader = cached(dir.path());
    let writer = cached(dir.path());
    let k = writer
        .save(state(0), &time::Duration::seconds(600))
        .await
        .expect("save");
    let reading = async {
        let mut last = 0;
        let mut reads = 0;
        while last < 200 {
            let now: u64 = match reader.load(&k).await.expect("load") {
                Some(s) => s["visits"].parse().expect("a number"),
                None => panic!("the session vanished"),
            };
            assert!(now >= last, "went back from {last} to {now}");
            last = now;
            reads += 1;
            tokio::task::yield_now().await;
        }
        reads
    };
    let writing = async {
        for visits in 1..=200 {
            let k2 = writer
                .update(
                    key(k.as_ref()),
                    state(visits),
                    &time::Duration::seconds(600),
                )
                .await
                .expect("update");
            assert_eq!(k2.as_ref(), k.as_ref());
            // The very next load by the other process sees this write.
            assert_eq!(
                reader.load(&k).await.expect("load"),
                Some(state(visits)),
                "a write by another process was not seen at once"
            );
        }
    };
    let (reads, ()) = futures_util::future::join(reading, writing).await;
    assert!(reads > 0);
    writer.delete(&k).await.expect("delete");
    assert_eq!(reader.load(&k).await.expect("load"), None);
}

/// Item 4 over HTTP: a person edits, corrupts or deletes a session file by hand; the very next
/// request sees it.
#[actix_web::test]
async fn changes_made_by_hand_are_seen_at_the_next_request() {
    let site = Site::new("");
    let app = start(&site).await;
    let mut alice = Browser::new();
    alice.register(&app, "alice").await;
    let visits = |page: &common::Page| page.element_text("visits");
    assert_eq!(visits(&alice.get(&app, "/").await).as_deref(), Some("1"));
    let file = site.session_files()[0].clone();
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("\"visits\": 1", "\"visits\": 41")).expect("edit by hand");
    assert_eq!(visits(&alice.get(&app, "/").await).as_deref(), Some("42"));

    std::fs::write(&file, b"{ not a session").expect("corrupt by hand");
    assert_eq!(
        visits(&alice.get(&app, "/").await),
        None,
        "served anonymous"
    );

    let mut bob = Browser::new();
    bob.register(&app, "bob").await;
    assert_eq!(visits(&bob.get(&app, "/").await).as_deref(), Some("1"));
    std::fs::remove_file(&site.session_files()[0]).expect("delete by hand");
    assert_eq!(
        bob.get(&app, "/").await.element_text("user"),
        None,
        "a session deleted by hand ended at once"
    );
}
