//! `actix-reference STORE BIND [REDIS_URL]`: a minimal actix-web app whose `GET /` loads the
//! session, counts a visit and writes the session back (every request writes), on
//! actix-session's `RedisSessionStore` (`redis`) or on a plain in-memory store (`memory`: a
//! mutex-guarded map, the floor any store is measured against). Two workers, signed cookies, as
//! session-server runs in the benchmark.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_session::config::CookieContentSecurity;
use actix_session::storage::{
    LoadError, RedisSessionStore, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpResponse, HttpServer};

type State = HashMap<String, String>;

/// Sessions in one map; expiry is not enforced (the benchmark runs far inside the lifetime).
#[derive(Clone, Default)]
struct MemoryStore(Arc<Mutex<HashMap<String, State>>>);

/// Ids only need to be distinct in this benchmark: a counter, not a CSPRNG.
fn fresh_key() -> Result<SessionKey, anyhow::Error> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    SessionKey::try_from(format!("{n:064x}")).map_err(anyhow::Error::from)
}

impl SessionStore for MemoryStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<State>, LoadError> {
        Ok(self
            .0
            .lock()
            .map_err(|_| LoadError::Other(anyhow::anyhow!("poisoned")))?
            .get(key.as_ref())
            .cloned())
    }

    async fn save(
        &self,
        state: State,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let key = fresh_key().map_err(SaveError::Other)?;
        self.0
            .lock()
            .map_err(|_| SaveError::Other(anyhow::anyhow!("poisoned")))?
            .insert(key.as_ref().to_owned(), state);
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: State,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        self.0
            .lock()
            .map_err(|_| UpdateError::Other(anyhow::anyhow!("poisoned")))?
            .insert(key.as_ref().to_owned(), state);
        Ok(key)
    }

    async fn update_ttl(
        &self,
        _key: &SessionKey,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<(), anyhow::Error> {
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        self.0
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .remove(key.as_ref());
        Ok(())
    }
}

async fn index(session: Session) -> actix_web::Result<HttpResponse> {
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(HttpResponse::Ok().body(format!("visits: {visits}\n")))
}

fn middleware<S: SessionStore + 'static>(store: S, key: Key) -> SessionMiddleware<S> {
    SessionMiddleware::builder(store, key)
        .cookie_name("session".into())
        .cookie_secure(false)
        .cookie_content_security(CookieContentSecurity::Signed)
        .build()
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (store, bind) = match (args.get(1), args.get(2)) {
        (Some(s), Some(b)) => (s.clone(), b.clone()),
        _ => anyhow::bail!("usage: actix-reference memory|redis BIND [REDIS_URL]"),
    };
    let key = Key::generate();
    match store.as_str() {
        "memory" => {
            let memory = MemoryStore::default();
            HttpServer::new(move || {
                App::new()
                    .wrap(middleware(memory.clone(), key.clone()))
                    .route("/", web::get().to(index))
            })
            .workers(2)
            .bind(bind)?
            .run()
            .await?
        }
        "redis" => {
            let url = args
                .get(3)
                .cloned()
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
            let redis = RedisSessionStore::new(url).await?;
            HttpServer::new(move || {
                App::new()
                    .wrap(middleware(redis.clone(), key.clone()))
                    .route("/", web::get().to(index))
            })
            .workers(2)
            .bind(bind)?
            .run()
            .await?
        }
        other => anyhow::bail!("unknown store {other}"),
    }
    Ok(())
}
