//! The real binary under kill -9, and several processes sharing one session folder.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{block_on, server_config, session_files, Client, ServerProcess, Tcp};
use session_server::store::SessionRecord;

#[test]
fn sigkill_mid_storm_tears_nothing_and_loses_no_acknowledged_visit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, addr) = server_config(dir.path(), "", "");
    let server = ServerProcess::start(&config, addr);

    // 200 logged-in sessions (one user each keeps it simple to tell them apart).
    let tcp = Tcp(addr);
    let mut clients: Vec<Client> = (0..200)
        .map(|i| {
            let mut c = Client::new();
            let res = block_on(c.register(&tcp, &format!("u{i}")));
            assert_eq!(res.status, 303, "register u{i}");
            c
        })
        .collect();
    assert_eq!(session_files(&dir.path().join("sessions")).len(), 200);

    // The storm: 16 threads, each cycling through its share of the sessions.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let mut mine: Vec<(Client, u64)> = clients
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 16 == t)
                .map(|(_, c)| (c.clone(), 0))
                .collect();
            let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                block_on(async {
                    // Only a safety net, should the main thread fail before it stops them.
                    let deadline = Instant::now() + Duration::from_secs(90);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        for (client, acked) in &mut mine {
                            if let Some(v) = client.visit(&tcp).await {
                                *acked = (*acked).max(v);
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
                mine
            })
        })
        .collect();
    // The storm is at full strength once its threads have had twice as many visits acknowledged
    // as there are sessions; then the kill lands while requests are in flight.
    // A bound for a hang, not a rate: 400 visits take about a second here.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.load(Ordering::Relaxed) < 400 {
        assert!(
            Instant::now() < deadline,
            "the storm did not get going: {} visits acknowledged in 60 s",
            acknowledged.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(server); // SIGKILL while requests are in flight
    stop.store(true, Ordering::Relaxed);
    let mut acked: Vec<(Client, u64)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    let total: u64 = acked.iter().map(|(_, v)| *v).sum();
    assert!(total > 200, "the storm ran ({total} acknowledged visits)");
    eprintln!("storm: {total} acknowledged visits over 200 sessions before SIGKILL");

    let sessions = dir.path().join("sessions");
    for f in session_files(&sessions) {
        let bytes = std::fs::read(&f).expect("read");
        SessionRecord::from_bytes(&bytes).unwrap_or_else(|e| panic!("{} torn: {e}", f.display()));
    }
    let leftovers = || -> usize {
        std::fs::read_dir(sessions.join(".tmp"))
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_dir(e.path()).map_or(0, |d| d.count()))
                    .sum()
            })
            .unwrap_or(0)
    };

    // Restart on the same folder: stale temporary files are swept, every visit survived.
    let server = ServerProcess::start(&config, addr);
    assert_eq!(leftovers(), 0, "no temporary file survives the restart");
    for (client, last_seen) in &mut acked {
        if *last_seen == 0 {
            continue;
        }
        let now = block_on(client.visit(&tcp)).expect("still logged in after the restart");
        assert!(
            now > *last_seen,
            "acknowledged visit {last_seen} lost (now {now})"
        );
    }
    drop(clients.drain(..));
    assert!(!server.log().contains("panicked"));
}

#[test]
fn lock_serializes_one_session_across_two_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config_a, addr_a) = server_config(dir.path(), "lock = true\nlock_timeout = 60", "");
    let a = ServerProcess::start(&config_a, addr_a);
    // A second process: same folder, same key, another port.
    let dir_b = dir.path().join("b");
    std::fs::create_dir(&dir_b).expect("mkdir");
    let (config_b, addr_b) = server_config(
        &dir_b,
        &format!(
            "lock = true\nlock_timeout = 60\nsecret_key_file = {:?}",
            dir.path().join("secret.key")
        ),
        &format!("dir = {:?}", dir.path().join("sessions")),
    );
    // And the same accounts: a session is bound to its account, which b must be able to read.
    let mut text = std::fs::read_to_string(&config_b).expect("read config");
    text.push_str(&format!("users_db = {:?}\n", dir.path().join("users.db")));
    std::fs::write(&config_b, text).expect("write config");
    let b = ServerProcess::start(&config_b, addr_b);

    common::fifty_parallel_visits_all_count(addr_a, addr_b);
    drop((a, b));
}
