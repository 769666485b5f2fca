//! One acceptance suite, run against every store type: what any `SessionStore` of ours must do.
//! Like actix-session's acceptance suite, a test may need a capability not every type has
//! (sessions kept on the server, listing): the list of tests in [`conformance!`] says which
//! ([`Need`]), and a test whose store type lacks it is skipped through [`runs`], which prints one
//! `SKIPPED <test> for <type>: needs <capability>` line and records it. The skips are a
//! failure when they change: `the_capability_skips_are_exactly_the_expected_ones` checks them
//! against [`EXPECTED_SKIPS`].

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use actix_session::storage::{SaveError, SessionKey, SessionStore};
use common::engines::{
    current_test, MemcachedServer, PostgresServer, RedisCluster, RedisSentinels, RedisServer,
};
use session_server::engines::filesystem::CACHE_BYTES;
use session_server::engines::filesystem::{FileSessionStore, FileStoreOptions};
use session_server::engines::memcached::MemcachedSessionStore;
use session_server::engines::memory::MemorySessionStore;
use session_server::engines::postgres::PostgresSessionStore;
use session_server::engines::redis::config::{SentinelConfig, TlsFiles};
use session_server::engines::redis::{EngineOptions, RedisOptions, RedisSessionStore};
use session_server::engines::sqlite::SqliteSessionStore;
use session_server::store::backend::{SessionSummary, LIST_BATCH};
use session_server::store::{id, CachingStore, Capabilities, Clock, Store};

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

thread_local! {
    /// The clock the current test's store judges expiry by, when it judges expiry itself (a
    /// test runs on one thread, from making its store to its end).
    static CLOCK: std::cell::RefCell<Option<Clock>> = const { std::cell::RefCell::new(None) };
}

/// A clock for the store the current test is making, which [`pass`] then moves.
fn clock() -> Clock {
    let clock = Clock::adjustable();
    CLOCK.with(|slot| *slot.borrow_mut() = Some(clock.clone()));
    clock
}

/// `time` passes for the current test's store: its clock moves at once where the store judges
/// expiry by one ([`clock`]); an engine with its own clock is waited out in real time.
async fn pass(time: Duration) {
    match CLOCK.with(|slot| slot.borrow().clone()) {
        Some(clock) => clock.advance(time).expect("an adjustable clock"),
        None => tokio::time::sleep(time).await,
    }
}

/// What `load` returns: exactly the data handlers stored, nothing of the store's.
async fn load(store: &impl SessionStore, k: &SessionKey) -> Option<State> {
    store.load(k).await.expect("load")
}

/// What the conformance suite needs besides actix-session's interface.
#[allow(async_fn_in_trait)]
pub trait Conformance: SessionStore {
    async fn expiry(&self, key: &str) -> Option<time::OffsetDateTime>;
    async fn start(&self, key: &str) -> Option<time::OffsetDateTime>;
    fn capabilities(&self) -> Capabilities;
}

impl Conformance for Store {
    async fn expiry(&self, key: &str) -> Option<time::OffsetDateTime> {
        self.expires_at(key).await.expect("expires_at")
    }

    async fn start(&self, key: &str) -> Option<time::OffsetDateTime> {
        self.created_at(key).await.expect("created_at")
    }

    fn capabilities(&self) -> Capabilities {
        Store::capabilities(self)
    }
}

/// The size limit every store in this suite is built with.
const LIMIT: usize = 1024;

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

