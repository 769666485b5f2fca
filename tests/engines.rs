//! The engine harness itself (tests/common/engines): real `redis-server` processes start on
//! their own ports and folders, answer, die when killed, come back when restarted, and a missing
//! engine gives one SKIPPED line, or a failure when engines are required. For each engine of the
//! fault suite, what [`EngineHarness`] promises: a pause stops every process of the engine and a
//! resume continues them all, a stop ends them, a restart brings new ones.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::engines::{
    current_test, installed_or_skip, is_stopped, ping, query, EngineHarness, MemcachedServer,
    PostgresServer, RedisCluster, RedisServer, Via, REDIS_SERVER, REQUIRE_ENGINES,
};

/// Whether a process with this pid exists (a reaped child leaves no /proc entry).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A key that node `url` of a cluster serves itself: the others answer MOVED, which `query`
/// reports as `None`.
fn key_served_by(url: &str, value: &str) -> String {
    (0..10_000)
        .map(|n| format!("key-{n}"))
        .find(|key| query::<String>(url, &["SET", key, value]).as_deref() == Some("OK"))
        .expect("some key hashes to this node's slots")
}

#[test]
fn standalone_answers_on_tcp_and_unix_socket() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    assert!(
        redis.url().starts_with("redis://127.0.0.1:"),
        "{}",
        redis.url()
    );
    assert!(
        redis.unix_url().starts_with("unix:///"),
        "{}",
        redis.unix_url()
    );
    assert!(ping(&redis.url()), "PING over TCP");
    assert!(ping(&redis.unix_url()), "PING over the unix socket");
    // One server behind both: a key set over the socket is read over TCP.
    assert_eq!(
        query::<String>(&redis.unix_url(), &["SET", "k", "v"]).as_deref(),
        Some("OK")
    );
    assert_eq!(
        query::<String>(&redis.url(), &["GET", "k"]).as_deref(),
        Some("v")
    );
    let pid = redis.pid().expect("running");
    assert!(alive(pid));
}

#[test]
fn kill_makes_it_unreachable_and_restart_brings_it_back_empty() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (url, unix_url) = (redis.url(), redis.unix_url());
    assert_eq!(
        query::<String>(&url, &["SET", "k", "v"]).as_deref(),
        Some("OK")
    );
    let old_pid = redis.pid().expect("running");

    redis.kill();
    assert_eq!(redis.pid(), None);
    assert!(!alive(old_pid), "pid {old_pid} still exists after kill");
    assert!(!ping(&url), "TCP still answers after kill");
    assert!(!ping(&unix_url), "the socket still answers after kill");

    redis.restart();
    assert_eq!(
        (redis.url(), redis.unix_url()),
        (url.clone(), unix_url.clone())
    );
    let new_pid = redis.pid().expect("running again");
    assert_ne!(new_pid, old_pid);
    assert!(ping(&url) && ping(&unix_url));
    assert_eq!(
        query::<Option<String>>(&url, &["GET", "k"]),
        Some(None),
        "nothing is persisted across a restart"
    );
}

#[test]
fn restart_waits_while_another_process_holds_the_port() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    redis.kill();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", redis.port())).expect("take the port");
    // A start that found its first port taken has logged the refusal already: count them.
    let refusals = {
        let log = redis.log_path();
        move || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("Address already in use")
                .count()
        }
    };
    let before = refusals();
    let refusals = &refusals;
    std::thread::scope(|scope| {
        // The port is given back once a restart has tried it and been refused, as its log says
        // (or after half the restart's own time limit, for the assertions below to explain).
        scope.spawn(move || {
            let deadline = std::time::Instant::now() + common::engines::START_TIMEOUT / 2;
            while refusals() == before && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            drop(squatter);
        });
        redis.restart();
    });
    assert!(ping(&redis.url()), "back on its own port");
    assert!(
        refusals() > before,
        "no refused start while the port was taken: {}",
        redis.log()
    );
}

