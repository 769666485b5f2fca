//! Redis going away under a running server, in process over HTTP. The scenarios every engine
//! shares (`common::faults`, module `shared`: down at start, killed under load, paused past the
//! command timeout, a pending legacy import) run here against a single Redis, which comes back
//! empty; the accounts follow the sessions into Redis and die with it. Below, what only Redis
//! has: one master of a Redis Cluster killed, connections closed by a healthy Redis, a session
//! key of another Redis type, and the session lock's key after a stall.

mod common;

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::engines::{query, EngineHarness, RedisCluster, RedisServer};
use common::faults::{
    alice_in_bob_registered, assert_recovered, assert_unavailable, engine_site, wait_for_health,
};
use common::{start, Browser, Site};

engine_fault_suite!(RedisServer);

/// A site whose sessions live in the Redis (or Cluster) that `table` names, with short bounds
/// so that a dead engine is noticed quickly.
fn redis_site(table: &str) -> Site {
    engine_site("redis", table)
}

#[actix_web::test]
async fn a_killed_cluster_master_gets_503_pages_and_the_server_recovers() {
    let Some(mut cluster) = RedisCluster::start() else {
        return;
    };
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let site = redis_site(&format!("cluster_urls = [{}]\n", urls.join(", ")));
    let app = start(&site).await;
    let mut alice = Browser::new();
    alice.register(&app, "alice").await;
    assert_eq!(
        alice.get(&app, "/").await.element_text("user").as_deref(),
        Some("alice")
    );
    wait_for_health(&app, StatusCode::OK).await;

    // The master holding alice's session.
    let holder = (0..cluster.urls().len())
        .find(|&i| {
            // Sessions only (a digest of 64 characters), not the users and throttle keys.
            query::<Vec<String>>(
                &cluster.url(i),
                &["KEYS", &format!("session:{}", "?".repeat(64))],
            )
            .is_some_and(|keys| !keys.is_empty())
        })
        .expect("one master holds the session");
    cluster.kill_node(holder);

    assert_unavailable(
        &alice.get(&app, "/").await,
        "a page of a session on the dead master",
    );
    let anon = Browser::new().get(&app, "/").await;
    assert_eq!(anon.status, StatusCode::OK, "anonymous pages keep working");
    wait_for_health(&app, StatusCode::SERVICE_UNAVAILABLE).await;

    cluster.restart_node(holder);
    assert_recovered(&app, "carol").await;
    let page = alice.get(&app, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.element_text("user").is_none(),
        "her session died with its master"
    );
}

/// Review finding 1: Redis closes the server's connections while Redis itself stays up and
/// healthy (its `timeout` setting closing idle clients, a failover, a proxy restart; here
/// `CLIENT KILL TYPE normal`). Nothing is wrong with the engine, so nothing should be
/// answered 503: today each dead pooled connection (async session slots and the blocking
/// pool of users/throttle/locks) fails the one request that next picks it before it is
/// replaced, and that request gets "Sessions unavailable" / "Accounts unavailable".
#[actix_web::test]
async fn connections_closed_by_a_healthy_redis_get_no_503() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let site = redis_site(&format!("url = \"{}\"\n", redis.url()));
    let app = start(&site).await;
    let (mut alice, mut bob) = alice_in_bob_registered(&app).await;
    for _ in 0..4 {
        assert_eq!(
            alice.get(&app, "/").await.element_text("user").as_deref(),
            Some("alice")
        );
    }

    let killed = query::<i64>(&redis.url(), &["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(
        killed.is_some_and(|n| n > 0),
        "the server's connections were closed: {killed:?}"
    );

    let mut refused = Vec::new();
    for i in 0..6 {
        let page = alice.get(&app, "/").await;
        if page.status != StatusCode::OK || page.element_text("user").as_deref() != Some("alice") {
            refused.push(format!("GET / #{i}: {}", page.status));
        }
    }
    let page = bob.login(&app, "bob", "password123").await;
    if page.status != StatusCode::SEE_OTHER {
        refused.push(format!("login: {}", page.status));
    }
    assert!(
        refused.is_empty(),
        "Redis was up the whole time, yet: {refused:?}"
    );
}

/// Review finding 4: a session key that holds another Redis type (a hash, a list: a stray
/// write by another tool sharing the prefix) is not "a value that is not a record": `GET`
/// fails with WRONGTYPE, which the store reports as an engine failure, so that session gets
/// "Sessions unavailable" on every request for as long as the key lives (it has no expiry),
/// while a value that is not a record is set aside and served as no session.
#[actix_web::test]
async fn a_session_key_of_another_type_is_served_as_no_session() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let site = redis_site(&format!("url = \"{}\"\n", redis.url()));
    let app = start(&site).await;
    let mut alice = Browser::new();
    alice.register(&app, "alice").await;
    let keys = query::<Vec<String>>(&redis.url(), &["KEYS", "session:*"]).expect("keys");
    let key = keys
        .iter()
        .find(|k| {
            k.strip_prefix("session:")
                .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .expect("alice's session key");
    query::<i64>(&redis.url(), &["DEL", key]).expect("DEL");
    query::<i64>(&redis.url(), &["HSET", key, "stray", "value"]).expect("HSET");

    let page = alice.get(&app, "/").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "served as no session, like a value that is not a record"
    );
    assert!(page.element_text("user").is_none());
}

/// Review finding 6: with `lock = true`, Redis stalls for longer than `command_timeout` (here
/// SIGSTOP; in life a slow fsync, a fork for an RDB save on a big instance, a network blip).
/// The lock's `SET .. NX PX` times out, the request goes on without the lock, and Redis applies
/// the `SET` once it resumes: a lock that nobody will release. Every later request of that
/// session then waits the full `WAIT` (10 s) and is served without the lock anyway, for the
/// lock's whole `TTL` (30 s). Measured: 10.03 s, 10.03 s, 9.69 s for the next three requests.
#[actix_web::test]
async fn a_lock_taken_while_redis_stalled_is_not_left_behind() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let site = Site::with_config(&format!(
        "[session]\ntype = \"redis\"\nlock = true\nlifetime = 60\n[session.redis]\n\
         url = \"{}\"\nconnect_timeout = 0.5\ncommand_timeout = 0.5\n\
         [auth]\nbcrypt_cost = 4\nmin_password_length = 8\n",
        redis.url()
    ));
    let app = start(&site).await;
    let mut alice = Browser::new();
    alice.register(&app, "alice").await;

    redis.pause();
    assert_unavailable(&alice.get(&app, "/").await, "a page while Redis stalls");
    redis.resume();

    // The stalled SET has now run. Nothing holds the lock: it must go, not stay for 30 s.
    let deadline = Instant::now() + Duration::from_secs(2);
    let left = loop {
        let left = query::<Vec<String>>(&redis.url(), &["KEYS", "session:lock:*"]).expect("KEYS");
        if left.is_empty() || Instant::now() >= deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        left.is_empty(),
        "a lock nobody holds blocks the session: {left:?}"
    );
}