pub async fn save_then_load_round_trips_json_values(store: &impl Conformance) {
    let s = state(&[
        ("user_id", "\"alice\""),
        ("visits", "3"),
        ("nested", "{\"a\":[1,2,null]}"),
    ]);
    let k = store.save(s.clone(), &ttl(60)).await.expect("save");
    // A server-side store's key is a session id; a cookie store's is the session itself.
    assert_eq!(
        id::is_well_formed(k.as_ref()),
        store.capabilities().server_side
    );
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

pub async fn update_keeps_the_key_and_replaces_the_state(store: &impl Conformance) {
    let k = store
        .save(state(&[("a", "1")]), &ttl(60))
        .await
        .expect("save");
    let k2 = store
        .update(key(k.as_ref()), state(&[("b", "2")]), &ttl(60))
        .await
        .expect("update");
    assert_eq!(load(store, &k2).await, Some(state(&[("b", "2")])));
    if store.capabilities().server_side {
        assert_eq!(k.as_ref(), k2.as_ref());
        assert_eq!(load(store, &k).await, Some(state(&[("b", "2")])));
    }
}

pub async fn an_ended_session_stays_ended_when_a_late_request_writes_it(store: &impl Conformance) {
    let k = store
        .save(state(&[("user_id", "\"alice\"")]), &ttl(60))
        .await
        .expect("save");
    store.delete(&k).await.expect("delete");
    assert_eq!(load(store, &k).await, None);
    // A request that loaded the session before the logout now writes it: deletion wins.
    let k2 = store
        .update(
            key(k.as_ref()),
            state(&[("user_id", "\"alice\"")]),
            &ttl(60),
        )
        .await
        .expect("update");
    assert_ne!(k.as_ref(), k2.as_ref(), "the deleted id must not come back");
    assert_eq!(load(store, &k).await, None);
    assert_eq!(load(store, &k2).await, None, "nor its state under a new id");
    store.update_ttl(&k, &ttl(60)).await.expect("update_ttl");
    assert_eq!(load(store, &k).await, None);
}

pub async fn keys_starting_with_a_dollar_are_the_users(store: &impl SessionStore) {
    let s = state(&[("$cached", "true"), ("$expires_at", "\"soon\""), ("$", "1")]);
    let k = store.save(s.clone(), &ttl(60)).await.expect("save");
    assert_eq!(load(store, &k).await, Some(s.clone()));
    let k = store.update(k, s.clone(), &ttl(60)).await.expect("update");
    assert_eq!(load(store, &k).await, Some(s));
}

/// A state whose record, as the file store writes it, is exactly `size` bytes.
fn state_of_record_size(size: usize) -> State {
    let probe = |pad: usize| {
        let s = state(&[("pad", &format!("\"{}\"", "x".repeat(pad)))]);
        let now = time::OffsetDateTime::now_utc();
        let record =
            session_server::store::SessionRecord::new(&s, now, now, &ttl(60)).expect("record");
        (record.to_bytes(usize::MAX).expect("bytes").len(), s)
    };
    let (base, _) = probe(0);
    let (len, s) = probe(size - base);
    assert_eq!(len, size);
    s
}

pub async fn the_size_limit_is_the_records_json(store: &impl SessionStore) {
    let fits = store
        .save(state_of_record_size(LIMIT), &ttl(60))
        .await
        .expect("exactly the limit fits");
    assert!(matches!(
        store.save(state_of_record_size(LIMIT + 1), &ttl(60)).await,
        Err(SaveError::Serialization(_))
    ));
    assert!(store
        .update(fits, state_of_record_size(LIMIT + 1), &ttl(60))
        .await
        .is_err());
}

/// A request that loaded a live session and writes it after it expired (before any sweep): the
/// session has ended, as after a logout, whatever the store type.
pub async fn a_write_to_an_expired_unswept_session_ends_it(store: &impl Conformance) {
    // Two seconds, not one: the load must find it live even after a stall on a busy machine
    // (the engines that keep their own clock count in real time).
    let k = store
        .save(state(&[("a", "1")]), &ttl(2))
        .await
        .expect("save");
    assert!(load(store, &k).await.is_some());
    pass(Duration::from_millis(3100)).await;
    let k2 = store
        .update(key(k.as_ref()), state(&[("a", "2")]), &ttl(600))
        .await
        .expect("update");
    assert_ne!(k2.as_ref(), k.as_ref());
    assert_eq!(load(store, &k).await, None);
    assert_eq!(load(store, &k2).await, None);
}

/// Too large a write to a session that has ended: nothing is written, so nothing is refused.
pub async fn an_oversize_write_to_an_ended_session_just_ends(store: &impl Conformance) {
    let k = store
        .save(state(&[("a", "1")]), &ttl(60))
        .await
        .expect("save");
    store.delete(&k).await.expect("delete");
    let k2 = store
        .update(key(k.as_ref()), state_of_record_size(LIMIT + 1), &ttl(60))
        .await
        .expect("ended, not refused");
    assert_eq!(load(store, &k2).await, None);
}

pub async fn an_expired_unswept_session_is_not_extended(store: &impl Conformance) {
    let k = store
        .save(state(&[("a", "1")]), &ttl(1))
        .await
        .expect("save");
    pass(Duration::from_millis(2100)).await;
    // No load first: update_ttl itself must see that the session has ended.
    store.update_ttl(&k, &ttl(60)).await.expect("update_ttl");
    assert_eq!(load(store, &k).await, None);
}

/// Logouts racing requests that loaded the session before them: once a delete has returned, no
/// write of those requests brings the session back, under its id or a new one.
pub async fn logouts_racing_writes_never_resurrect(store: &impl Conformance) {
    for _ in 0..20 {
        let k = store
            .save(state(&[("visits", "0")]), &ttl(60))
            .await
            .expect("save");
        let writers = (0..8).map(|i| {
            let id = k.as_ref().to_owned();
            async move {
                let mut handed_out = Vec::new();
                for round in 0..4 {
                    let visits = (i * 10 + round).to_string();
                    let k2 = store
                        .update(key(&id), state(&[("visits", &visits)]), &ttl(60))
                        .await
                        .expect("update");
                    handed_out.push(k2.as_ref().to_owned());
                    tokio::task::yield_now().await;
                }
                handed_out
            }
        });
        let logout = async {
            tokio::task::yield_now().await;
            store.delete(&key(k.as_ref())).await.expect("delete");
        };
        let (handed_out, ()) =
            futures_util::future::join(futures_util::future::join_all(writers), logout).await;
        assert_eq!(load(store, &k).await, None, "the logged-out id");
        for id in handed_out.into_iter().flatten() {
            assert_eq!(load(store, &key(&id)).await, None, "an id handed out");
        }
    }
}

/// The names of what a store writes beside the session's data: the fields of the session
/// record (`src/store/record.rs`: `version`, `created_at`, `expires_at`, `ttl_seconds`, `data`),
/// taken from a record as serialized; for a store whose key is the session itself (the cookie
/// type), the fields of that key's payload too (the record's, and its `sid`).
fn bookkeeping_fields(store: &impl Conformance, key: &str) -> BTreeSet<String> {
    let now = time::OffsetDateTime::now_utc();
    let record = session_server::store::SessionRecord::new(&State::new(), now, now, &ttl(60))
        .expect("record");
    let mut fields: BTreeSet<String> = match serde_json::to_value(&record).expect("json") {
        serde_json::Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("a record is a JSON object, not {other}"),
    };
    assert!(fields.contains("expires_at"), "{fields:?}");
    if !store.capabilities().server_side {
        let payload: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(key).expect("the cookie type's key is its JSON payload");
        fields.extend(payload.keys().cloned());
    }
    fields
}

pub async fn the_store_knows_when_a_session_ends(store: &impl Conformance) {
    let before = time::OffsetDateTime::now_utc();
    let k = store
        .save(state(&[("a", "1")]), &ttl(60))
        .await
        .expect("save");
    let at = store.expiry(k.as_ref()).await.expect("live");
    assert!(at >= before + ttl(60) && at <= before + ttl(62), "{at}");
    // The store knows the end from its own bookkeeping, which never shows in the state.
    let loaded = load(store, &k).await.expect("live");
    for field in bookkeeping_fields(store, k.as_ref()) {
        assert!(
            !loaded.contains_key(&field),
            "the store's `{field}` in the state: {loaded:?}"
        );
    }
    assert_eq!(loaded, state(&[("a", "1")]));
    assert_eq!(store.expiry("../../etc/passwd").await, None);
    store.delete(&k).await.expect("delete");
    if store.capabilities().server_side {
        assert_eq!(store.expiry(k.as_ref()).await, None);
    }
}

pub async fn sessions_expire_and_update_ttl_extends_them(store: &impl Conformance) {
    // A cookie session's end moves when it is written (its key is the session): see
    // `update_keeps_the_key_and_replaces_the_state` and the cookie type's unit tests.
    // Two seconds: `kept` must still be live when it is extended, even after a stall.
    let short = store
        .save(state(&[("a", "1")]), &ttl(2))
        .await
        .expect("save");
    let kept = store
        .save(state(&[("a", "2")]), &ttl(2))
        .await
        .expect("save");
    store.update_ttl(&kept, &ttl(5)).await.expect("extend");
    pass(Duration::from_millis(3100)).await;
    // Asked before any load (which may delete what it finds ended): by the store's own clock.
    assert_eq!(store.expiry(short.as_ref()).await, None, "no end: ended");
    assert_eq!(store.start(short.as_ref()).await, None, "no start: ended");
    assert!(store.start(kept.as_ref()).await.is_some(), "extended");
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

/// A listing names live sessions by their digest, never by their id, and forgets ended ones.
pub async fn a_listing_shows_digests_never_ids(store: &Store) {
    let before = time::OffsetDateTime::now_utc();
    let kept = store
        .save(state(&[("a", "1")]), &ttl(60))
        .await
        .expect("save");
    let ended = store
        .save(state(&[("a", "2")]), &ttl(60))
        .await
        .expect("save");
    store.delete(&ended).await.expect("delete");
    let listed = store
        .server("a test of server-side sessions")
        .expect("server-side")
        .list()
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].stem, id::stem(&id::digest(kept.as_ref())));
    assert!(!listed[0].stem.contains(kept.as_ref()));
    let at = listed[0].expires_at;
    assert!(at >= before + ttl(60) && at <= before + ttl(62), "{at}");
}

