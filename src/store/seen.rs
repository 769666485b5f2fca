//! The request context of a session: what the store saw of the current request's session, for
//! the rest of the request. actix-session verifies the session cookie once and hands the store
//! its verified value; the store's adapter ([`super::Store`]) notes it here with the live
//! session's times, so that the request log, the page, the session panel and the "session ended"
//! notice read them instead of verifying the cookie again or asking the store again.
//!
//! A request-scoped slot (a tokio task-local): the outermost layer opens it ([`scope`]), the
//! session layer marks that it ran ([`entered`]), the store fills it, and anyone in the request
//! reads it ([`current`]). Outside a request (the operator's commands, store tests) nothing is
//! noted.
//!
//! A layer may also set a [`Gate`] that the request passes just before its session is loaded,
//! with the digest of the id actix-session verified: the session lock waits there, so that it
//! needs no signature check of its own.

use std::cell::RefCell;
use std::future::Future;

use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use super::id::{self, SessionId};

/// What the store saw of this request's session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The session layer ran for this request (static files skip it).
    pub entered: bool,
    /// The verified cookie value the session layer asked the store to load: a session id for a
    /// server-side store, the decrypted session for a client-side one.
    pub asked: Option<String>,
    /// The session's short hash for logs, when one was asked for.
    pub tag: Option<String>,
    /// The digest of the id asked for, for a server-side store.
    pub digest: Option<[u8; 32]>,
    /// The live session the load found.
    pub live: Option<Times>,
}

/// A live session's times, as its load found them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Times {
    pub fn of(loaded: &super::Loaded) -> Self {
        Self {
            created_at: loaded.created_at,
            expires_at: loaded.expires_at,
        }
    }
}

tokio::task_local! {
    static SEEN: RefCell<Seen>;
    static GATE: RefCell<Option<Gate>>;
}

/// What a request must pass before its session (the id whose digest it is given) is loaded:
/// `false` stops the request there.
pub type Gate = Box<dyn FnOnce([u8; 32]) -> BoxFuture<'static, bool> + Send>;

/// A [`Gate`] stopped the request before its session was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request was stopped before its session was loaded")]
pub struct Stopped;

/// Runs `request` with `gate` to pass before its session's load.
pub async fn gated<F: Future>(gate: Gate, request: F) -> F::Output {
    GATE.scope(RefCell::new(Some(gate)), request).await
}

/// Passes this request's gate, if it has one (once: a second load passes freely).
pub(crate) async fn pass_gate(digest: [u8; 32]) -> Result<(), Stopped> {
    let gate = GATE
        .try_with(|gate| gate.borrow_mut().take())
        .ok()
        .flatten();
    match gate {
        Some(gate) => gate(digest).await.then_some(()).ok_or(Stopped),
        None => Ok(()),
    }
}

/// Runs `request` with a fresh slot, and returns its output with what was seen.
pub async fn scope<F: Future>(request: F) -> (F::Output, Seen) {
    SEEN.scope(RefCell::new(Seen::default()), async {
        let out = request.await;
        // Handed over, not copied: the request is over.
        let seen = SEEN.try_with(|seen| seen.take()).unwrap_or_default();
        (out, seen)
    })
    .await
}

/// What has been seen so far in this request; `None` outside a request.
pub fn current() -> Option<Seen> {
    SEEN.try_with(|seen| seen.borrow().clone()).ok()
}

/// Reads the slot without copying it; `None` outside a request.
pub fn with<R>(read: impl FnOnce(&Seen) -> R) -> Option<R> {
    SEEN.try_with(|seen| read(&seen.borrow())).ok()
}

fn note(change: impl FnOnce(&mut Seen)) {
    let _ = SEEN.try_with(|seen| change(&mut seen.borrow_mut()));
}

/// The session layer is running for this request.
pub fn entered() {
    note(|seen| seen.entered = true);
}

/// A server-side load of the cookie value `asked` (`id` when it is well-formed), and what it
/// found.
pub(crate) fn loaded(asked: &str, id: Option<&SessionId>, live: Option<Times>) {
    note(|seen| {
        seen.asked = Some(asked.to_owned());
        seen.tag = Some(id::log_tag(asked));
        seen.digest = id.map(|id| *id.digest());
        seen.live = live;
    });
}

/// A client-side load of the decrypted value `asked`, tagged `tag`, and what it found.
pub(crate) fn loaded_client(asked: &str, tag: Option<String>, live: Option<Times>) {
    note(|seen| {
        seen.asked = Some(asked.to_owned());
        seen.tag = tag;
        seen.live = live;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_request_sees_only_its_own_session_even_when_requests_interleave() {
        let run = |n: usize| async move {
            scope(async move {
                entered();
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                loaded(&format!("value-{n}"), None, None);
                tokio::task::yield_now().await;
                current()
            })
            .await
        };
        let all = futures_util::future::join_all((1..=16).map(run)).await;
        for (n, (inside, after)) in (1..=16).zip(all) {
            let inside = inside.expect("inside the scope");
            assert_eq!(inside.asked.as_deref(), Some(format!("value-{n}").as_str()));
            assert_eq!(inside, after, "the scope hands back what it held");
            assert!(after.entered);
        }
        assert_eq!(current(), None, "nothing outside a request");
    }

    #[tokio::test]
    async fn a_gate_is_passed_once_with_the_digest_and_can_stop_the_request() {
        let given = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let gate = |open: bool| -> Gate {
            let given = given.clone();
            Box::new(move |digest| {
                Box::pin(async move {
                    given.lock().push(digest);
                    open
                })
            })
        };
        let passed = gated(gate(true), async {
            (pass_gate([1; 32]).await, pass_gate([2; 32]).await)
        })
        .await;
        assert_eq!(passed, (Ok(()), Ok(())));
        assert_eq!(
            *given.lock(),
            vec![[1; 32]],
            "asked once, with the first digest"
        );
        let stopped = gated(gate(false), pass_gate([3; 32])).await;
        assert_eq!(stopped, Err(Stopped));
        assert_eq!(
            pass_gate([4; 32]).await,
            Ok(()),
            "no gate outside a gated request"
        );
        assert_eq!(given.lock().len(), 2);
    }
}
