//! [`SessionBackend`]: what every store type does, in the product's own terms. A store type is one
//! file implementing this trait; [`super::Store`] adapts any of them to actix-session's
//! `SessionStore`, so that the rules every store must follow live in one place:
//!
//! - only a well-formed [`SessionId`] ever reaches a backend (a hostile cookie is "no session");
//! - a store names a session by the id's digest, never by the id, so that a listing, a key scan
//!   or a dump reveals no usable cookie;
//! - a session that has ended (logged out, expired, deleted by hand) is never brought back by a
//!   late write: `update` of a session that is not there writes nothing ("deletion wins");
//! - the size limit is the session's JSON record ([`SessionRecord::to_bytes`]), whatever the
//!   engine stores.
//!
//! Beside the five session calls, a backend says what it can do ([`Capabilities`]) and offers
//! what the server and the operator need: a health check, deleting expired sessions, counting
//! and listing where the engine allows.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::id::SessionId;
use super::record::{SessionRecord, SessionState};
use super::StoreError;

/// What a store type can do. The sweeper, the operator commands and the conformance suites ask
/// these instead of knowing store types by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Sessions are kept on the server: deleting one ends it for good, whoever still holds the
    /// cookie (false for a store that keeps the session in the cookie itself).
    pub server_side: bool,
    /// Other server processes see the same sessions (a shared folder or an engine), so that
    /// several instances can run behind a load balancer.
    pub shared: bool,
    /// Sessions can be counted and listed ([`SessionBackend::list`]).
    pub can_list: bool,
    /// The engine drops expired sessions by itself (a key's expiry): no sweep is needed.
    pub expires_by_itself: bool,
    /// Expiry is judged by the [`Clock`](super::Clock) the store was opened with (false for an
    /// engine that judges it by its own clock: a key's expiry, a database's `now()`).
    pub our_clock: bool,
}

/// One stored session as an operator sees it: never its id, only the digest it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Lower-case hex of the id's SHA-256: the file name stem, or the engine key after its prefix.
    pub stem: String,
    pub expires_at: OffsetDateTime,
    /// The stored record's size, when the engine tells it without reading the session.
    pub bytes: Option<u64>,
}

impl SessionSummary {
    /// Whether the session is still live at `now` (a listing also shows ended sessions that
    /// no sweep has deleted yet).
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }
}

/// Sessions listed per batch: about this many, so that a listing of millions holds only a few
/// batches at a time.
pub const LIST_BATCH: usize = 1024;

/// A listing delivered batch by batch ([`SessionBackend::list_batches`]).
pub type Listing<'a> = futures_util::stream::BoxStream<'a, Result<Vec<SessionSummary>, StoreError>>;

/// Every batch of `listing`, in one list: for the callers that want them all (a test, a small
/// store).
pub async fn collect_listing(listing: Listing<'_>) -> Result<Vec<SessionSummary>, StoreError> {
    use futures_util::TryStreamExt;
    listing
        .try_fold(Vec::new(), |mut all, batch| async move {
            all.extend(batch);
            Ok(all)
        })
        .await
}

/// A listing read in keyset pages (the SQL engines): `page(after)` answers the sessions whose
/// ids follow `after`, in id order, at most [`LIST_BATCH`], and the id to go on from when the
/// page was full. A page that was full but had nothing to show (rows that are not sessions) is
/// skipped, never taken for the end.
pub fn keyset_listing<'a, F, Fut>(page: F) -> Listing<'a>
where
    F: Fn(String) -> Fut + Send + 'a,
    Fut: std::future::Future<Output = Result<(Vec<SessionSummary>, Option<String>), StoreError>>
        + Send
        + 'a,
{
    Box::pin(futures_util::stream::try_unfold(
        (page, Some(String::new())),
        |(page, mut after)| async move {
            while let Some(from) = after {
                let (sessions, next) = page(from).await?;
                if !sessions.is_empty() {
                    return Ok(Some((sessions, (page, next))));
                }
                after = next;
            }
            Ok(None)
        },
    ))
}

/// A live session as a load finds it: its data, and the times the session panel and the
/// request context need without asking the store again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub state: SessionState,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl From<&SessionRecord> for Loaded {
    fn from(record: &SessionRecord) -> Self {
        Self {
            state: record.state(),
            created_at: record.created_at,
            expires_at: record.expires_at,
        }
    }
}

