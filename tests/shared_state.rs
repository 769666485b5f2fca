//! Shared state of several server processes: users, login throttle counters and session locks,
//! each reached through two independent handles over one engine (one SQLite file, one Redis,
//! one Redis Cluster), as two servers behind a load balancer reach them, and hit in parallel.
//! Redis tests print one SKIPPED line and pass when redis-server is not installed.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::engines::{PostgresServer, RedisCluster, RedisServer};
use session_server::engines::memcached::MemcachedLocks;
use session_server::engines::postgres::Postgres;
use session_server::engines::postgres::PostgresCounters;
use session_server::engines::postgres::PostgresLocks;
use session_server::engines::redis::RedisCounters;
use session_server::engines::redis::RedisLocks;
use session_server::engines::redis::{RedisBlocking, RedisTarget};
use session_server::engines::sqlite::SqliteCounters;
use session_server::users::{UserDb, UserError};
use session_server::web::lock::{Across, EngineLock, SessionLocks};
use session_server::web::throttle::{Counters, LoginThrottle, Origin, Refused};

const PREFIX: &str = "session:";
/// Cheap hashes: these tests are about sharing, not hashing.
const COST: u32 = 4;

fn pool(url: &str, cluster: Vec<String>) -> RedisBlocking {
    RedisBlocking::new(&RedisTarget {
        url: url.to_owned(),
        cluster_urls: cluster,
        pool_size: 8,
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
        tls: Default::default(),
        sentinel: None,
    })
    .expect("pool")
}

/// Two pools over one Redis: what two server processes would each make.
fn two_pools(redis: &RedisServer) -> [RedisBlocking; 2] {
    [pool(&redis.url(), vec![]), pool(&redis.url(), vec![])]
}

fn two_cluster_pools(cluster: &RedisCluster) -> [RedisBlocking; 2] {
    [
        pool(&cluster.url(0), cluster.urls()),
        pool(&cluster.url(0), cluster.urls()),
    ]
}

// ----- users -----

fn sqlite_users(dir: &Path) -> [Arc<UserDb>; 2] {
    let open = || Arc::new(UserDb::open(dir.join("users.db"), None, COST).expect("open"));
    [open(), open()]
}

fn redis_users(pools: [RedisBlocking; 2]) -> [Arc<UserDb>; 2] {
    pools.map(|p| Arc::new(UserDb::open_redis(p, PREFIX, None, COST).expect("open")))
}

/// Both register `id` from many threads at once: exactly one registration wins.
fn one_registration_wins(dbs: &[Arc<UserDb>; 2]) {
    const THREADS: usize = 8;
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (db, barrier) = (Arc::clone(&dbs[i % 2]), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                match db.register("Racer", &format!("racer {i}"), "password one") {
                    Ok(_) => Ok(()),
                    Err(UserError::Taken(_)) => Err("taken".to_owned()),
                    Err(e) => Err(format!("unexpected: {e}")),
                }
            })
        })
        .collect();
    let outcomes: Vec<Result<(), String>> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let taken = outcomes
        .iter()
        .filter(|o| o.as_ref().err().map(String::as_str) == Some("taken"))
        .count();
    assert_eq!((won, taken), (1, THREADS - 1), "{outcomes:?}");
}

/// A user registered through one is verified through the other; a re-hash at login through a
/// third, configured with a higher cost, is what the others then find, and the dummy's cost
/// follows.
fn registered_and_rehashed_through_either(dbs: [Arc<UserDb>; 2], higher: UserDb) {
    let [a, b] = dbs;
    a.register("Shared", "Shared User", "password two")
        .expect("registered via a");
    let found = b.verify("shared", "password two").expect("lookup via b");
    assert_eq!(found.map(|u| u.spelling), Some("Shared".to_owned()));
    assert_eq!(b.verify("shared", "wrong").expect("lookup"), None);
    assert_eq!(b.stored_cost("shared").expect("cost"), Some(COST));
    rehash_seen(&higher, &a);
}

fn rehash_seen(higher: &UserDb, other: &UserDb) {
    higher
        .verify("shared", "password two")
        .expect("login")
        .expect("the user");
    assert_eq!(other.stored_cost("shared").expect("cost"), Some(COST + 1));
    assert_eq!(other.dummy_cost().expect("dummy cost"), COST + 1);
    assert!(other
        .verify("SHARED", "password two")
        .expect("login")
        .is_some());
}

