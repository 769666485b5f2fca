//! Unit tests of [`CachingStore`] over a test double: [`Shelf`], a store in memory whose version
//! of a session is a counter bumped by every write. Two wrappers over clones of one shelf are two
//! server processes sharing an engine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::*;
use crate::store::record::expiry_after;

struct Stored {
    version: u64,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    state: SessionState,
}

#[derive(Clone, Default)]
struct Shelf {
    sessions: Arc<Mutex<HashMap<[u8; 32], Stored>>>,
    versions: Arc<AtomicU64>,
    /// How many times a session was read (not just its version asked).
    reads: Arc<AtomicU64>,
    /// Every version written, with its data.
    history: Arc<Mutex<Vec<(u64, SessionState)>>>,
}

impl Shelf {
    fn new_version(&self, state: &SessionState) -> u64 {
        let version = self.versions.fetch_add(1, Ordering::Relaxed);
        self.history.lock().push((version, state.clone()));
        version
    }

    /// The version of the session held now.
    fn current(&self, id: &SessionId) -> Option<u64> {
        self.sessions.lock().get(id.digest()).map(|s| s.version)
    }

    /// Whether `state` was written as `version` or a later version.
    fn written_since(&self, version: u64, state: &SessionState) -> bool {
        self.history
            .lock()
            .iter()
            .any(|(v, s)| *v >= version && s == state)
    }