/// A place sessions are kept. Implementations are cheap to share (`Arc`) and safe to call from
/// every worker at once.
///
/// The contract (checked for every type by `tests/store_conformance.rs`):
/// - `save` stores a new session under a fresh id, drawing again on the (astronomically rare)
///   collision, so that two sessions never share an id;
/// - `load` returns a live session's data, or `None` when there is none, it has expired (even
///   before any sweep), or what is stored is not a session record (which is set aside, not
///   served);
/// - `update` replaces a live session's data and moves its end to `ttl` from now, keeping its
///   creation time, and returns `id`; if the session is not there it writes nothing and returns a
///   fresh id with no session behind it;
/// - `update_ttl` moves a live session's end; it never creates one;
/// - `delete` ends a session; deleting one that is not there is not an error;
/// - a session whose record is over the store's size limit is refused with
///   [`StoreError::TooLarge`], and the previous state stays.
#[async_trait]
pub trait SessionBackend: Send + Sync + 'static {
    /// The store type's name, as `config.toml` spells it.
    fn kind(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// The live session `id` with its times (the contract's `load`).
    async fn load_live(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError>;

    /// The live session's data: [`Self::load_live`] without the times.
    async fn load(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        Ok(self.load_live(id).await?.map(|loaded| loaded.state))
    }

    async fn save(
        &self,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError>;

    async fn update(
        &self,
        id: SessionId,
        state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionId, StoreError>;

    async fn update_ttl(&self, id: &SessionId, ttl: &time::Duration) -> Result<(), StoreError>;

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError>;

    /// When the session ends, if it is live: the store's bookkeeping, which handlers never find
    /// in the session's data.
    async fn expires_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Whether a session could be written and read right now.
    async fn check_health(&self) -> Result<(), StoreError>;

    /// Deletes the expired sessions now; returns how many. A store whose engine expires sessions
    /// by itself has nothing to do.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Finishes the work in flight and releases what this process holds in the store (the file
    /// store's temporary folder): called once when the server stops.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every stored session, when [`Capabilities::can_list`]: the live ones and the expired
    /// ones no sweep has deleted yet ([`SessionSummary::is_live`] tells them apart).
    async fn list(&self) -> Result<Vec<SessionSummary>, StoreError> {
        Err(StoreError::Unsupported {
            kind: self.kind(),
            what: "listing sessions",
        })
    }

    /// [`Self::list`] in batches of about [`LIST_BATCH`], as the engine finds them (in no
    /// particular order), for listings too big to hold at once: an engine that can list a part at
    /// a time (a directory read, `SCAN`, a keyset query) delivers each as it comes, so that a
    /// reader's memory stays bounded at any size. By default [`Self::list`], cut into batches.
    fn list_batches(&self) -> Listing<'_> {
        use futures_util::{stream, TryStreamExt};
        Box::pin(
            stream::once(self.list())
                .map_ok(|all| {
                    let mut all = all.into_iter();
                    stream::iter(std::iter::from_fn(move || {
                        let batch: Vec<SessionSummary> = all.by_ref().take(LIST_BATCH).collect();
                        (!batch.is_empty()).then_some(Ok(batch))
                    }))
                })
                .try_flatten(),
        )
    }

    /// The records of the sessions whose ids have these digests, in the same order, each as
    /// [`Self::inspect`] reads it: for the operator's commands, which read every session. By
    /// default one `inspect` after another; an engine may read a batch in one go.
    async fn inspect_batch(
        &self,
        digests: Vec<[u8; 32]>,
    ) -> Vec<Result<Option<SessionRecord>, StoreError>> {
        let mut out = Vec::with_capacity(digests.len());
        for digest in &digests {
            out.push(self.inspect(digest).await);
        }
        out
    }

    /// The stored record of the session whose id has this digest, live or expired, read
    /// without changing anything (the operator's `sessions show`). A stored value that is not
    /// a record is [`StoreError::NotARecord`], left where it is.
    async fn inspect(&self, digest: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let _ = digest;
        Err(StoreError::Unsupported {
            kind: self.kind(),
            what: "reading a session by its digest",
        })
    }

    /// When the live session `id` began. By default it is loaded, so that whether it is live
    /// is judged as a load judges it (by the store's clock); a store that keeps the start
    /// nearer (the read cache) answers without a read.
    async fn created_at(&self, id: &SessionId) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.load_live(id).await?.map(|loaded| loaded.created_at))
    }

    /// Ends the session whose id has this digest (the operator's `sessions purge`), as a
    /// logout does: a request writing it meanwhile writes nothing (deletion wins).
    async fn remove(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        let _ = digest;
        Err(StoreError::Unsupported {
            kind: self.kind(),
            what: "deleting a session by its digest",
        })
    }
}

/// What `update` answers for a session that has ended while a request was using it (logged out,
/// expired, deleted): deletion wins, the write is dropped, and the fresh id handed back has no
/// session behind it, so the client's next request is anonymous.
pub(crate) fn ended(id: &SessionId) -> Result<SessionId, StoreError> {
    tracing::info!(
        session = %id.log_tag(),
        "session ended while a request was using it; that request's changes are dropped"
    );
    SessionId::generate()
}