#[test]
fn dropping_a_server_stops_its_process_and_removes_its_folder() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let pid = redis.pid().expect("running");
    let socket = redis.socket_path();
    let url = redis.url();
    assert!(socket.exists());
    drop(redis);
    assert!(!alive(pid), "pid {pid} still exists after drop");
    assert!(!ping(&url));
    assert!(!socket.exists(), "the temporary folder is removed");
}

#[test]
fn servers_started_at_once_get_their_own_ports_and_folders() {
    // Checked once here so that a skip prints one line, not one per thread.
    let test = current_test();
    if !installed_or_skip(&test, &[REDIS_SERVER]) {
        return;
    }
    let servers: Vec<RedisServer> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| RedisServer::start_for(&test).expect("installed")))
            .collect();
        starts
            .into_iter()
            .map(|s| s.join().expect("start thread"))
            .collect()
    });
    for (i, a) in servers.iter().enumerate() {
        for b in &servers[i + 1..] {
            assert_ne!(a.port(), b.port());
            assert_ne!(a.socket_path(), b.socket_path());
        }
    }
    for (i, server) in servers.iter().enumerate() {
        let value = i.to_string();
        assert_eq!(
            query::<String>(&server.url(), &["SET", "who", &value]).as_deref(),
            Some("OK")
        );
    }
    for (i, server) in servers.iter().enumerate() {
        assert_eq!(
            query::<String>(&server.unix_url(), &["GET", "who"]),
            Some(i.to_string()),
            "each server has its own data"
        );
    }
}

#[test]
fn cluster_serves_a_key_set_through_one_node_to_the_cluster_client() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    for i in 0..3 {
        let info = cluster.cluster_info(i).expect("CLUSTER INFO");
        assert!(info.contains("cluster_state:ok"), "node {i}: {info}");
        assert!(info.contains("cluster_size:3"), "node {i}: {info}");
    }
    let key = key_served_by(&urls[0], "from node 0");

    // The cluster client, told about another node only, finds the key through the slot map.
    let client = redis::cluster::ClusterClient::new(vec![urls[1].clone()]).expect("client");
    let read = common::block_on(async {
        let mut con = client.get_async_connection().await.expect("connect");
        let read: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut con)
            .await
            .expect("GET");
        for n in 0..30 {
            let _: () = redis::cmd("SET")
                .arg(format!("spread-{n}"))
                .arg(n)
                .query_async(&mut con)
                .await
                .expect("SET through the cluster client");
        }
        read
    });
    assert_eq!(read, "from node 0");
    // The client spread its keys over the masters: each holds some.
    for (i, url) in urls.iter().enumerate() {
        let keys = query::<u64>(url, &["DBSIZE"]).expect("DBSIZE");
        assert!(keys > 0, "node {i} holds no key");
    }
}

#[test]
fn cluster_node_killed_then_restarted_rejoins_with_the_cluster_ok() {
    let Some(mut cluster) = RedisCluster::start() else {
        return;
    };
    let urls = cluster.urls();
    let key = key_served_by(&urls[1], "before");
    let old_pid = cluster.pid(1).expect("running");

    cluster.kill_node(1);
    assert_eq!(cluster.pid(1), None);
    assert!(
        !alive(old_pid),
        "pid {old_pid} still exists after kill_node"
    );
    assert!(!ping(&urls[1]));
    assert!(ping(&urls[0]) && ping(&urls[2]), "only node 1 was killed");

    cluster.restart_node(1);
    assert_eq!(cluster.urls(), urls, "same ports");
    assert!(cluster.pid(1).is_some_and(|pid| pid != old_pid));
    for i in 0..3 {
        let info = cluster.cluster_info(i).expect("CLUSTER INFO");
        assert!(info.contains("cluster_state:ok"), "node {i}: {info}");
    }
    // Node 1 serves its old slots again, empty: nothing is persisted.
    assert_eq!(
        query::<Option<String>>(&urls[1], &["GET", &key]),
        Some(None)
    );
    assert_eq!(
        query::<String>(&urls[1], &["SET", &key, "after"]).as_deref(),
        Some("OK")
    );
    let mut con = redis::cluster::ClusterClient::new(vec![urls[0].clone()])
        .expect("client")
        .get_connection()
        .expect("connect");
    let read: String = redis::cmd("GET").arg(&key).query(&mut con).expect("GET");
    assert_eq!(read, "after");
}

