//! One acceptance suite, run against every store type: what any `SessionStore` of ours must do.

use std::collections::HashMap;
use std::time::Duration;

use actix_session::storage::{SaveError, SessionKey, SessionStore};
use session_server::store::{id, FileSessionStore, FileStoreOptions, MemorySessionStore};

type State = HashMap<String, String>;

fn state(pairs: &[(&str, &str)]) -> State {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ttl(secs: i64) -> time::Duration {
    time::Duration::seconds(secs)
}

/// What `load` returns, without the store's reserved keys (checked on their own below).
async fn load(store: &impl SessionStore, k: &SessionKey) -> Option<State> {
    let mut state = store.load(k).await.expect("load")?;
    state.retain(|key, _| !key.starts_with('$'));
    Some(state)
}

fn key(s: &str) -> SessionKey {
    SessionKey::try_from(s.to_owned()).expect("key")
}

pub async fn load_of_unknown_or_malformed_keys_is_none(store: &impl SessionStore) {
    for k in [
        "A".repeat(43),
        "../../etc/passwd".to_owned(),
        "x".repeat(4000),
        "short".to_owned(),
    ] {
        assert_eq!(load(store, &key(&k)).await, None, "{k}");
        store
            .update_ttl(&key(&k), &ttl(60))
            .await
            .expect("update_ttl of nothing is fine");
        store
            .delete(&key(&k))
            .await
            .expect("delete of nothing is fine");
    }
}

pub async fn save_then_load_round_trips_json_values(store: &impl SessionStore) {
    let s = state(&[
        ("user_id", "\"alice\""),
        ("visits", "3"),
        ("nested", "{\"a\":[1,2,null]}"),
    ]);
    let k = store.save(s.clone(), &ttl(60)).await.expect("save");
    assert!(id::is_well_formed(k.as_ref()));
    let back = load(store, &k).await.expect("present");
    let parsed = |m: &State| -> HashMap<String, serde_json::Value> {
        m.iter()
            .map(|(k, v)| (k.clone(), serde_json::from_str(v).expect("json")))
            .collect()
    };
    assert_eq!(parsed(&back), parsed(&s));
}

pub async fn non_json_values_are_refused(store: &impl SessionStore) {
    let err = store
        .save(state(&[("k", "not json")]), &ttl(60))
        .await
        .expect_err("refused");
    assert!(matches!(err, SaveError::Serialization(_)));
}

pub async fn ids_are_fresh_and_distinct(store: &impl SessionStore) {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let k = store
            .save(state(&[("n", "1")]), &ttl(60))
            .await
            .expect("save");
        assert!(seen.insert(k.as_ref().to_owned()), "id reused");
    }
}

pub async fn update_keeps_the_key_and_replaces_the_state(store: &impl SessionStore) {
    let k = store
        .save(state(&[("a", "1")]), &ttl(60))
        .await
        .expect("save");
    let k2 = store
        .update(key(k.as_ref()), state(&[("b", "2")]), &ttl(60))
        .await
        .expect("update");
    assert_eq!(k.as_ref(), k2.as_ref());
    assert_eq!(load(store, &k).await, Some(state(&[("b", "2")])));
}

pub async fn a_deleted_session_is_gone_and_an_update_saves_it_under_a_new_key(
    store: &impl SessionStore,
) {
    let k = store
        .save(state(&[("a", "1")]), &ttl(60))
        .await
        .expect("save");
    store.delete(&k).await.expect("delete");
    assert_eq!(load(store, &k).await, None);
    let k2 = store
        .update(key(k.as_ref()), state(&[("a", "2")]), &ttl(60))
        .await
        .expect("update");
    assert_ne!(k.as_ref(), k2.as_ref(), "the deleted id must not come back");
    assert_eq!(load(store, &k).await, None);
    assert_eq!(load(store, &k2).await, Some(state(&[("a", "2")])));
    // The same for an id that never existed.
    let k3 = store
        .update(key(&"Q".repeat(43)), state(&[("a", "3")]), &ttl(60))
        .await
        .expect("update");
    assert_ne!(k3.as_ref(), "Q".repeat(43));
}