#[test]
fn users_in_one_sqlite_file_are_shared() {
    let dir = tempfile::tempdir().expect("tempdir");
    one_registration_wins(&sqlite_users(dir.path()));
    let higher = UserDb::open(dir.path().join("users.db"), None, COST + 1).expect("open");
    registered_and_rehashed_through_either(sqlite_users(dir.path()), higher);
}

/// Two handles on one database, as two server processes have.
fn two_databases(pg: &PostgresServer) -> [Postgres; 2] {
    let mut config = session_server::config::Config::defaults()
        .expect("defaults")
        .session
        .postgres;
    config.url = pg.url();
    [(); 2].map(|_| Postgres::new(&config).expect("pool"))
}

#[test]
fn users_in_one_postgres_database_are_shared() {
    let Some(pg) = PostgresServer::start() else {
        return;
    };
    let open = |db: Postgres, cost| UserDb::open_postgres(db, "s", None, cost).expect("open");
    one_registration_wins(&two_databases(&pg).map(|db| Arc::new(open(db, COST))));
    let [higher, _] = two_databases(&pg);
    registered_and_rehashed_through_either(
        two_databases(&pg).map(|db| Arc::new(open(db, COST))),
        open(higher, COST + 1),
    );
    // One row per user, keyed by the case-folded id; only the hash of the password.
    let rows = pg.psql("SELECT key, password_hash LIKE '$2b$%' FROM s_users ORDER BY key");
    assert_eq!(rows.lines().count(), 2, "{rows}");
    assert!(rows.contains("shared|t"), "{rows}");
}

#[test]
fn throttle_counters_in_one_postgres_database_are_shared() {
    let Some(pg) = PostgresServer::start() else {
        return;
    };
    let pair = || two_databases(&pg).map(|db| throttle(PostgresCounters::new(db, "s")));
    failures_count_together(pair());
    parallel_reservations_stay_under_the_limit(pair());
}

#[actix_web::test]
async fn requests_of_one_session_through_two_postgres_servers_run_one_at_a_time() {
    let Some(pg) = PostgresServer::start() else {
        return;
    };
    pg.psql("CREATE TABLE s_locks (id text PRIMARY KEY, token text NOT NULL, until timestamptz NOT NULL)");
    let [a, b] = two_databases(&pg);
    let dbs = parking_lot::Mutex::new(vec![a, b]);
    let sets = lock_sets(|| {
        let db = dbs.lock().pop().expect("one database handle per set");
        Across::Engine(EngineLock::new(PostgresLocks::new(db, "s")))
    });
    assert_eq!(counter_after_parallel_requests(sets).await, 20);
    assert_eq!(
        pg.psql("SELECT count(*) FROM s_locks").trim(),
        "0",
        "every lock released"
    );
}

#[test]
fn users_in_one_redis_are_shared() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    one_registration_wins(&redis_users(two_pools(&redis)));
    let higher =
        UserDb::open_redis(pool(&redis.url(), vec![]), PREFIX, None, COST + 1).expect("open");
    registered_and_rehashed_through_either(redis_users(two_pools(&redis)), higher);
    // One key per user, named by the case-folded id; no password in the clear.
    let keys: Vec<String> =
        common::engines::query(&redis.url(), &["KEYS", "*user:*"]).expect("keys");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.contains(&"session:{users}:user:shared".to_owned()),
        "{keys:?}"
    );
}

#[test]
fn users_in_one_redis_cluster_are_shared() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    one_registration_wins(&redis_users(two_cluster_pools(&cluster)));
    let higher = UserDb::open_redis(
        pool(&cluster.url(1), cluster.urls()),
        PREFIX,
        None,
        COST + 1,
    )
    .expect("open");
    registered_and_rehashed_through_either(redis_users(two_cluster_pools(&cluster)), higher);
}

#[test]
fn a_legacy_user_file_is_imported_into_redis_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let legacy = dir.path().join("users.json");
    let hash = bcrypt::hash("legacy password", COST).expect("hash");
    let file = serde_json::json!({"version": 1, "users": {
        "Old": {"name": "Old Timer", "password_hash": hash, "created_at": "2020-01-01T00:00:00Z"}
    }});
    std::fs::write(&legacy, file.to_string()).expect("write");
    let [a, b] = two_pools(&redis);
    let db = UserDb::open_redis(a, PREFIX, Some(&legacy), COST).expect("imported");
    assert!(!legacy.exists(), "kept under another name");
    let other = UserDb::open_redis(b, PREFIX, Some(&legacy), COST).expect("nothing to import");
    for db in [&db, &other] {
        let user = db.verify("old", "legacy password").expect("login");
        assert_eq!(user.map(|u| u.name), Some("Old Timer".to_owned()));
    }
}

