//! The engine handle's own behaviour: time bounds, typed errors, connections across runtimes.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::*;

#[test]
fn a_server_that_never_answers_is_a_timeout_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts and holds every connection, never answering a byte.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let options = EngineOptions::new(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(300))
        .command_timeout(Duration::from_millis(300));
    let store = RedisSessionStore::new(RedisOptions::new(options)).expect("store");
    let id = SessionId::generate().expect("id");
    let started = Instant::now();
    let result = rt().block_on(store.load(&id));
    assert!(
        matches!(
            result,
            Err(StoreError::EngineTimeout {
                engine: "redis",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let health = rt().block_on(store.check_health());
    assert!(
        matches!(health, Err(StoreError::EngineTimeout { .. })),
        "{health:?}"
    );
}

#[test]
fn nothing_listening_is_an_engine_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let store = RedisSessionStore::new(RedisOptions::new(EngineOptions::new(format!(
        "redis://127.0.0.1:{port}"
    ))))
    .expect("made without connecting");
    let id = SessionId::generate().expect("id");
    let result = rt().block_on(store.load(&id));
    assert!(
        matches!(
            result,
            Err(StoreError::Engine {
                engine: "redis",
                ..
            })
        ),
        "{result:?}"
    );
}

/// A thread whose runtime is dropped and replaced (as between tests, or a runtime restarted)
/// gets fresh connections instead of failing on ones whose driver died with the old runtime.
#[test]
fn a_new_runtime_on_the_same_thread_gets_working_connections() {
    let Some(server) = Server::start("a_new_runtime_on_the_same_thread") else {
        return;
    };
    let store = server.store("session:");
    let id = rt()
        .block_on(store.save(state(&[("n", "1")]), &time::Duration::minutes(1)))
        .expect("save on the first runtime");
    for _ in 0..3 {
        let loaded = rt()
            .block_on(store.load(&id))
            .expect("load on a new runtime");
        assert_eq!(loaded, Some(state(&[("n", "1")])));
    }
    let now = OffsetDateTime::now_utc();
    assert!(rt()
        .block_on(store.expires_at(&id))
        .expect("expires_at")
        .is_some_and(|at| at > now));
}

/// This build's `redis` crate has no TLS: a `rediss://` URL is refused when the store is made
/// (at start), with a typed engine error, rather than failing every request later.
#[test]
fn rediss_is_refused_at_start_in_this_build() {
    let made = RedisSessionStore::new(RedisOptions::new(EngineOptions::new(
        "rediss://127.0.0.1:6380",
    )));
    assert!(
        matches!(
            made,
            Err(StoreError::Engine {
                engine: "redis",
                ..
            })
        ),
        "{:?}",
        made.err()
    );
}