/// A listing of more sessions than one batch holds comes in several batches, none much over
/// [`LIST_BATCH`], that name every live session saved (by 32 writers at once) and none deleted.
pub async fn a_listing_comes_in_batches(store: &Store) {
    use futures_util::{StreamExt, TryStreamExt};
    let saved: Vec<SessionKey> = futures_util::stream::iter(0..LIST_BATCH * 5 / 2)
        .map(|i| async move {
            store
                .save(state(&[("n", &i.to_string())]), &ttl(60))
                .await
                .expect("save")
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let (gone, kept) = saved.split_at(100);
    for key in gone {
        store.delete(key).await.expect("delete");
    }
    let batches: Vec<Vec<SessionSummary>> = store
        .server("a test of server-side sessions")
        .expect("server-side")
        .list_batches()
        .try_collect()
        .await
        .expect("list");
    assert!(batches.len() >= 2, "{} batches", batches.len());
    let largest = batches.iter().map(Vec::len).max().unwrap_or(0);
    assert!(largest <= 2 * LIST_BATCH, "a batch of {largest}");
    // Redis' SCAN may name a key twice while its table grows: counted once here.
    let listed: std::collections::HashSet<String> =
        batches.into_iter().flatten().map(|s| s.stem).collect();
    let expected: std::collections::HashSet<String> = kept
        .iter()
        .map(|k| id::stem(&id::digest(k.as_ref())))
        .collect();
    assert_eq!(listed, expected);
}

/// The operator's reads and deletes by digest: a live session's record as stored, nothing for an
/// unknown digest, and a removal that ends the session for the cookie that holds it.
pub async fn sessions_can_be_inspected_and_removed_by_digest(store: &Store) {
    let key = store
        .save(state(&[("user_id", "\"alice\"")]), &ttl(60))
        .await
        .expect("save");
    let digest = id::digest(key.as_ref());
    let record = store
        .server("a test of server-side sessions")
        .expect("server-side")
        .inspect(&digest)
        .await
        .expect("inspect")
        .expect("a record");
    assert_eq!(
        record.data.get("user_id"),
        Some(&serde_json::json!("alice"))
    );
    assert!(store
        .server("a test of server-side sessions")
        .expect("server-side")
        .inspect(&[7u8; 32])
        .await
        .expect("inspect")
        .is_none());
    // The page's panel asks when it began: the record's own start, however the store keeps it.
    assert_eq!(
        store.created_at(key.as_ref()).await.expect("start"),
        Some(record.created_at)
    );
    // Removed while other requests write it: deletion wins for all of them.
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            let key = SessionKey::try_from(key.as_ref().to_owned()).expect("key");
            actix_web::rt::spawn(async move {
                let _ = store
                    .update(key, state(&[("n", &n.to_string())]), &ttl(60))
                    .await;
            })
        })
        .collect();
    store
        .server("a test of server-side sessions")
        .expect("server-side")
        .remove(&digest)
        .await
        .expect("remove");
    for w in writers {
        w.await.expect("writer");
    }
    let after = load(store, &key).await;
    assert!(
        after.is_none(),
        "writes before the removal are removed with it, writes after it write nothing: {after:?}"
    );
    assert_eq!(
        store.created_at(key.as_ref()).await.expect("start"),
        None,
        "an ended session has no start"
    );
    store
        .server("a test of server-side sessions")
        .expect("server-side")
        .remove(&digest)
        .await
        .expect("removing twice is no error");
}