// ----- throttle -----

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn from(address: &str) -> Origin<'_> {
    Origin {
        address: Some(address),
        device: None,
    }
}

fn wait_of<T>(r: Result<T, Refused>) -> Option<Duration> {
    match r {
        Ok(_) => None,
        Err(Refused::Wait(w)) => Some(w),
        Err(Refused::Unavailable(e)) => panic!("counters failed: {e}"),
    }
}

/// Failures made through either throttle count together; a success through one clears the
/// pair for both.
fn failures_count_together(pair: [LoginThrottle; 2]) {
    let [a, b] = pair;
    let _ = a.reserve_login("alice", from("1.2.3.4"), at(0)).expect("1");
    let _ = b.reserve_login("alice", from("1.2.3.4"), at(0)).expect("2");
    let _ = a.reserve_login("alice", from("1.2.3.4"), at(0)).expect("3");
    assert_eq!(
        wait_of(b.reserve_login("alice", from("1.2.3.4"), at(0))),
        Some(Duration::from_secs(1)),
        "the fourth waits, whichever server it reaches"
    );
    let ok = b
        .reserve_login("alice", from("1.2.3.4"), at(1))
        .expect("after the delay");
    b.succeeded(ok);
    let _ = a
        .reserve_login("alice", from("1.2.3.4"), at(1))
        .expect("the success through b cleared the pair for a");
}

