//! What the conformance suite cannot see of the redis store, against a real Redis: the keys and
//! values themselves, creation times, the set-aside of unreadable values, parallel writers,
//! commands per request; and the engine handle's own behaviour: time bounds, typed errors,
//! connections across runtimes.
//!
//! Each test that needs Redis starts its own through the shared harness
//! ([`common::engines::RedisServer`], reached here on its unix socket), which skips with one
//! `SKIPPED` line when `redis-server` is not installed, and fails instead under
//! `SESSION_SERVER_REQUIRE_ENGINES=1`. The store is reached only through the crate's public API.
//!
//! Plain `#[test]`s, each making its own runtimes: one test is about a runtime replaced on the
//! same thread, another about writers on threads with runtimes of their own.

mod common;

use std::time::{Duration, Instant};

use common::engines::RedisServer;
use session_server::engines::redis::{EngineOptions, RedisOptions, RedisSessionStore, QUARANTINE};
use session_server::store::{SessionBackend, SessionId, SessionRecord, SessionState, StoreError};
use time::OffsetDateTime;

/// A plain blocking connection to the test's Redis, as `redis-cli` would look.
fn cli(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.unix_url())
        .and_then(|c| c.get_connection())
        .expect("connect to the test's redis")
}

/// A store on the test's Redis, through its unix socket, with keys under `prefix`.
fn store_on(server: &RedisServer, prefix: &str) -> RedisSessionStore {
    RedisSessionStore::new(
        RedisOptions::new(EngineOptions::new(server.unix_url())).key_prefix(prefix),
    )
    .expect("store")
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn the_key_is_the_prefix_and_the_digest_and_the_value_the_files_json() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store_on(&server, "app1:");
    let id = rt()
        .block_on(store.save(
            state(&[("user_id", "\"alice\"")]),
            &time::Duration::minutes(1),
        ))
        .expect("save");
    let mut cli = cli(&server);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut cli).expect("KEYS");
    assert_eq!(keys, vec![format!("app1:{}", id.stem())]);
    assert!(!keys[0].contains(id.as_str()), "no usable cookie in a key");
    let value: String = redis::cmd("GET")
        .arg(&keys[0])
        .query(&mut cli)
        .expect("GET");
    let record = SessionRecord::from_bytes(value.as_bytes()).expect("a record");
    assert_eq!(
        value.as_bytes(),
        record.to_bytes(usize::MAX).expect("bytes"),
        "exactly the file store's pretty JSON"
    );
    assert!(value.contains("\"user_id\": \"alice\""), "{value}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query(&mut cli)
        .expect("TTL");
    assert!((59..=61).contains(&ttl), "Redis keeps the expiry: {ttl}");
}