pub async fn sessions_expire_and_update_ttl_extends_them(store: &impl SessionStore) {
    let short = store
        .save(state(&[("a", "1")]), &ttl(1))
        .await
        .expect("save");
    let kept = store
        .save(state(&[("a", "2")]), &ttl(1))
        .await
        .expect("save");
    store.update_ttl(&kept, &ttl(5)).await.expect("extend");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(load(store, &short).await, None, "expired");
    assert_eq!(
        load(store, &kept).await,
        Some(state(&[("a", "2")])),
        "extended"
    );
    // Extending an expired session does not revive it.
    store
        .update_ttl(&short, &ttl(60))
        .await
        .expect("update_ttl");
    assert_eq!(load(store, &short).await, None);
}

pub async fn a_loaded_session_carries_its_expiry(store: &impl SessionStore) {
    let before = time::OffsetDateTime::now_utc();
    let k = store
        .save(state(&[("a", "1")]), &ttl(60))
        .await
        .expect("save");
    let loaded = store.load(&k).await.expect("load").expect("present");
    let text: String = serde_json::from_str(&loaded["$expires_at"]).expect("a JSON string");
    let at = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    assert!(at >= before + ttl(60) && at <= before + ttl(62), "{at}");
}

macro_rules! conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;
            conformance!(@tests $make;
                load_of_unknown_or_malformed_keys_is_none,
                save_then_load_round_trips_json_values,
                non_json_values_are_refused,
                ids_are_fresh_and_distinct,
                update_keeps_the_key_and_replaces_the_state,
                a_deleted_session_is_gone_and_an_update_saves_it_under_a_new_key,
                sessions_expire_and_update_ttl_extends_them,
                a_loaded_session_carries_its_expiry);
        }
    };
    (@tests $make:expr; $($test:ident),*) => {
        $(
            #[actix_web::test]
            async fn $test() {
                #[allow(unused_variables)]
                let (store, guard) = $make;
                super::$test(&store).await;
            }
        )*
    };
}

fn file_store() -> (FileSessionStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSessionStore::open(
        FileStoreOptions::new(dir.path().join("sessions")).cleanup_interval(None),
    )
    .expect("open");
    (store, dir)
}

fn fsync_file_store() -> (FileSessionStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = FileStoreOptions::new(dir.path().join("sessions"))
        .cleanup_interval(None)
        .durability(session_server::atomic::Durability::Fsync);
    (FileSessionStore::open(options).expect("open"), dir)
}

conformance!(filesystem, file_store());
conformance!(filesystem_fsync, fsync_file_store());
conformance!(memory, (MemorySessionStore::new(None), ()));

#[actix_web::test]
async fn sweepers_delete_only_expired_sessions() {
    let (file, _dir) = file_store();
    let memory = MemorySessionStore::new(None);
    for _ in 0..3 {
        file.save(state(&[("a", "1")]), &ttl(1))
            .await
            .expect("save");
        memory
            .save(state(&[("a", "1")]), &ttl(1))
            .await
            .expect("save");
    }
    let kept_file = file
        .save(state(&[("a", "2")]), &ttl(60))
        .await
        .expect("save");
    let kept_memory = memory
        .save(state(&[("a", "2")]), &ttl(60))
        .await
        .expect("save");
    assert_eq!(memory.len(), 4);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    assert_eq!(file.sweep().expired, 3);
    let left: Vec<_> = std::fs::read_dir(file.dir())
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    assert_eq!(left.len(), 1);
    assert!(file.path_of(kept_file.as_ref()).exists());

    assert_eq!(memory.sweep(), 3);
    assert_eq!(memory.len(), 1);
    assert!(!memory.is_empty());
    assert_eq!(
        load(&memory, &kept_memory).await,
        Some(state(&[("a", "2")]))
    );
}