/// Many threads, half through each throttle, reserve at once: at most `free` get through.
fn parallel_reservations_stay_under_the_limit(pair: [LoginThrottle; 2]) {
    const THREADS: usize = 16;
    const FREE: usize = 3;
    let pair = Arc::new(pair);
    let barrier = Arc::new(Barrier::new(THREADS));
    let through = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (pair, barrier, through) = (pair.clone(), barrier.clone(), through.clone());
            std::thread::spawn(move || {
                barrier.wait();
                match pair[i % 2].reserve_login("bob", from("5.6.7.8"), at(100)) {
                    // Kept: a failure, as a wrong password leaves it.
                    Ok(attempt) => {
                        drop(attempt);
                        through.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(Refused::Wait(_)) => {}
                    Err(Refused::Unavailable(e)) => panic!("counters failed: {e}"),
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(through.load(Ordering::SeqCst), FREE as u64);
}

fn throttle(counters: impl Counters + 'static) -> LoginThrottle {
    LoginThrottle::with_counters(3, Duration::from_secs(60), Box::new(counters))
}

fn sqlite_throttles(dir: &Path) -> [LoginThrottle; 2] {
    let open = || throttle(SqliteCounters::open(&dir.join("users.db")).expect("open"));
    [open(), open()]
}

fn redis_throttles(pools: [RedisBlocking; 2]) -> [LoginThrottle; 2] {
    pools.map(|p| throttle(RedisCounters::new(p, PREFIX)))
}

#[test]
fn throttle_counters_in_one_sqlite_file_are_shared() {
    let dir = tempfile::tempdir().expect("tempdir");
    failures_count_together(sqlite_throttles(dir.path()));
    parallel_reservations_stay_under_the_limit(sqlite_throttles(dir.path()));
}

#[test]
fn throttle_counters_in_one_redis_are_shared() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    failures_count_together(redis_throttles(two_pools(&redis)));
    parallel_reservations_stay_under_the_limit(redis_throttles(two_pools(&redis)));
}

#[test]
fn throttle_counters_in_one_redis_cluster_are_shared() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    failures_count_together(redis_throttles(two_cluster_pools(&cluster)));
    parallel_reservations_stay_under_the_limit(redis_throttles(two_cluster_pools(&cluster)));
}

/// The Lua script decides as the Rust policy does (the unit tests run the policy over memory and
/// SQLite): delays double up to the window, the wide keys allow four times as many, the
/// user-wide count holds back only a pair that has failed, a known device is apart, attempts
/// leave after the window, and an abandoned attempt does not count.
#[test]
fn the_redis_script_keeps_the_policy() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let [p, _] = two_pools(&redis);
    let t = LoginThrottle::with_counters(
        2,
        Duration::from_secs(60),
        Box::new(RedisCounters::new(p, PREFIX)),
    );
    let secs = Duration::from_secs;
    // Doubling delays.
    for _ in 0..2 {
        let _ = t
            .reserve_login("ann", from("1.1.1.1"), at(0))
            .expect("free");
    }
    assert_eq!(
        wait_of(t.reserve_login("ann", from("1.1.1.1"), at(0))),
        Some(secs(1))
    );
    let _ = t
        .reserve_login("ann", from("1.1.1.1"), at(1))
        .expect("after 1 s");
    assert_eq!(
        wait_of(t.reserve_login("ann", from("1.1.1.1"), at(1))),
        Some(secs(2))
    );
    // Capped at the window: 2 free, then 1+2+4+8+16+32 s, then 60 s, never more.
    let mut now = 3;
    let mut longest = Duration::ZERO;
    for _ in 0..8 {
        match t.reserve_login("ann", from("1.1.1.1"), at(now)) {
            Ok(_) => {}
            Err(r) => {
                let w = r.wait().expect("a wait");
                longest = longest.max(w);
                now += w.as_secs();
            }
        }
    }
    assert!(longest <= secs(60), "{longest:?}");
    // An abandoned attempt does not count.
    let a = t.reserve_login("ben", from("2.2.2.2"), at(0)).expect("1");
    t.abandoned(a);
    let _ = t
        .reserve_login("ben", from("2.2.2.2"), at(0))
        .expect("1 again");
    let _ = t.reserve_login("ben", from("2.2.2.2"), at(0)).expect("2");
    assert!(wait_of(t.reserve_login("ben", from("2.2.2.2"), at(0))).is_some());
    // Attempts leave after the window: at 60 s the two at 0 are gone.
    let _ = t
        .reserve_login("ben", from("2.2.2.2"), at(60))
        .expect("in the window: 1");
    assert_eq!(
        wait_of(t.reserve_login("ben", from("2.2.2.2"), at(60))),
        None
    );
    // User-wide: 8 addresses fail once each; an address that guessed waits, a new one does not,
    // nor a known device.
    for i in 0..8 {
        let _ = t
            .reserve_login("cat", from(&format!("10.0.0.{i}")), at(0))
            .expect("free");
    }
    assert!(wait_of(t.reserve_login("cat", from("10.0.0.0"), at(0))).is_some());
    assert_eq!(
        wait_of(t.reserve_login("cat", from("9.9.9.9"), at(0))),
        None
    );
    let device = Origin {
        address: Some("10.0.0.0"),
        device: Some("d1"),
    };
    assert_eq!(wait_of(t.reserve_login("cat", device, at(0))), None);
    // One address across ids (4 x 2 free), and its registrations wait with it.
    for i in 0..8 {
        let _ = t.reserve_login(&format!("id{i}"), from("3.3.3.3"), at(0));
    }
    assert!(wait_of(t.reserve_login("other", from("3.3.3.3"), at(0))).is_some());
    assert!(wait_of(t.reserve_registration(Some("3.3.3.3"), at(0))).is_some());
    for _ in 0..8 {
        assert_eq!(
            wait_of(t.reserve_registration(Some("4.4.4.4"), at(0))),
            None
        );
    }
    assert_eq!(
        wait_of(t.reserve_registration(Some("4.4.4.4"), at(0))),
        Some(secs(1))
    );
}

#[test]
fn a_throttle_whose_redis_is_down_refuses_rather_than_lets_through() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let [p, _] = two_pools(&redis);
    let t = throttle(RedisCounters::new(p, PREFIX));
    let _ = t.reserve_login("dan", from("1.2.3.4"), at(0)).expect("up");
    redis.kill();
    assert!(matches!(
        t.reserve_login("dan", from("1.2.3.4"), at(0)),
        Err(Refused::Unavailable(_))
    ));
}

// ----- locks -----

fn digest() -> [u8; 32] {
    [7; 32]
}

fn lock_sets(across: impl Fn() -> Across) -> [Arc<SessionLocks>; 2] {
    [(); 2].map(|_| Arc::new(SessionLocks::new(across())))
}