/// A capability a conformance test needs that not every store type has, named after the field
/// of [`Capabilities`] that declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// `server_side`: the session is kept on the server, so deleting it ends it for good and its
    /// key is an id (not the cookie type, whose key is the session itself).
    ServerSide,
    /// `can_list`: the store can list its sessions (not memcached, nor the cookie type).
    CanList,
}

impl Need {
    /// The [`Capabilities`] field, as the skip line prints it.
    pub fn name(self) -> &'static str {
        match self {
            Need::ServerSide => "server_side",
            Need::CanList => "can_list",
        }
    }

    fn met_by(self, capabilities: Capabilities) -> bool {
        match self {
            Need::ServerSide => capabilities.server_side,
            Need::CanList => capabilities.can_list,
        }
    }
}

/// The first of `needs` that a store type declaring `capabilities` lacks: the one rule for
/// whether a conformance test runs.
fn unmet(needs: &[Need], capabilities: Capabilities) -> Option<Need> {
    needs.iter().copied().find(|n| !n.met_by(capabilities))
}

/// Every capability skip this process has made: (store type, test, capability).
static SKIPS: Mutex<Vec<(String, String, &str)>> = Mutex::new(Vec::new());

/// Whether `test` runs for `store_type`, whose store declares `capabilities`. The only way a
/// conformance test is skipped: one `SKIPPED <test> for <type>: needs <capability>` line, in the
/// style of the engine skips of `common/engines.rs`, recorded in [`SKIPS`]. Unlike a missing
/// engine, a missing capability is never an error: `SESSION_SERVER_REQUIRE_ENGINES` does not
/// turn these into failures; the exact set is checked by
/// `the_capability_skips_are_exactly_the_expected_ones`.
fn runs(test: &str, store_type: &str, needs: &[Need], capabilities: Capabilities) -> bool {
    let Some(need) = unmet(needs, capabilities) else {
        return true;
    };
    // Straight to file descriptor 2: libtest captures `eprintln!` and shows it only for failures.
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test} for {store_type}: needs {}",
        need.name()
    );
    SKIPS
        .lock()
        .expect("skip record")
        .push((store_type.to_owned(), test.to_owned(), need.name()));
    false
}

