//! `[session] lock = true`: PHP's guarantee that the requests of one session run one at a time, so
//! that none of them loses another's change. The lock is held from before the session is loaded
//! until after it is saved: within a process by an async mutex per session, and across processes
//! sharing the session folder by an exclusive `flock` on `.locks/<file name>` there.
//!
//! Off by default: like Flask-Session and actix-session, parallel requests of one session then
//! run side by side and the last write wins (each file is still always whole).
//!
//! Lock files are removed by the sweeper once their session is gone and nobody holds them; a
//! request that was waiting on a removed file locks the new one instead (see
//! [`crate::atomic::lock_exclusive`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use actix_web::body::MessageBody;
use actix_web::cookie::Key;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use parking_lot::Mutex;

use crate::store::{id, SessionId};

/// Past this many remembered sessions, entries nobody waits on are dropped.
const PRUNE_AT: usize = 10_000;

/// The locks of every session this process is serving.
pub struct SessionLocks {
    key: Key,
    cookie_name: String,
    /// Where lock files go (`<session folder>/.locks`), for stores shared between processes.
    files: Option<PathBuf>,
    held: Mutex<HashMap<[u8; 32], Weak<tokio::sync::Mutex<()>>>>,
}

impl SessionLocks {
    pub fn new(key: Key, cookie_name: &str, lock_file_dir: Option<PathBuf>) -> Self {
        Self {
            key,
            cookie_name: cookie_name.to_owned(),
            files: lock_file_dir,
            held: Mutex::default(),
        }
    }

    /// The session id in the request's cookie, if its signature holds and its shape is right.
    fn session_digest(&self, req: &ServiceRequest) -> Option<[u8; 32]> {
        let id = super::signed_cookie_value(req.request(), &self.key, &self.cookie_name)?;
        SessionId::parse(&id).map(|id| *id.digest())
    }

    fn mutex_for(&self, digest: [u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        let mut held = self.held.lock();
        if let Some(m) = held.get(&digest).and_then(Weak::upgrade) {
            return m;
        }
        if held.len() >= PRUNE_AT {
            held.retain(|_, w| w.strong_count() > 0);
        }
        let m = Arc::new(tokio::sync::Mutex::new(()));
        held.insert(digest, Arc::downgrade(&m));
        m
    }
}

/// Takes an exclusive lock on `dir/<hex>`; released when the file is dropped.
fn lock_file(dir: &Path, digest: &[u8; 32]) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    crate::atomic::lock_exclusive(&dir.join(id::stem(digest)))
}

pub async fn one_request_per_session(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let locks = req
        .app_data::<web::Data<super::AppState>>()
        .and_then(|state| state.locks.clone());
    let Some(locks) = locks else {
        return next.call(req).await;
    };
    let Some(digest) = locks.session_digest(&req) else {
        return next.call(req).await;
    };
    let mutex = locks.mutex_for(digest);
    let _in_process = mutex.lock().await;
    let _across_processes = match &locks.files {
        Some(dir) => {
            let dir = dir.clone();
            match web::block(move || lock_file(&dir, &digest)).await {
                Ok(Ok(file)) => Some(file),
                // Serving unlocked beats refusing: the lock only guards against lost updates.
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "session lock file unavailable; serving without it");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "session lock unavailable; serving without it");
                    None
                }
            }
        }
        None => None,
    };
    next.call(req).await
}
