//! What the conformance suite cannot see of the redis store: the keys and values themselves,
//! creation times, the set-aside of unreadable values, parallel writers, commands per request;
//! [`engine`] the connections' time bounds, errors and runtimes.
//! Each test runs its own `redis-server` on a unix socket in a temporary folder (stopped by pid),
//! or prints one SKIPPED line when it is not installed.

mod engine;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// A private `redis-server` on a unix socket, killed (by its pid) when dropped.
struct Server {
    dir: tempfile::TempDir,
    child: Child,
}

impl Server {
    fn start(test: &str) -> Option<Self> {
        let dir = tempfile::Builder::new()
            .prefix("redis-unit-")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("redis.sock");
        let child = match Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "SKIPPED {test}: redis-server is not installed (apt-get install -y redis-server)"
                );
                return None;
            }
            Err(e) => panic!("redis-server: {e}"),
        };
        let server = Self { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        // Connected to, not only present: redis makes the socket file when it binds, a moment
        // before it listens, and a connect in that moment is refused.
        while std::os::unix::net::UnixStream::connect(server.dir.path().join("redis.sock")).is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("unix://{}", self.dir.path().join("redis.sock").display())
    }

    /// A plain blocking connection, as `redis-cli` would look.
    fn cli(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect")
    }

    fn store(&self, prefix: &str) -> RedisSessionStore {
        RedisSessionStore::new(RedisOptions::new(EngineOptions::new(self.url())).key_prefix(prefix))
            .expect("store")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let Some(server) = Server::start("the_key_is_the_prefix_and_the_digest") else {
        return;
    };
    let store = server.store("app1:");
    let id = rt()
        .block_on(store.save(
            state(&[("user_id", "\"alice\"")]),
            &time::Duration::minutes(1),
        ))
        .expect("save");
    let mut cli = server.cli();
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
    let Some(server) = Server::start("an_update_keeps_the_creation_time") else {
        return;
    };
    let store = server.store("session:");
    let rt = rt();
    let id = rt
        .block_on(store.save(state(&[("n", "1")]), &time::Duration::seconds(30)))
        .expect("save");
    let mut cli = server.cli();
    let read = |cli: &mut redis::Connection| -> SessionRecord {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(store.key_of(&id))
            .query(cli)
            .expect("GET");
        SessionRecord::from_bytes(&value).expect("record")
    };
    let first = read(&mut cli);
    std::thread::sleep(Duration::from_millis(1100));
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
    let other = server.store("session:");
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
    let Some(server) = Server::start("an_unreadable_value_is_set_aside") else {
        return;
    };
    let store = server.store("session:");
    let rt = rt();
    let id = rt
        .block_on(store.save(state(&[("n", "1")]), &time::Duration::minutes(1)))
        .expect("save");
    let mut cli = server.cli();
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
    let Some(server) = Server::start("parallel_writers_to_one_session") else {
        return;
    };
    let store = server.store("session:");
    let ttl = time::Duration::minutes(1);
    let id = rt()
        .block_on(store.save(state(&[("w", "0")]), &ttl))
        .expect("save");
    let created = {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(store.key_of(&id))
            .query(&mut server.cli())
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
        .query(&mut server.cli())
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
    let Some(server) = Server::start("a_request_costs_actix_sessions_own_number_of_commands")
    else {
        return;
    };
    let store = server.store("session:");
    let rt = rt();
    let ttl = time::Duration::minutes(1);
    let id = rt
        .block_on(store.save(state(&[("n", "0")]), &ttl))
        .expect("save");
    let mut cli = server.cli();
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
