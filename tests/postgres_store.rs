//! What the conformance suite cannot see of the postgres store, against a real PostgreSQL: every
//! time is the database's, the sweeper deletes in batches beside live writers, parallel writers
//! leave one whole record, and a row that is not a record is set aside.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use common::engines::PostgresServer;
use session_server::config::Config;
use session_server::engines::postgres::Postgres;
use session_server::engines::postgres::{PostgresSessionStore, SWEEP_BATCH};
use session_server::store::{SessionBackend, SessionId, SessionState};

fn store(pg: &PostgresServer) -> (PostgresSessionStore, String) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let table = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let mut config = Config::defaults().expect("defaults").session.postgres;
    config.url = pg.url();
    let db = Postgres::new(&config).expect("pool");
    (PostgresSessionStore::new(db, &table, 64 * 1024), table)
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<HashMap<_, _>>()
}

fn minutes(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

#[actix_web::test]
async fn a_session_ends_by_the_databases_clock_and_its_record_says_so() {
    let Some(pg) = PostgresServer::start() else {
        return;
    };
    let (s, t) = store(&pg);
    let id = s
        .save(state(&[("user_id", "\"alice\"")]), &minutes(5))
        .await
        .expect("save");
    // The id is stored hashed; the record's times are the row's, from the database's clock.
    let row = pg.psql(&format!(
        "SELECT id, record->>'expires_at' = to_char(expires_at AT TIME ZONE 'UTC', \
         'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
         expires_at - created_at BETWEEN interval '5 minutes' AND interval '5 minutes 1 second' \
         FROM {t}"
    ));
    // Created at the whole second, ending at one rounded up, as in the other stores.
    assert_eq!(row.trim(), format!("{}|t|t", id.stem()));
    // Ended by the database's clock, whatever the record or this process's clock says.
    pg.psql(&format!(
        "UPDATE {t} SET expires_at = now() - interval '1 second'"
    ));
    assert_eq!(s.load(&id).await.expect("load"), None);
    assert_eq!(s.expires_at(&id).await.expect("expires_at"), None);
    let late = s
        .update(id.clone(), state(&[("n", "1")]), &minutes(5))
        .await
        .expect("update");
    assert_ne!(late, id, "an expired row is not written: deletion wins");
    assert_eq!(s.delete_expired().await.expect("sweep"), 1);
}

#[actix_web::test]
async fn sweeps_delete_expired_rows_in_batches_beside_live_writers() {
    let Some(pg) = PostgresServer::start() else {
        return;
    };
    let (s, t) = store(&pg);
    s.check_health().await.expect("creates the table");
    let expired = SWEEP_BATCH * 2 + 17;
    pg.psql(&format!(
        "INSERT INTO {t} SELECT md5(n::text) || md5(n::text), now() - interval '1 hour', \
         now() - interval '1 minute', '{{}}'::jsonb FROM generate_series(1, {expired}) n"
    ));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut ids: Vec<SessionId> = Vec::new();
                for n in 0..25 {
                    let st = state(&[("n", &n.to_string())]);
                    ids.push(s.save(st, &minutes(5)).await.expect("save"));
                }
                ids
            })
        })
        .collect();
    let swept = s.delete_expired().await.expect("sweep");
    let mut live = Vec::new();
    for w in writers {
        live.extend(w.await.expect("writer"));
    }
    assert_eq!(swept, u64::try_from(expired).expect("count"));
    assert_eq!(s.list().await.expect("list").len(), live.len());
    for id in &live {
        assert!(s.load(id).await.expect("load").is_some());
    }
}

#[actix_web::test]
async fn parallel_writers_leave_one_whole_record_and_a_logout_is_final() {
    let Some(pg) = PostgresServer::start() else {
        return;
    };
    let (s, _) = store(&pg);
    let id = s
        .save(state(&[("n", "0")]), &minutes(5))
        .await
        .expect("save");
    let writes: Vec<_> = (0..30)
        .map(|n: usize| {
            let (s, id) = (s.clone(), id.clone());
            tokio::spawn(async move {
                let pad = format!("\"{}\"", "x".repeat(100 + n * 31));
                s.update(
                    id,
                    state(&[("n", &n.to_string()), ("pad", &pad)]),
                    &minutes(5),
                )
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
        100 + n * 31 + 2,
        "one writer's whole state"
    );
    s.delete(&id).await.expect("logout");
    let late = s
        .update(id.clone(), state(&[("n", "99")]), &minutes(5))
        .await
        .expect("late write");
    assert_ne!(late, id);
    assert_eq!(s.load(&id).await.expect("load"), None);
}

#[actix_web::test]
async fn a_row_that_is_not_a_record_is_set_aside() {
    let Some(pg) = PostgresServer::start() else {
        return;
    };
    let (s, t) = store(&pg);
    let id = s
        .save(state(&[("n", "1")]), &minutes(5))
        .await
        .expect("save");
    pg.psql(&format!(
        "UPDATE {t} SET record = '{{\"not\": \"a record\"}}'"
    ));
    assert_eq!(s.load(&id).await.expect("load"), None);
    let counts = pg.psql(&format!(
        "SELECT (SELECT count(*) FROM {t}), (SELECT count(*) FROM {t}_corrupt)"
    ));
    assert_eq!(counts.trim(), "0|1");
}