    /// Writes `state` as a new version, and returns it as stored.
    fn put(
        &self,
        id: &SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<Snapshot<u64>, StoreError> {
        let mut sessions = self.sessions.lock();
        let stored = Stored {
            version: self.new_version(&state),
            created_at: OffsetDateTime::now_utc(),
            expires_at: expiry_after(OffsetDateTime::now_utc(), ttl)?,
            state,
        };
        let snapshot = Snapshot {
            version: stored.version,
            created_at: stored.created_at,
            expires_at: stored.expires_at,
            state: stored.state.clone(),
        };
        sessions.insert(*id.digest(), stored);
        Ok(snapshot)
    }

    fn live(&self, id: &SessionId) -> Option<Snapshot<u64>> {
        let sessions = self.sessions.lock();
        let s = sessions.get(id.digest())?;
        (s.expires_at > OffsetDateTime::now_utc()).then(|| Snapshot {
            version: s.version,
            created_at: s.created_at,
            expires_at: s.expires_at,
            state: s.state.clone(),
        })
    }
}

#[async_trait]
impl SessionBackend for Shelf {
    fn kind(&self) -> &'static str {
        "shelf"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            server_side: true,
            shared: true,
            can_list: false,
            expires_by_itself: false,
            our_clock: true,
        }
    }

    async fn load_live(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        Ok(self.load_versioned(id).await?.map(Loaded::from))
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        Ok(self.save_versioned(state, ttl).await?.0)
    }

    async fn update(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError> {
        Ok(self.update_versioned(id, state, ttl).await?.0)
    }

    async fn update_ttl(&self, id: &SessionId, ttl: &time::Duration) -> Result<(), StoreError> {
        self.update_ttl_versioned(id, ttl).await.map(drop)
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.sessions.lock().remove(id.digest());
        Ok(())
    }

    async fn expires_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.live(id).map(|s| s.expires_at))
    }

    async fn check_health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl Versioned for Shelf {
    type Version = u64;

    async fn version(&self, id: &SessionId) -> Result<Option<u64>, StoreError> {
        let version = self.current(id);
        // Lets the other tasks run between the look and its use, as an engine round trip would.
        tokio::task::yield_now().await;
        Ok(version)
    }

    async fn load_versioned(&self, id: &SessionId) -> Result<Option<Snapshot<u64>>, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let found = self.live(id);
        tokio::task::yield_now().await;
        Ok(found)
    }

    async fn save_versioned(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<(SessionId, Option<Snapshot<u64>>), StoreError> {
        let id = SessionId::generate()?;
        let written = self.put(&id, state, ttl)?;
        Ok((id, Some(written)))
    }

    async fn update_versioned(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<(SessionId, Option<Snapshot<u64>>), StoreError> {
        let written = {
            let mut sessions = self.sessions.lock();
            // Deletion wins: a session that is not there is not written.
            let Some(s) = sessions.get_mut(id.digest()) else {
                return Ok((SessionId::generate()?, None));
            };
            s.version = self.new_version(&state);
            s.expires_at = expiry_after(OffsetDateTime::now_utc(), ttl)?;
            s.state = state;
            Snapshot {
                version: s.version,
                created_at: s.created_at,
                expires_at: s.expires_at,
                state: s.state.clone(),
            }
        };
        tokio::task::yield_now().await;
        Ok((id, Some(written)))
    }

    async fn update_ttl_versioned(
        &self,
        id: &SessionId,
        ttl: &time::Duration,
    ) -> Result<Option<Snapshot<u64>>, StoreError> {
        let mut sessions = self.sessions.lock();
        let Some(s) = sessions.get_mut(id.digest()) else {
            return Ok(None);
        };
        s.version = self.new_version(&s.state);
        s.expires_at = expiry_after(OffsetDateTime::now_utc(), ttl)?;
        Ok(Some(Snapshot {
            version: s.version,
            created_at: s.created_at,
            expires_at: s.expires_at,
            state: s.state.clone(),
        }))
    }
}

fn state(visits: u64) -> SessionState {
    [("visits".to_owned(), visits.to_string())].into()
}

const HOUR: time::Duration = time::Duration::hours(1);

fn cached(shelf: &Shelf) -> CachingStore<Shelf> {
    CachingStore::new(shelf.clone(), 1 << 20)
}

#[actix_web::test]
async fn own_writes_are_served_from_memory_and_a_stale_version_never() {
    let shelf = Shelf::default();
    let store = cached(&shelf);
    let id = store.save(state(1), &HOUR).await.expect("save");
    assert_eq!(store.load(&id).await.expect("load"), Some(state(1)));
    let id = store.update(id, state(2), &HOUR).await.expect("update");
    assert_eq!(store.load(&id).await.expect("load"), Some(state(2)));
    store.update_ttl(&id, &HOUR).await.expect("ttl");
    assert_eq!(store.load(&id).await.expect("load"), Some(state(2)));
    let ends = shelf.live(&id).expect("live").expires_at;
    assert_eq!(store.expires_at(&id).await.expect("expiry"), Some(ends));
    assert_eq!(shelf.reads.load(Ordering::Relaxed), 0, "all from memory");

    // Changed behind the cache's back (a person, a restore): the next load reads it.
    shelf.put(&id, state(7), &HOUR).expect("put");
    assert_eq!(store.load(&id).await.expect("load"), Some(state(7)));
    assert_eq!(shelf.reads.load(Ordering::Relaxed), 1);
    assert_eq!(store.load(&id).await.expect("load"), Some(state(7)));
    assert_eq!(shelf.reads.load(Ordering::Relaxed), 1, "cached again");
}

#[actix_web::test]
async fn the_start_of_a_cached_session_costs_no_read_and_ends_with_it() {
    let shelf = Shelf::default();
    let store = cached(&shelf);
    let id = store.save(state(1), &HOUR).await.expect("save");
    let id = store.update(id, state(2), &HOUR).await.expect("update");
    let started = shelf.sessions.lock()[id.digest()].created_at;
    assert_eq!(store.created_at(&id).await.expect("start"), Some(started));
    assert_eq!(shelf.reads.load(Ordering::Relaxed), 0, "from memory");
    store.delete(&id).await.expect("delete");
    assert_eq!(store.created_at(&id).await.expect("start"), None, "gone");
}

#[actix_web::test]
async fn an_expired_session_is_not_served_from_memory() {
    let store = cached(&Shelf::default());
    let id = store
        .save(state(1), &time::Duration::seconds(1))
        .await
        .expect("save");
    assert_eq!(store.load(&id).await.expect("load"), Some(state(1)));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(store.load(&id).await.expect("load"), None);
}

#[actix_web::test]
async fn a_delete_or_write_through_another_instance_is_seen_at_the_next_load() {
    let shelf = Shelf::default();
    let (a, b) = (cached(&shelf), cached(&shelf));
    let id = a.save(state(1), &HOUR).await.expect("save");
    assert_eq!(a.load(&id).await.expect("load"), Some(state(1)));
    assert_eq!(b.load(&id).await.expect("load"), Some(state(1)));

    let id = b.update(id, state(2), &HOUR).await.expect("update");
    assert_eq!(a.load(&id).await.expect("load"), Some(state(2)));

    b.delete(&id).await.expect("logout");
    assert_eq!(a.expires_at(&id).await.expect("expiry"), None);
    assert_eq!(
        a.load(&id).await.expect("load"),
        None,
        "nothing after a logout"
    );
    // And a's late write does not bring it back.
    let fresh = a.update(id.clone(), state(3), &HOUR).await.expect("update");
    assert_ne!(fresh, id);
    assert_eq!(a.load(&id).await.expect("load"), None);
    assert_eq!(b.load(&id).await.expect("load"), None);
}

/// Many tasks on several threads, through two instances over one shelf, load one session while
/// others write it (new data, and new expiries) at the same time: every load must return data
/// written as the version held when the load began, or a later one; never an older one, so never
/// older than the newest acknowledged write.
#[test]
fn parallel_loads_and_writes_never_serve_a_version_older_than_the_newest_acknowledged() {
    let shelf = Shelf::default();
    let stores = Arc::new([cached(&shelf), cached(&shelf)]);
    let id = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(stores[0].save(state(0), &HOUR)).expect("save")
    };
    let next = Arc::new(AtomicU64::new(1));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (stores, shelf, id, next) = (
                Arc::clone(&stores),
                shelf.clone(),
                id.clone(),
                Arc::clone(&next),
            );
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                let tasks = (0..4).map(|n| {
                    let (stores, shelf, id, next) = (&stores, &shelf, id.clone(), &next);
                    async move {
                        let store = &stores[(t + n) % 2];
                        for round in 0..400 {
                            match (n, round % 3) {
                                (0, _) => {
                                    let visits = next.fetch_add(1, Ordering::Relaxed);
                                    let k = store
                                        .update(id.clone(), state(visits), &HOUR)
                                        .await
                                        .expect("update");
                                    assert_eq!(k, id);
                                }
                                (1, 0) => store.update_ttl(&id, &HOUR).await.expect("ttl"),
                                _ => {
                                    let held = shelf.current(&id).expect("live");
                                    let seen = store.load(&id).await.expect("load").expect("live");
                                    assert!(
                                        shelf.written_since(held, &seen),
                                        "served {seen:?}, older than version {held}"
                                    );
                                }
                            }
                            tokio::task::yield_now().await;
                        }
                    }
                });
                rt.block_on(futures_util::future::join_all(tasks));
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no load saw an old version");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let last = shelf.live(&id).expect("live").state;
    for store in stores.iter() {
        assert_eq!(
            rt.block_on(store.load(&id)).expect("load"),
            Some(last.clone())
        );
    }
}