/// The suite for one store type: module `$name`, one test per function below, each with the
/// capabilities it needs in brackets.
macro_rules! conformance {
    ($name:ident, $make:expr) => {
        pub mod $name {
            use super::*;
            conformance!(@tests $name, $make;
                load_of_unknown_or_malformed_keys_is_none [],
                save_then_load_round_trips_json_values [],
                non_json_values_are_refused [],
                ids_are_fresh_and_distinct [],
                update_keeps_the_key_and_replaces_the_state [],
                an_ended_session_stays_ended_when_a_late_request_writes_it [ServerSide],
                keys_starting_with_a_dollar_are_the_users [],
                the_size_limit_is_the_records_json [],
                an_expired_unswept_session_is_not_extended [ServerSide],
                sessions_can_be_inspected_and_removed_by_digest [ServerSide],
                a_write_to_an_expired_unswept_session_ends_it [ServerSide],
                an_oversize_write_to_an_ended_session_just_ends [ServerSide],
                logouts_racing_writes_never_resurrect [ServerSide],
                // A cookie session's end moves when it is written (its key is the session): see
                // `update_keeps_the_key_and_replaces_the_state` and the cookie type's unit tests.
                sessions_expire_and_update_ttl_extends_them [ServerSide],
                the_store_knows_when_a_session_ends [],
                a_listing_shows_digests_never_ids [CanList],
                a_listing_comes_in_batches [CanList]);
        }
    };
    (@tests $name:ident, $make:expr; $($test:ident [$($need:ident),*]),*) => {
        /// Every test of the suite, with the capabilities it needs.
        pub const TESTS: &[(&str, &[Need])] = &[$((stringify!($test), &[$(Need::$need),*])),*];

        /// The capabilities this type's store declares; `None` when its engine is not installed
        /// (after the harness's skip line).
        pub fn capabilities() -> Option<Capabilities> {
            let (store, _guard) = $make?;
            Some(store.capabilities())
        }

        $(
            #[actix_web::test]
            async fn $test() {
                // `None`: the engine is not installed, and the harness printed its skip line.
                CLOCK.with(|slot| slot.borrow_mut().take());
                #[allow(unused_variables)]
                let Some((store, guard)) = $make else {
                    return;
                };
                assert_eq!(
                    CLOCK.with(|slot| slot.borrow().is_some()),
                    store.capabilities().our_clock,
                    "a store that judges expiry by our clock is made with one, and only such"
                );
                let needs: &[Need] = &[$(Need::$need),*];
                if !runs(stringify!($test), stringify!($name), needs, store.capabilities()) {
                    return;
                }
                super::$test(&store).await;
            }
        )*
    };
}

