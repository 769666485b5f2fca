//! `lock = true` across servers for the `memcached` type: a key `<key_prefix>lock:<stem>` added
//! with this request's random token and an expiry (`ms ... ME`: refused while another holds it),
//! and deleted only while it still holds that token (`mg` with its CAS, then `md` with that CAS),
//! so a request whose lock expired never frees another's. The retry loop, the wait and the
//! release in the background are [`crate::web::lock::EngineLock`]'s, as for every engine's lock.
//!
//! memcached may evict a lock under memory pressure, as it may a session: the lock then guards
//! less, and a lost update is what `lock = false` allows anyway.

use std::time::Duration;

use async_memcached::{MetaProtocol, Status};

use super::sessions::{exptime, status, MemcachedSessionStore};
use crate::web::lock::{EngineLocks, LockError};
use super::config::MemcachedConfig;
use crate::store::StoreError;

/// Session locks in memcached, on the server each lock's session would use.
pub struct MemcachedLocks {
    store: MemcachedSessionStore,
}

impl MemcachedLocks {
    /// Locks on the servers of `config`, with pools of their own; nothing connects yet.
    pub fn new(config: &MemcachedConfig) -> Result<Self, StoreError> {
        Ok(Self {
            store: MemcachedSessionStore::new(config, 0)?,
        })
    }

    fn key(&self, stem: &str) -> String {
        format!("{}lock:{stem}", self.store.inner.prefix)
    }

    fn digest(stem: &str) -> [u8; 32] {
        let mut digest = [0u8; 32];
        // A stem is always 64 hex characters; anything else lands on the first server.
        let _ = hex::decode_to_slice(stem, &mut digest);
        digest
    }

    /// Takes the lock of the session named `stem` for `ttl` if it is free, or if it already
    /// holds `token` (a try whose answer was lost). Blocks: call it off the async workers.
    pub fn try_take(&self, stem: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let key = self.key(stem);
        let token = token.to_owned();
        let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).max(1);
        let expiry = format!("T{}", exptime(secs, time::OffsetDateTime::now_utc()));
        let server = self.store.server_of(&Self::digest(stem));
        self.store.run_blocking(server, move |mut c| async move {
            let flags = [expiry.as_str(), "ME"];
            match c
                .meta_set(&key, token.as_str(), false, None, Some(&flags))
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if status(&e) == Some(&Status::NotStored) => {
                    let held = c.meta_get(&key, false, None, Some(&["v"])).await?;
                    Ok(held.and_then(|v| v.data).as_deref() == Some(token.as_bytes()))
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Deletes the lock of `stem` if it still holds `token`; whether it did.
    pub fn release(&self, stem: &str, token: &str) -> Result<bool, StoreError> {
        let key = self.key(stem);
        let token = token.to_owned();
        let server = self.store.server_of(&Self::digest(stem));
        self.store.run_blocking(server, move |mut c| async move {
            let Some(held) = c.meta_get(&key, false, None, Some(&["v", "c"])).await? else {
                return Ok(false);
            };
            if held.data.as_deref() != Some(token.as_bytes()) {
                return Ok(false);
            }
            let cas = format!("C{}", held.cas.unwrap_or(0));
            match c
                .meta_delete(&key, false, None, Some(&[cas.as_str()]))
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if matches!(status(&e), Some(Status::Exists | Status::NotFound)) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
    }
}

impl EngineLocks for MemcachedLocks {
    fn try_take(&self, stem: &str, token: &str, ttl: Duration) -> Result<bool, LockError> {
        Ok(MemcachedLocks::try_take(self, stem, token, ttl)?)
    }

    fn release(&self, stem: &str, token: &str) -> Result<bool, LockError> {
        Ok(MemcachedLocks::release(self, stem, token)?)
    }
}