/// Requests of one session, half through each lock set, each reading a shared counter, pausing,
/// and writing it back plus one: any two running at once lose an update.
async fn counter_after_parallel_requests(sets: [Arc<SessionLocks>; 2]) -> u64 {
    const REQUESTS: u64 = 20;
    let counter = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (locks, counter) = (sets[(i % 2) as usize].clone(), counter.clone());
            actix_web::rt::spawn(async move {
                let held = locks.lock(digest()).await.expect("lock within its timeout");
                let seen = counter.load(Ordering::SeqCst);
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
                counter.store(seen + 1, Ordering::SeqCst);
                held.release().await;
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    counter.load(Ordering::SeqCst)
}

#[actix_web::test]
async fn requests_of_one_session_through_two_servers_run_one_at_a_time() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Without a lock across processes (what each server had before), updates are lost: the
    // counter shows the test can see a race.
    let lost = counter_after_parallel_requests(lock_sets(|| Across::None)).await;
    assert!(
        lost < 20,
        "two process-only lock sets let requests overlap: {lost}"
    );
    let url = redis.url();
    let sets =
        lock_sets(|| Across::Engine(EngineLock::new(RedisLocks::new(pool(&url, vec![]), PREFIX))));
    assert_eq!(counter_after_parallel_requests(sets).await, 20);
    let keys: Vec<String> =
        common::engines::query(&redis.url(), &["KEYS", "session:lock:*"]).expect("keys");
    assert!(keys.is_empty(), "every lock released: {keys:?}");
}

#[actix_web::test]
async fn a_lock_left_by_a_dead_server_expires_and_is_taken_over() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let short = |wait| {
        EngineLock::with_timing(
            RedisLocks::new(pool(&url, vec![]), PREFIX),
            Duration::from_secs(1),
            wait,
        )
    };
    let dead = SessionLocks::new(Across::Engine(short(Duration::from_secs(5))));
    let held = dead.lock(digest()).await.expect("free lock");
    assert!(held.across_processes());
    // The server dies holding it: nothing releases it.
    std::mem::forget(held);
    let started = std::time::Instant::now();
    let alive = SessionLocks::new(Across::Engine(short(Duration::from_secs(5))));
    let taken = alive.lock(digest()).await.expect("taken over");
    assert!(taken.across_processes(), "taken over after the expiry");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    taken.release().await;
    // Waiting is bounded: behind a lock that outlives the wait, a request is refused (503),
    // never left waiting.
    let holder = SessionLocks::new(Across::Engine(EngineLock::with_timing(
        RedisLocks::new(pool(&url, vec![]), PREFIX),
        Duration::from_secs(30),
        Duration::from_secs(1),
    )));
    let _held = holder.lock(digest()).await.expect("free lock");
    let other = SessionLocks::new(Across::Engine(short(Duration::from_secs(1))))
        .with_timeout(Duration::from_millis(500));
    let waited = std::time::Instant::now();
    assert!(other.lock(digest()).await.is_err());
    // Well short of the holder's 30 s: a wait that ignored its bound would show.
    assert!(
        waited.elapsed() < Duration::from_secs(10),
        "{:?}",
        waited.elapsed()
    );
}

/// `lock = true` with `type = "redis"`: two server processes sharing nothing but the Redis (and
/// the secret key), 50 parallel visits of one session split between them, every increment kept.
#[test]
fn lock_serializes_one_session_across_two_redis_servers() {
    use common::{server_config, ServerProcess};
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let key = root.path().join("secret.key");
    let [(config_a, addr_a), (config_b, addr_b)] = ["a", "b"].map(|name| {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        let session = format!(
            "type = \"redis\"\nlock = true\nlock_timeout = 60\nsecret_key_file = {key:?}\n\
             [session.redis]\nurl = \"{}\"",
            redis.url()
        );
        server_config(&dir, &session, "")
    });
    let a = ServerProcess::start(&config_a, addr_a);
    let b = ServerProcess::start(&config_b, addr_b);

    common::fifty_parallel_visits_all_count(addr_a, addr_b);
    let locks: Vec<String> =
        common::engines::query(&redis.url(), &["KEYS", "session:lock:*"]).expect("keys");
    assert!(locks.is_empty(), "every lock released: {locks:?}");
    drop((a, b));
}

#[actix_web::test]
async fn requests_of_one_session_through_two_memcached_servers_run_one_at_a_time() {
    let Some(mc) = common::engines::MemcachedServer::start() else {
        return;
    };
    let mut config = session_server::config::Config::defaults()
        .expect("defaults")
        .session
        .memcached;
    config.servers = vec![mc.server()];
    let sets = lock_sets(|| {
        let locks = MemcachedLocks::new(&config).expect("locks");
        Across::Engine(EngineLock::new(locks))
    });
    assert_eq!(counter_after_parallel_requests(sets).await, 20);
    let held = mc.command(&format!("mg session:lock:{} v", hex::encode(digest())));
    assert!(held.starts_with("EN"), "every lock released: {held:?}");
}