/// Every store type of the suite: its module of tests, and [`STORE_TYPES`].
macro_rules! store_types {
    ($($name:ident: $make:expr),* $(,)?) => {
        $(conformance!($name, $make);)*

        /// Each store type's name, the capabilities its store declares, and its tests.
        type Capability = fn() -> Option<Capabilities>;
        const STORE_TYPES: &[(&str, Capability, &[(&str, &[Need])])] =
            &[$((stringify!($name), $name::capabilities, $name::TESTS)),*];
    };
}

fn file_store() -> (Store, tempfile::TempDir) {
    let (store, dir) = plain_file_store();
    (Store::new(CachingStore::new(store, CACHE_BYTES)), dir)
}

fn plain_file_store() -> (FileSessionStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileSessionStore::open(
        FileStoreOptions::new(dir.path().join("sessions"))
            .max_session_bytes(LIMIT)
            .clock(clock()),
    )
    .expect("open");
    (store, dir)
}

fn uncached_file_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = FileStoreOptions::new(dir.path().join("sessions"))
        .max_session_bytes(LIMIT)
        .io_threads(4)
        .clock(clock());
    (
        Store::new(FileSessionStore::open(options).expect("open")),
        dir,
    )
}

fn fsync_file_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = FileStoreOptions::new(dir.path().join("sessions"))
        .max_session_bytes(LIMIT)
        .durability(session_server::atomic::Durability::Fsync)
        .clock(clock());
    let store = FileSessionStore::open(options).expect("open");
    (Store::new(CachingStore::new(store, CACHE_BYTES)), dir)
}

fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteSessionStore::open_with_clock(
        &dir.path().join("sessions.db"),
        Duration::from_secs(5),
        LIMIT,
        clock(),
    )
    .expect("open");
    (Store::new(store), dir)
}

/// One engine process shared by the tests running at the same time (each with its own key
/// prefix), stopped when the last of them ends: statics are never dropped, so a process kept in
/// one would outlive the test binary.
fn shared<T>(slot: &Mutex<Weak<T>>, start: impl FnOnce() -> Option<T>) -> Option<Arc<T>> {
    let mut slot = slot.lock().expect("engine slot");
    if let Some(running) = slot.upgrade() {
        return Some(running);
    }
    let started = Arc::new(start()?);
    *slot = Arc::downgrade(&started);
    Some(started)
}

/// A key prefix no other test uses.
fn fresh_prefix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("t{n}:session:")
}

fn redis_store_at<G>(engine: EngineOptions, guard: G) -> (Store, G) {
    let options = RedisOptions::new(engine)
        .key_prefix(fresh_prefix())
        .max_session_bytes(LIMIT);
    let store = RedisSessionStore::new(options).expect("redis store");
    (Store::new(store), guard)
}

static REDIS: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
static POSTGRES: Mutex<Weak<PostgresServer>> = Mutex::new(Weak::new());
static CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
static REDIS_TLS: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
static CLUSTER_TLS: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
static SENTINELS: Mutex<Weak<RedisSentinels>> = Mutex::new(Weak::new());
static POSTGRES_TLS: Mutex<Weak<PostgresServer>> = Mutex::new(Weak::new());

/// A postgres store on its own table of the shared test database, reached by `url`.
fn postgres_store(url: impl Fn(&PostgresServer) -> String) -> Option<(Store, Arc<PostgresServer>)> {
    postgres_store_on(&POSTGRES, PostgresServer::start, url)
}

/// As [`postgres_store`], on the database of `slot`.
fn postgres_store_on(
    slot: &Mutex<Weak<PostgresServer>>,
    start: impl FnOnce() -> Option<PostgresServer>,
    url: impl Fn(&PostgresServer) -> String,
) -> Option<(Store, Arc<PostgresServer>)> {
    let server = shared(slot, start)?;
    let mut config = session_server::config::Config::defaults()
        .expect("defaults")
        .session
        .postgres;
    config.url = url(&server);
    let table = fresh_prefix().replace(':', "_");
    let db = session_server::engines::postgres::Postgres::new(&config).expect("pool");
    let store = PostgresSessionStore::new(db, &table, LIMIT);
    Some((Store::new(store), server))
}

