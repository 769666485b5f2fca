//! The one translation from actix-session's `SessionStore` calls to a [`SessionBackend`]: the
//! cookie's value becomes a [`SessionId`] here or never (a malformed one is "no session"), and a
//! [`StoreError`] becomes the error kind the middleware branches on.
//!
//! [`Store`](super::Store) uses it, and so does each concrete store type through
//! [`actix_store!`], so that a store can be handed to `SessionMiddleware` (or a test) on its own.

use actix_session::storage::{LoadError, SaveError, SessionKey, UpdateError};

use super::backend::SessionBackend;
use super::record::{SessionRecord, SessionState};
use super::{SessionId, StoreError};

pub(crate) async fn load(
    b: &(impl SessionBackend + ?Sized),
    key: &SessionKey,
) -> Result<Option<SessionState>, LoadError> {
    let id = SessionId::parse(key.as_ref());
    pass_gate(key, id.as_ref()).await?;
    load_parsed(b, key, id).await
}

/// Passes the request's gate ([`super::seen::gated`]: the session lock) for the session `id`
/// that `key` names. A request stopped there is still noted as asking for that session (the log
/// line names it; it is no forged cookie).
pub(crate) async fn pass_gate(key: &SessionKey, id: Option<&SessionId>) -> Result<(), LoadError> {
    let Some(id) = id else { return Ok(()) };
    super::seen::pass_gate(*id.digest())
        .await
        .map_err(|stopped| {
            super::seen::loaded(key.as_ref(), Some(id), None);
            LoadError::Other(stopped.into())
        })
}

/// [`load`] of a key already parsed (`id`: its id, when it is one) whose gate is passed.
pub(crate) async fn load_parsed(
    b: &(impl SessionBackend + ?Sized),
    key: &SessionKey,
    id: Option<SessionId>,
) -> Result<Option<SessionState>, LoadError> {
    let Some(id) = id else {
        super::seen::loaded(key.as_ref(), None, None);
        return Ok(None);
    };
    let loaded = b.load_live(&id).await?;
    super::seen::loaded(
        key.as_ref(),
        Some(&id),
        loaded.as_ref().map(super::seen::Times::of),
    );
    Ok(loaded.map(|l| l.state))
}

pub(crate) async fn save(
    b: &(impl SessionBackend + ?Sized),
    state: SessionState,
    ttl: &time::Duration,
) -> Result<SessionKey, SaveError> {
    let id = b.save(state, ttl).await?;
    Ok(id.into_key()?)
}

pub(crate) async fn update(
    b: &(impl SessionBackend + ?Sized),
    key: SessionKey,
    state: SessionState,
    ttl: &time::Duration,
) -> Result<SessionKey, UpdateError> {
    let id = match SessionId::parse(key.as_ref()) {
        Some(id) => b.update(id, state, ttl).await?,
        None => {
            // Not one of ours, so nothing to update: a session that never existed. The data is
            // still checked, as for any write.
            let now = time::OffsetDateTime::now_utc();
            SessionRecord::new(&state, now, now, ttl)?;
            SessionId::generate()?
        }
    };
    Ok(id.into_key()?)
}

pub(crate) async fn update_ttl(
    b: &(impl SessionBackend + ?Sized),
    key: &SessionKey,
    ttl: &time::Duration,
) -> Result<(), anyhow::Error> {
    let Some(id) = SessionId::parse(key.as_ref()) else {
        return Ok(());
    };
    Ok(b.update_ttl(&id, ttl).await.map_err(StoreError::recorded)?)
}

pub(crate) async fn delete(
    b: &(impl SessionBackend + ?Sized),
    key: &SessionKey,
) -> Result<(), anyhow::Error> {
    let Some(id) = SessionId::parse(key.as_ref()) else {
        return Ok(());
    };
    Ok(b.delete(&id).await.map_err(StoreError::recorded)?)
}

/// Implements actix-session's `SessionStore` for `$type` through the functions above;
/// `$backend` reaches the [`SessionBackend`] inside `$this`, a `&$type`.
macro_rules! actix_store {
    ($type:ty, $this:ident => $backend:expr) => {
        impl actix_session::storage::SessionStore for $type {
            async fn load(
                &self,
                key: &actix_session::storage::SessionKey,
            ) -> Result<Option<$crate::store::SessionState>, actix_session::storage::LoadError>
            {
                let $this = self;
                $crate::store::actix::load($backend, key).await
            }

            async fn save(
                &self,
                state: $crate::store::SessionState,
                ttl: &time::Duration,
            ) -> Result<actix_session::storage::SessionKey, actix_session::storage::SaveError> {
                let $this = self;
                $crate::store::actix::save($backend, state, ttl).await
            }

            async fn update(
                &self,
                key: actix_session::storage::SessionKey,
                state: $crate::store::SessionState,
                ttl: &time::Duration,
            ) -> Result<actix_session::storage::SessionKey, actix_session::storage::UpdateError>
            {
                let $this = self;
                $crate::store::actix::update($backend, key, state, ttl).await
            }

            async fn update_ttl(
                &self,
                key: &actix_session::storage::SessionKey,
                ttl: &time::Duration,
            ) -> Result<(), anyhow::Error> {
                let $this = self;
                $crate::store::actix::update_ttl($backend, key, ttl).await
            }

            async fn delete(
                &self,
                key: &actix_session::storage::SessionKey,
            ) -> Result<(), anyhow::Error> {
                let $this = self;
                $crate::store::actix::delete($backend, key).await
            }
        }
    };
}
pub(crate) use actix_store;
