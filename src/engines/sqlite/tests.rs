//! What the conformance suite cannot see of the sqlite store: how rows are named and kept, the
//! corrupt-row quarantine, batched sweeping beside live writers, and two handles on one file (as
//! two processes would have) sharing sessions and their order.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn store(dir: &tempfile::TempDir) -> SqliteSessionStore {
    SqliteSessionStore::open(&dir.path().join("s.db"), Duration::from_secs(5), 64 * 1024)
        .expect("open")
}

fn raw(dir: &tempfile::TempDir) -> Connection {
    Connection::open(dir.path().join("s.db")).expect("raw connection")
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<HashMap<_, _>>()
}

#[actix_web::test]
async fn rows_are_named_by_the_ids_digest_and_hold_the_files_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(&dir);
    let id = s
        .save(
            state(&[("user_id", "\"alice\"")]),
            &time::Duration::minutes(5),
        )
        .await
        .expect("save");
    let (stem, record): (String, String) = raw(&dir)
        .query_row("SELECT id, record FROM sessions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("one row");
    assert_eq!(stem, id.stem());
    assert!(!record.contains(id.as_str()), "the id is never stored");
    let parsed = SessionRecord::from_bytes(record.as_bytes()).expect("a session file's JSON");
    assert_eq!(parsed.data["user_id"], "alice");
}

#[actix_web::test]
async fn a_row_that_is_not_a_record_is_set_aside_and_is_no_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(&dir);
    let id = s
        .save(state(&[("n", "1")]), &time::Duration::minutes(5))
        .await
        .expect("save");
    raw(&dir)
        .execute("UPDATE sessions SET record = 'not json'", [])
        .expect("corrupt it");
    assert_eq!(s.load(&id).await.expect("load"), None);
    let (live, aside): (i64, i64) = raw(&dir)
        .query_row(
            "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM sessions_corrupt)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counts");
    assert_eq!((live, aside), (0, 1));
}

#[actix_web::test]
async fn sweeps_delete_expired_rows_in_batches_while_writers_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(&dir);
    // More expired rows than one batch, written straight into the table.
    let expired = i64::from(SWEEP_BATCH) * 3 + 7;
    {
        let mut db = raw(&dir);
        let tx = db.transaction().expect("tx");
        for n in 0..expired {
            tx.execute(
                "INSERT INTO sessions VALUES (printf('%064x', ?1), 0, 1, '{}')",
                params![n],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    }
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..50 {
                    let id = s
                        .save(state(&[("n", &n.to_string())]), &time::Duration::minutes(5))
                        .await
                        .expect("save");
                    ids.push(id);
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
    for id in &live {
        assert!(s.load(id).await.expect("load").is_some(), "live rows stay");
    }
    assert_eq!(s.list().await.expect("list").len(), live.len());
}

#[actix_web::test]
async fn two_handles_on_one_file_share_sessions_and_parallel_writes_end_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (store(&dir), store(&dir));
    let id = a
        .save(state(&[("n", "0")]), &time::Duration::minutes(5))
        .await
        .expect("save");
    let writes: Vec<_> = (0..40)
        .map(|n| {
            let s = if n % 2 == 0 { a.clone() } else { b.clone() };
            let id = id.clone();
            tokio::spawn(async move {
                let big = "x".repeat(200 + n * 37);
                s.update(
                    id,
                    state(&[("n", &n.to_string()), ("pad", &format!("\"{big}\""))]),
                    &time::Duration::minutes(5),
                )
                .await
                .expect("update")
            })
        })
        .collect();
    for w in writes {
        assert_eq!(w.await.expect("task"), id, "a live session keeps its id");
    }
    let seen = b.load(&id).await.expect("load").expect("live");
    let n: usize = seen["n"].parse().expect("n");
    assert_eq!(
        seen["pad"].len(),
        200 + n * 37 + 2,
        "one writer's whole state"
    );
    // A logout through one handle is final for the other.
    a.delete(&id).await.expect("delete");
    let late = b
        .update(
            id.clone(),
            state(&[("n", "99")]),
            &time::Duration::minutes(5),
        )
        .await
        .expect("late update");
    assert_ne!(late, id);
    assert_eq!(b.load(&id).await.expect("load"), None);
}