#[test]
fn an_update_keeps_the_creation_time_and_moves_the_end() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store_on(&server, "session:");
    let rt = rt();
    let id = rt
        .block_on(store.save(state(&[("n", "1")]), &time::Duration::seconds(30)))
        .expect("save");
    let mut cli = cli(&server);
    let read = |cli: &mut redis::Connection| -> SessionRecord {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(store.key_of(&id))
            .query(cli)
            .expect("GET");
        SessionRecord::from_bytes(&value).expect("record")
    };
    let first = read(&mut cli);
    // The update must happen on a later second than the creation, so that a creation time
    // rewritten by the update would show.
    let later = first.created_at + time::Duration::seconds(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while OffsetDateTime::now_utc() < later {
        assert!(Instant::now() < deadline, "the clock did not reach {later}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let same = rt
        .block_on(store.update(
            id.clone(),
            state(&[("n", "2")]),
            &time::Duration::seconds(600),
        ))
        .expect("update");
    assert_eq!(same, id);
    let second = read(&mut cli);
    assert_eq!(second.created_at, first.created_at);
    assert!(second.expires_at > first.expires_at + time::Duration::seconds(500));
    assert_eq!(second.state(), state(&[("n", "2")]));
    let end = rt.block_on(store.expires_at(&id)).expect("expires_at");
    assert_eq!(end, Some(second.expires_at));

    // Another process, which never loaded the session, keeps the creation time too (the
    // script); and a session deleted by another process stays ended for one that knew it.
    let other = store_on(&server, "session:");
    let same = rt
        .block_on(other.update(
            id.clone(),
            state(&[("n", "3")]),
            &time::Duration::seconds(600),
        ))
        .expect("update from another process");
    assert_eq!(same, id);
    assert_eq!(read(&mut cli).created_at, first.created_at);
    rt.block_on(other.delete(&id)).expect("delete");
    let after = rt
        .block_on(store.update(
            id.clone(),
            state(&[("n", "4")]),
            &time::Duration::seconds(600),
        ))
        .expect("update of an ended session");
    assert_ne!(
        after, id,
        "deletion wins: a fresh id with nothing behind it"
    );
    let gone: bool = redis::cmd("EXISTS")
        .arg(store.key_of(&id))
        .query(&mut cli)
        .expect("EXISTS");
    assert!(!gone, "the ended session was not written back");
}

#[test]
fn an_unreadable_value_is_set_aside_and_served_as_no_session() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store_on(&server, "session:");
    let rt = rt();
    let id = rt
        .block_on(store.save(state(&[("n", "1")]), &time::Duration::minutes(1)))
        .expect("save");
    let mut cli = cli(&server);
    let key = store.key_of(&id);
    redis::cmd("SET")
        .arg(&key)
        .arg("{\"user_id\":\"admin\"}")
        .query::<()>(&mut cli)
        .expect("SET");
    assert_eq!(rt.block_on(store.load(&id)).expect("load"), None);
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query(&mut cli)
        .expect("EXISTS");
    assert!(!exists, "moved out of the way");
    let aside = format!("session:corrupt:{}", id.stem());
    let kept: String = redis::cmd("GET").arg(&aside).query(&mut cli).expect("GET");
    assert_eq!(kept, "{\"user_id\":\"admin\"}");
    let ttl: u64 = redis::cmd("TTL").arg(&aside).query(&mut cli).expect("TTL");
    assert!(ttl > QUARANTINE.as_secs() - 60 && ttl <= QUARANTINE.as_secs());
    let listed = rt.block_on(store.list()).expect("list");
    assert!(
        listed.is_empty(),
        "a set-aside value is no session: {listed:?}"
    );
}

/// Writers on several threads (each with its own runtime and connections) update one session at
/// once: every write is whole, the last one wins, and the session keeps its creation time.
#[test]
fn parallel_writers_to_one_session_leave_one_whole_record() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store_on(&server, "session:");
    let ttl = time::Duration::minutes(1);
    let id = rt()
        .block_on(store.save(state(&[("w", "0")]), &ttl))
        .expect("save");
    let created = {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(store.key_of(&id))
            .query(&mut cli(&server))
            .expect("GET");
        SessionRecord::from_bytes(&value)
            .expect("record")
            .created_at
    };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, id) = (store.clone(), id.clone());
            std::thread::spawn(move || {
                let rt = rt();
                rt.block_on(async {
                    let writes = (0..25).map(|i| {
                        let pad = format!("\"{}\"", "x".repeat(100 * (t * 25 + i)));
                        let s = state(&[("w", &format!("\"{t}-{i}\"")), ("pad", &pad)]);
                        let (store, id) = (&store, id.clone());
                        async move { store.update(id, s, &ttl).await }
                    });
                    for written in futures_util::future::join_all(writes).await {
                        assert_eq!(written.expect("update"), id);
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
    let value: Vec<u8> = redis::cmd("GET")
        .arg(store.key_of(&id))
        .query(&mut cli(&server))
        .expect("GET");
    let record = SessionRecord::from_bytes(&value).expect("one whole record");
    assert_eq!(record.created_at, created);
    let w: String = serde_json::from_value(record.data["w"].clone()).expect("w");
    let (t, i) = w.split_once('-').expect("t-i");
    let n: usize = t.parse::<usize>().expect("t") * 25 + i.parse::<usize>().expect("i");
    let pad = record.data["pad"].as_str().expect("pad");
    assert_eq!(pad.len(), 100 * n, "the data of one write, not a mix");
}

/// Every command Redis has run (INFO itself excluded), as `INFO commandstats` counts them:
/// commands a script runs count too.
fn commands_run(cli: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(cli)
        .expect("INFO");
    info.lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .filter_map(|l| {
            l.split_once("calls=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// No more commands per request than actix-session's own Redis store: a request that changes
/// its session costs a GET and a SET, one that only refreshes it a GET and an EXPIREAT.
#[test]
fn a_request_costs_actix_sessions_own_number_of_commands() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store_on(&server, "session:");
    let rt = rt();
    let ttl = time::Duration::minutes(1);
    let id = rt
        .block_on(store.save(state(&[("n", "0")]), &ttl))
        .expect("save");
    let mut cli = cli(&server);
    for n in 1..=3 {
        let before = commands_run(&mut cli);
        rt.block_on(async {
            store.load(&id).await.expect("load").expect("live");
            let visits = n.to_string();
            store
                .update(id.clone(), state(&[("n", &visits)]), &ttl)
                .await
                .expect("update")
        });
        assert_eq!(commands_run(&mut cli) - before, 2, "GET + SET");
    }
    let before = commands_run(&mut cli);
    rt.block_on(async {
        store.load(&id).await.expect("load").expect("live");
        store.update_ttl(&id, &ttl).await.expect("update_ttl");
    });
    assert_eq!(commands_run(&mut cli) - before, 2, "GET + EXPIREAT");
}

// The engine handle's own behaviour: time bounds, typed errors, connections across runtimes.

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
    let port = common::free_port();
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
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store_on(&server, "session:");
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