/// A memcached store on its own server (memcached has no key prefix to list by, and a test may
/// flush nothing of another's).
fn memcached_store(server: Option<MemcachedServer>) -> Option<(Store, MemcachedServer)> {
    let server = server?;
    let mut config = session_server::config::Config::defaults()
        .expect("defaults")
        .session
        .memcached;
    config.servers = vec![server.server()];
    let store = MemcachedSessionStore::new(&config, LIMIT).expect("memcached store");
    Some((Store::new(store), server))
}

fn redis_store() -> Option<(Store, Arc<RedisServer>)> {
    let server = shared(&REDIS, RedisServer::start)?;
    Some(redis_store_at(EngineOptions::new(server.url()), server))
}

fn redis_unix_store() -> Option<(Store, Arc<RedisServer>)> {
    let server = shared(&REDIS, RedisServer::start)?;
    Some(redis_store_at(
        EngineOptions::new(server.unix_url()),
        server,
    ))
}

fn redis_cluster_store() -> Option<(Store, Arc<RedisCluster>)> {
    let cluster = shared(&CLUSTER, RedisCluster::start)?;
    Some(redis_store_at(
        EngineOptions::cluster(cluster.urls()),
        cluster,
    ))
}

fn ca_of(certs: &common::engines::TestCerts) -> TlsFiles {
    TlsFiles {
        ca: Some(certs.path("ca.pem")),
        ..TlsFiles::default()
    }
}

fn redis_tls_store() -> Option<(Store, Arc<RedisServer>)> {
    let server = shared(&REDIS_TLS, || {
        RedisServer::start_tls_for(&current_test(), "server")
    })?;
    let mut options = EngineOptions::new(server.tls_url());
    options.tls = ca_of(server.certs());
    Some(redis_store_at(options, server))
}

fn redis_cluster_tls_store() -> Option<(Store, Arc<RedisCluster>)> {
    let cluster = shared(
        &CLUSTER_TLS,
        || RedisCluster::start_tls_for(&current_test()),
    )?;
    let mut options = EngineOptions::cluster(cluster.urls());
    options.tls = ca_of(cluster.certs());
    Some(redis_store_at(options, cluster))
}

fn redis_sentinel_store() -> Option<(Store, Arc<RedisSentinels>)> {
    let set = shared(&SENTINELS, RedisSentinels::start)?;
    let mut options = EngineOptions::new("redis://localhost");
    options.sentinel = Some(SentinelConfig {
        urls: set.sentinel_urls(),
        master: "mymaster".into(),
        password: None,
    });
    Some(redis_store_at(options, set))
}

store_types! {
    filesystem: Some(file_store()),
    filesystem_fsync: Some(fsync_file_store()),
    filesystem_uncached: Some(uncached_file_store()),
    memory: Some((
        Store::new(MemorySessionStore::with_limit(LIMIT).with_clock(clock())),
        ()
    )),
    redis: redis_store(),
    redis_unix: redis_unix_store(),
    redis_cluster: redis_cluster_store(),
    sqlite: Some(sqlite_store()),
    postgres: postgres_store(|pg| pg.url()),
    postgres_unix: postgres_store(|pg| pg.unix_url()),
    memcached: memcached_store(MemcachedServer::start()),
    cookie: Some((
        Store::client_side(
            session_server::engines::cookie::CookieCodec::new("session", LIMIT)
                .with_clock(clock())
        ),
        ()
    )),
    memcached_unix: memcached_store(MemcachedServer::start_unix()),
    redis_tls: redis_tls_store(),
    redis_cluster_tls: redis_cluster_tls_store(),
    redis_sentinel: redis_sentinel_store(),
    postgres_tls: postgres_store_on(
        &POSTGRES_TLS,
        || PostgresServer::start_tls_for(&current_test()),
        |pg| pg.tls_url("verify-full", "ca.pem"),
    ),
}