/// Pause, resume, stop and restart of one engine, checked on its processes: every one stopped
/// (state `T`) after a pause, none after a resume, all gone after a stop, new ones after a
/// restart.
fn pause_resume_stop_restart<E: EngineHarness>() {
    let Some(mut engine) = E::start_via(&current_test(), Via::Tcp) else {
        return;
    };
    let before = engine.pids();
    assert!(!before.is_empty(), "a running engine has processes");
    engine.pause();
    let paused = engine.pids();
    assert!(
        before.iter().all(|pid| paused.contains(pid)),
        "no process of the engine ended: {before:?}, then {paused:?}"
    );
    let running: Vec<u32> = paused.iter().copied().filter(|&p| !is_stopped(p)).collect();
    assert!(running.is_empty(), "not stopped by the pause: {running:?}");
    engine.resume();
    let deadline = Instant::now() + Duration::from_secs(5);
    while paused.iter().any(|&pid| is_stopped(pid)) {
        assert!(Instant::now() < deadline, "still stopped after the resume");
        std::thread::sleep(Duration::from_millis(5));
    }
    engine.stop();
    assert!(engine.pids().is_empty());
    let left: Vec<u32> = paused.iter().copied().filter(|&pid| alive(pid)).collect();
    assert!(left.is_empty(), "alive after the stop: {left:?}");
    engine.restart();
    let again = engine.pids();
    assert!(!again.is_empty(), "processes after the restart");
    assert!(
        again.iter().all(|pid| !before.contains(pid)),
        "new processes"
    );
}

#[test]
fn redis_pauses_resumes_stops_and_restarts_by_its_own_pids() {
    pause_resume_stop_restart::<RedisServer>();
}

#[test]
fn postgres_pauses_resumes_stops_and_restarts_by_its_own_pids() {
    pause_resume_stop_restart::<PostgresServer>();
}

#[test]
fn memcached_pauses_resumes_stops_and_restarts_by_its_own_pids() {
    pause_resume_stop_restart::<MemcachedServer>();
}

/// Runs one test of this binary alone in a child process with an empty PATH, so that no engine
/// is found.
fn run_without_engines(test: &str, require: bool) -> Output {
    let empty = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args([test, "--exact", "--test-threads", "1"])
        .env("PATH", empty.path())
        .env_remove(REQUIRE_ENGINES);
    if require {
        command.env(REQUIRE_ENGINES, "1");
    }
    command.output().expect("run the test binary")
}

fn skipped_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|line| line.starts_with("SKIPPED"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_missing_engine_skips_the_test_with_one_line_naming_it() {
    let test = "standalone_answers_on_tcp_and_unix_socket";
    let out = run_without_engines(test, false);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        skipped_lines(&out),
        [format!(
            "SKIPPED {test}: redis-server is not installed (apt-get install -y redis-server)"
        )]
    );

    let test = "cluster_serves_a_key_set_through_one_node_to_the_cluster_client";
    let out = run_without_engines(test, false);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        skipped_lines(&out),
        [format!(
            "SKIPPED {test}: redis-server is not installed (apt-get install -y redis-server)"
        )]
    );
}

#[test]
fn a_missing_engine_fails_the_test_when_engines_are_required() {
    let test = "standalone_answers_on_tcp_and_unix_socket";
    let out = run_without_engines(test, true);
    assert!(!out.status.success(), "{out:?}");
    assert!(skipped_lines(&out).is_empty(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{test}: redis-server is not installed (apt-get install -y redis-server), \
             and {REQUIRE_ENGINES}=1 forbids skipping"
        )),
        "{text}"
    );
}
