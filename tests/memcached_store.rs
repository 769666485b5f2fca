//! What the conformance suite cannot see of the memcached store, against a real memcached:
//! lifetimes past memcached's 30-day limit for relative times are kept, and parallel writers to
//! one session (compare-and-swap) each leave a whole record.

mod common;

use std::collections::HashMap;

use common::engines::MemcachedServer;
use session_server::config::Config;
use session_server::engines::memcached::MemcachedSessionStore;
use session_server::store::{SessionBackend, SessionState};

fn store(mc: &MemcachedServer) -> MemcachedSessionStore {
    let mut config = Config::defaults().expect("defaults").session.memcached;
    config.servers = vec![mc.server()];
    MemcachedSessionStore::new(&config, 64 * 1024).expect("store")
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<HashMap<_, _>>()
}

#[actix_web::test]
async fn a_lifetime_of_a_year_is_kept_not_read_as_a_date_in_1970() {
    let Some(mc) = MemcachedServer::start() else {
        return;
    };
    let s = store(&mc);
    let year = time::Duration::days(365);
    let id = s.save(state(&[("n", "1")]), &year).await.expect("save");
    let left = s.expires_at(&id).await.expect("expires_at").expect("live")
        - time::OffsetDateTime::now_utc();
    assert!(left > year - time::Duration::minutes(1), "{left}");
    s.update_ttl(&id, &time::Duration::days(40))
        .await
        .expect("touch");
    let left = s.expires_at(&id).await.expect("expires_at").expect("live")
        - time::OffsetDateTime::now_utc();
    // memcached answers the time left in whole seconds of its own clock, which ticks once a
    // second and may be up to a second behind this one, and the store rounds a lifetime up to a
    // whole second: 40 days may read as up to two seconds more (seen once in CI as 40d + 1s).
    assert!(
        left > time::Duration::days(40) - time::Duration::minutes(1)
            && left <= time::Duration::days(40) + time::Duration::seconds(2),
        "{left}"
    );
    assert!(s.load(&id).await.expect("load").is_some());
}

#[actix_web::test]
async fn parallel_writers_leave_one_whole_record() {
    let Some(mc) = MemcachedServer::start() else {
        return;
    };
    let s = store(&mc);
    let minutes = time::Duration::minutes(5);
    let id = s.save(state(&[("n", "0")]), &minutes).await.expect("save");
    let writes: Vec<_> = (0..24)
        .map(|n: usize| {
            let (s, id) = (s.clone(), id.clone());
            tokio::spawn(async move {
                let pad = format!("\"{}\"", "x".repeat(100 + n * 41));
                s.update(id, state(&[("n", &n.to_string()), ("pad", &pad)]), &minutes)
                    .await
                    .expect("update")
            })
        })
        .collect();
    for w in writes {
        assert_eq!(w.await.expect("task"), id);
    }
    let seen = s.load(&id).await.expect("load").expect("live");
    let n: usize = seen["n"].parse().expect("n");
    assert_eq!(
        seen["pad"].len(),
        100 + n * 41 + 2,
        "one writer's whole state"
    );
}