/// Which test is skipped for which store type, and for want of what: what the capabilities each
/// type declares imply, written out. The cookie type keeps the session in the cookie
/// (`server_side: false`, `can_list: false`); memcached cannot list its keys (`can_list: false`).
/// Every other type has both.
const EXPECTED_SKIPS: &[(&str, &str, &str)] = &[
    (
        "cookie",
        "an_ended_session_stays_ended_when_a_late_request_writes_it",
        "server_side",
    ),
    (
        "cookie",
        "an_expired_unswept_session_is_not_extended",
        "server_side",
    ),
    (
        "cookie",
        "sessions_can_be_inspected_and_removed_by_digest",
        "server_side",
    ),
    (
        "cookie",
        "a_write_to_an_expired_unswept_session_ends_it",
        "server_side",
    ),
    (
        "cookie",
        "an_oversize_write_to_an_ended_session_just_ends",
        "server_side",
    ),
    (
        "cookie",
        "logouts_racing_writes_never_resurrect",
        "server_side",
    ),
    (
        "cookie",
        "sessions_expire_and_update_ttl_extends_them",
        "server_side",
    ),
    ("cookie", "a_listing_shows_digests_never_ids", "can_list"),
    ("memcached", "a_listing_shows_digests_never_ids", "can_list"),
    (
        "memcached_unix",
        "a_listing_shows_digests_never_ids",
        "can_list",
    ),
    ("cookie", "a_listing_comes_in_batches", "can_list"),
    ("memcached", "a_listing_comes_in_batches", "can_list"),
    ("memcached_unix", "a_listing_comes_in_batches", "can_list"),
];

/// A skip that appears (a type that stops declaring a capability, a test that starts needing
/// one) or disappears fails here, instead of passing in silence. Each type's capabilities are
/// read from the store the suite builds for it; a type whose engine is not installed is left
/// out (the engine harness prints its own skip line, or panics under
/// `SESSION_SERVER_REQUIRE_ENGINES=1`).
#[actix_web::test]
async fn the_capability_skips_are_exactly_the_expected_ones() {
    let mut skipped = BTreeSet::new();
    let mut checked = BTreeSet::new();
    for &(store_type, capabilities, tests) in STORE_TYPES {
        let Some(capabilities) = capabilities() else {
            continue;
        };
        checked.insert(store_type);
        for &(test, needs) in tests {
            if let Some(need) = unmet(needs, capabilities) {
                skipped.insert((store_type, test, need.name()));
            }
        }
    }
    let expected: BTreeSet<(&str, &str, &str)> = EXPECTED_SKIPS
        .iter()
        .copied()
        .filter(|(store_type, _, _)| checked.contains(store_type))
        .collect();
    assert_eq!(
        skipped.difference(&expected).collect::<Vec<_>>(),
        Vec::<&(&str, &str, &str)>::new(),
        "skipped, but not expected to be"
    );
    assert_eq!(
        expected.difference(&skipped).collect::<Vec<_>>(),
        Vec::<&(&str, &str, &str)>::new(),
        "expected to be skipped, but run"
    );
    // The skips this process has made so far (the tests that ran before this one or beside it)
    // are among them: each went through `runs`, by the same rule.
    for (store_type, test, need) in SKIPS.lock().expect("skip record").iter() {
        assert!(
            expected.contains(&(store_type.as_str(), test.as_str(), *need)),
            "skipped {test} for {store_type} (needs {need}), which the matrix does not expect"
        );
    }
}

#[actix_web::test]
async fn sweepers_delete_only_expired_sessions() {
    let (file, _dir) = plain_file_store();
    let memory = MemorySessionStore::new().with_clock(
        CLOCK
            .with(|slot| slot.borrow().clone())
            .expect("the file store's clock"),
    );
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
    pass(Duration::from_millis(2100)).await;

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

/// The one sweeper runs a store's `delete_expired` every `cleanup_interval`: not every second,
/// and only while the store lives.
#[actix_web::test]
async fn the_sweeper_honours_its_interval() {
    let hourly = MemorySessionStore::new();
    let every_second = MemorySessionStore::new();
    let hourly_store = Store::new(hourly.clone());
    let every_second_store = Store::new(every_second.clone());
    hourly_store.start_sweeper(Duration::from_secs(3600));
    every_second_store.start_sweeper(Duration::from_secs(1));
    for store in [&hourly, &every_second] {
        store
            .save(state(&[("a", "1")]), &ttl(1))
            .await
            .expect("save");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !every_second.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(every_second.len(), 0, "swept");
    assert_eq!(hourly.len(), 1, "not yet: its sweep is hourly");
}
