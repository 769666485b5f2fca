//! Shared test helpers: an app built from a config file in a temporary folder, the built binary
//! as a child process, and one "browser" ([`Client`]) that keeps cookies between requests and
//! reads forms' CSRF tokens, in process or over TCP.
// Each test binary uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, Key};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::test;
use session_server::config::Config;
use session_server::web::{app, AppState};

mod client;
pub mod engines;
pub mod faults;
mod server;
pub use client::{block_on, Browser, Client, Tcp, Transport};
pub use server::{check_config, free_port, raw_http, server_config, ServerProcess, BIN};

/// A temporary deployment: its folder, config and state.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    /// The engine the site's sessions live in, stopped with the site.
    pub engine: Option<Engine>,
    /// The clock the site's stores judge expiry by, where they judge it themselves: see
    /// [`Site::pass`].
    pub clock: session_server::store::Clock,
}

/// An engine process a site's sessions live in.
pub enum Engine {
    Redis(engines::RedisServer),
    RedisCluster(engines::RedisCluster),
    RedisSentinels(engines::RedisSentinels),
    Postgres(engines::PostgresServer),
    Memcached(engines::MemcachedServer),
}

/// Which store type a test of the page suites runs against, and the test's name (for the skip
/// line of a test whose engine is not installed).
#[derive(Debug, Clone, Copy)]
pub struct StoreKind {
    pub name: &'static str,
    pub test: &'static str,
}

/// Runs each named `async fn(StoreKind)` once per store type, in a module per type
/// (`filesystem::name`, `memory::name`, `redis::name`). A new store type joins here with one line.
/// [`for_every_production_engine`] adds the engines as production runs them.
#[macro_export]
macro_rules! for_every_store_type {
    ($($test:ident),* $(,)?) => {
        $crate::for_every_store_type!(@type filesystem; $($test),*);
        $crate::for_every_store_type!(@type memory; $($test),*);
        $crate::for_every_store_type!(@type redis; $($test),*);
        $crate::for_every_store_type!(@type sqlite; $($test),*);
        $crate::for_every_store_type!(@type postgres; $($test),*);
        $crate::for_every_store_type!(@type memcached; $($test),*);
        $crate::for_every_store_type!(@type cookie; $($test),*);
    };
    (@type $kind:ident; $($test:ident),*) => {
        $crate::for_every_store_type!(@module $kind; $($test),*);
    };
    (@module $kind:ident; $($test:ident),*) => {
        mod $kind {
            $(
                #[actix_web::test]
                async fn $test() {
                    super::$test($crate::common::StoreKind {
                        name: stringify!($kind),
                        test: concat!(stringify!($kind), "::", stringify!($test)),
                    })
                    .await
                }
            )*
        }
    };
}

/// As [`for_every_store_type`], over the engines as production runs them: Redis over TLS, a
/// Redis Cluster over TLS, Redis behind Sentinels, PostgreSQL with `sslmode=verify-full`.
#[macro_export]
macro_rules! for_every_production_engine {
    ($($test:ident),* $(,)?) => {
        $crate::for_every_store_type!(@module redis_tls; $($test),*);
        $crate::for_every_store_type!(@module redis_cluster_tls; $($test),*);
        $crate::for_every_store_type!(@module redis_sentinel; $($test),*);
        $crate::for_every_store_type!(@module postgres_tls; $($test),*);
    };
}

/// Both: every store type, and the engines as production runs them.
#[macro_export]
macro_rules! for_every_setup {
    ($($test:ident),* $(,)?) => {
        $crate::for_every_store_type!($($test),*);
        $crate::for_every_production_engine!($($test),*);
    };
}

impl Site {
    /// A site whose config.toml is the test defaults plus `extra` TOML lines under [session].
    pub fn new(session_extra: &str) -> Self {
        let lifetime = if session_extra.contains("lifetime") {
            ""
        } else {
            "lifetime = 60\n"
        };
        Self::with_config(&format!(
            "[session]\ntype = \"filesystem\"\n{lifetime}{session_extra}\n[auth]\nbcrypt_cost = 4\nmin_password_length = 8\n"
        ))
    }

    /// A site whose sessions are kept by the store type `kind`, with `extra` TOML lines under
    /// [session]; `None` (after one skip line) when that type's engine is not installed.
    pub fn of(kind: StoreKind, session_extra: &str) -> Option<Self> {
        let lifetime = if session_extra.contains("lifetime") {
            ""
        } else {
            "lifetime = 60\n"
        };
        let quoted = |p: PathBuf| format!("{:?}", p.display().to_string());
        let (engine, table) = match kind.name {
            "redis_tls" => {
                let engine = engines::RedisServer::start_tls_for(kind.test, "server")?;
                let table = format!(
                    "[session.redis]\nurl = \"{}\"\ntls_ca_file = {}\n",
                    engine.tls_url(),
                    quoted(engine.certs().path("ca.pem"))
                );
                (Some(Engine::Redis(engine)), table)
            }
            "redis_cluster_tls" => {
                let engine = engines::RedisCluster::start_tls_for(kind.test)?;
                let urls: Vec<String> = engine.urls().iter().map(|u| format!("{u:?}")).collect();
                let table = format!(
                    "[session.redis]\ncluster_urls = [{}]\ntls_ca_file = {}\n",
                    urls.join(", "),
                    quoted(engine.certs().path("ca.pem"))
                );
                (Some(Engine::RedisCluster(engine)), table)
            }
            "redis_sentinel" => {
                let engine = engines::RedisSentinels::start_for(kind.test)?;
                let urls: Vec<String> = engine
                    .sentinel_urls()
                    .iter()
                    .map(|u| format!("{u:?}"))
                    .collect();
                let table = format!("[session.redis]\nsentinel_urls = [{}]\n", urls.join(", "));
                (Some(Engine::RedisSentinels(engine)), table)
            }
            "postgres_tls" => {
                let engine = engines::PostgresServer::start_tls_for(kind.test)?;
                let table = format!(
                    "[session.postgres]\nurl = \"{}\"\n",
                    engine.tls_url("verify-full", "ca.pem")
                );
                (Some(Engine::Postgres(engine)), table)
            }
            "redis" => {
                let engine = engines::RedisServer::start_for(kind.test)?;
                let table = format!("[session.redis]\nurl = \"{}\"\n", engine.url());
                (Some(Engine::Redis(engine)), table)
            }
            "memcached" => {
                let engine = engines::MemcachedServer::start_for(kind.test)?;
                let table = format!("[session.memcached]\nservers = [\"{}\"]\n", engine.server());
                (Some(Engine::Memcached(engine)), table)
            }
            "postgres" => {
                let engine = engines::PostgresServer::start_for(kind.test)?;
                let table = format!("[session.postgres]\nurl = \"{}\"\n", engine.url());
                (Some(Engine::Postgres(engine)), table)
            }
            _ => (None, String::new()),
        };
        // The production variants are their engine's type.
        let store_type = kind.name.split('_').next().unwrap_or(kind.name);
        let mut site = Self::with_config(&format!(
            "[session]\ntype = \"{store_type}\"\n{lifetime}{session_extra}\n{table}[auth]\nbcrypt_cost = 4\nmin_password_length = 8\n",
        ));
        site.engine = engine;
        Some(site)
    }

    /// Lets `time` pass for the site's sessions: where the store judges expiry by this
    /// process's clock its clock moves forward at once; an engine that judges it by its own
    /// clock (Redis, memcached, PostgreSQL) is waited out in real time.
    pub async fn pass(&self, time: std::time::Duration) {
        if self.state.store.capabilities().our_clock {
            self.clock
                .advance(time)
                .expect("the site's clock is adjustable");
        } else {
            tokio::time::sleep(time).await;
        }
    }

    /// Whether sessions are kept on the server (every type but `cookie`).
    pub fn keeps_sessions(&self) -> bool {
        self.state.store.capabilities().server_side
    }

    /// Checks that `n` sessions are stored, where sessions are kept on the server.
    pub async fn expect_sessions(&self, n: usize, what: &str) {
        if self.keeps_sessions() {
            let stems = self.sessions().await;
            assert_eq!(stems.len(), n, "{what}: {stems:?}");
        }
    }

    /// The stems (hex digests) of the stored sessions, sorted: for any store type that can list,
    /// and for memcached (which cannot) from the test's own server's key dump.
    pub async fn sessions(&self) -> Vec<String> {
        if !self.keeps_sessions() {
            return Vec::new();
        }
        if let Some(Engine::Memcached(engine)) = &self.engine {
            let prefix = &self.state.config.session.memcached.key_prefix;
            let encoded = prefix.replace(':', "%3A");
            // The crawler may miss an item being moved between its lists: three dumps, united,
            // then each key checked to be there.
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..3 {
                let mut dump = engine.command("lru_crawler metadump all");
                // It answers BUSY while the previous dump is still winding down.
                for _ in 0..100 {
                    if !dump.starts_with("BUSY") {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    dump = engine.command("lru_crawler metadump all");
                }
                seen.extend(
                    dump.lines()
                        .filter_map(|line| line.strip_prefix("key=")?.split(' ').next())
                        .filter_map(|key| key.strip_prefix(&encoded))
                        .filter(|stem| stem.len() == 64)
                        .map(str::to_owned),
                );
            }
            return seen
                .into_iter()
                .filter(|stem| {
                    engine
                        .command(&format!("mg {prefix}{stem}"))
                        .starts_with("HD")
                })
                .collect();
        }
        let mut stems: Vec<String> = self
            .state
            .store
            .server("a test of server-side sessions")
            .expect("server-side")
            .list()
            .await
            .expect("list sessions")
            .into_iter()
            .filter(|s| s.is_live(self.clock.now()))
            .map(|s| s.stem)
            .collect();
        stems.sort();
        stems
    }

    /// The stored records' JSON as a person inspecting the store reads it (a session file, a
    /// `redis-cli GET`); `None` for a store nobody can look into from outside (memory), or only
    /// by a key dump that may miss an item being moved (memcached).
    pub async fn stored_records(&self) -> Option<Vec<String>> {
        match self.state.store.kind() {
            "filesystem" => Some(
                self.session_files()
                    .iter()
                    .map(|p| std::fs::read_to_string(p).expect("read session file"))
                    .collect(),
            ),
            "redis" => {
                let prefix = &self.state.config.session.redis.key_prefix;
                let mut conn: Box<dyn redis::ConnectionLike> = match &self.engine {
                    Some(Engine::Redis(engine)) => Box::new(
                        redis::Client::open(engine.url())
                            .and_then(|c| c.get_connection())
                            .expect("connect to the test's redis"),
                    ),
                    Some(Engine::RedisSentinels(set)) => {
                        let primary = set.primary_port().expect("a primary");
                        Box::new(
                            redis::Client::open(engines::RedisSentinels::data_url(primary))
                                .and_then(|c| c.get_connection())
                                .expect("connect to the primary"),
                        )
                    }
                    Some(Engine::RedisCluster(cluster)) => Box::new(
                        redis::cluster::ClusterClient::builder(cluster.urls())
                            .certs(redis::TlsCertificates {
                                client_tls: None,
                                root_cert: Some(
                                    std::fs::read(cluster.certs().path("ca.pem")).expect("CA"),
                                ),
                            })
                            .build()
                            .and_then(|c| c.get_connection())
                            .expect("connect to the cluster"),
                    ),
                    _ => panic!("a redis site has its engine"),
                };
                let stems = self.sessions().await;
                Some(
                    stems
                        .iter()
                        .map(|stem| {
                            redis::cmd("GET")
                                .arg(format!("{prefix}{stem}"))
                                .query(&mut *conn)
                                .expect("GET")
                        })
                        .collect(),
                )
            }
            "postgres" => {
                let Some(Engine::Postgres(engine)) = &self.engine else {
                    panic!("a postgres site has its engine");
                };
                let table = &self.state.config.session.postgres.table;
                // As a person reads it in psql: `jsonb_pretty`, one record per row.
                let out = engine.psql(&format!(
                    "SELECT jsonb_pretty(record) || chr(30) FROM {table} ORDER BY id"
                ));
                Some(
                    out.split('\u{1e}')
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            }
            "sqlite" => {
                let db = rusqlite::Connection::open(&self.state.config.session.sqlite.path)
                    .expect("open the test's sessions.db");
                let mut rows = db
                    .prepare("SELECT record FROM sessions ORDER BY id")
                    .expect("select");
                let records = rows
                    .query_map([], |r| r.get(0))
                    .expect("query")
                    .collect::<Result<Vec<String>, _>>()
                    .expect("rows");
                Some(records)
            }
            _ => None,
        }
    }

    pub fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, toml).expect("write config");
        Self::in_folder(dir).expect("app state")
    }

    /// A site over `dir`, whose `config.toml` (and whatever else the test puts there first) is
    /// already written. Its stores judge expiry by an adjustable clock ([`Site::pass`]).
    pub fn in_folder(dir: tempfile::TempDir) -> Result<Self, session_server::web::StartError> {
        let mut config = Config::load(&dir.path().join("config.toml")).expect("valid test config");
        let clock = session_server::store::Clock::adjustable();
        config.session.clock = clock.clone();
        let key = session_server::secret::load_or_create(&config.session.secret_key_file, None)
            .expect("secret key");
        let state = AppState::new(config, key)?;
        Ok(Self {
            dir,
            state,
            engine: None,
            clock,
        })
    }

    /// The key that signs the session cookie (each cookie has its own, in `state.keys`).
    pub fn key(&self) -> Key {
        self.state.keys.session.clone()
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.state.config.session.filesystem.dir.clone()
    }

    /// The session files (`*.json`) now in the session folder.
    pub fn session_files(&self) -> Vec<PathBuf> {
        session_files(&self.sessions_dir())
    }

    /// Every file anywhere under the site's folder except config, key and users: to prove that
    /// nothing was written.
    pub fn all_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out.retain(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !matches!(
                name,
                "config.toml"
                    | "secret.key"
                    | "users.db"
                    | "users.db-wal"
                    | "users.db-shm"
                    // The sqlite type's database: what is in it is checked with `sessions()`.
                    | "sessions.db"
                    | "sessions.db-wal"
                    | "sessions.db-shm"
            )
        });
        out
    }
}

pub fn session_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// One response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// A whole HTTP/1.1 response as text (not chunked: the server sends lengths).
    pub fn parse(text: &str) -> Option<Self> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status = lines.next()?.split(' ').nth(1)?.parse::<u16>().ok()?;
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':')?;
            headers.append(
                header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                header::HeaderValue::from_str(value.trim()).ok()?,
            );
        }
        Some(Self {
            status: StatusCode::from_u16(status).ok()?,
            headers,
            body: body.to_owned(),
        })
    }

    pub fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self
            .body
            .find(marker)
            .map(|i| i + marker.len())
            .expect("page has a csrf_token field");
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// Text of the element with `id="<id>"`.
    pub fn element_text(&self, id: &str) -> Option<String> {
        let marker = format!("id=\"{id}\"");
        let at = self.body.find(&marker)?;
        let open_end = self.body[at..].find('>')? + at + 1;
        let close = self.body[open_end..].find('<')? + open_end;
        Some(self.body[open_end..close].trim().to_owned())
    }

    pub fn set_cookies(&self) -> Vec<Cookie<'static>> {
        self.headers
            .get_all(header::SET_COOKIE)
            .filter_map(|v| v.to_str().ok())
            .filter_map(|s| Cookie::parse(s.to_owned()).ok())
            .collect()
    }

    pub fn set_cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.set_cookies().into_iter().find(|c| c.name() == name)
    }
}

/// Calls the app as the server would: an error becomes the response it carries.
pub async fn call<S, B>(app: &S, req: Request) -> Page
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let res = match app.call(req).await {
        Ok(res) => res.map_into_boxed_body().into_parts().1,
        Err(e) => e.error_response(),
    };
    let status = res.status();
    let headers = res.headers().clone();
    let body = actix_web::body::to_bytes(res.into_body())
        .await
        .map_err(|_| ())
        .expect("body");
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The app of `site`, ready to call.
pub async fn start(
    site: &Site,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    start_state(site.state.clone()).await
}

/// The app over `state`, ready to call.
pub async fn start_state(
    state: AppState,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    test::init_service(app(state)).await
}

/// A cookie value signed with `key`, as the server would sign it.
pub fn signed_cookie_value(key: &Key, name: &str, value: &str) -> String {
    let mut jar = actix_web::cookie::CookieJar::new();
    jar.signed_mut(key)
        .add(Cookie::new(name.to_owned(), value.to_owned()));
    jar.get(name).expect("just added").value().to_owned()
}

/// Registers one user through `a`, then visits `/` 50 times in parallel through `a` and `b`
/// alternately with that one session, and checks that every visit was counted: what `lock = true`
/// promises across server processes.
pub fn fifty_parallel_visits_all_count(a: std::net::SocketAddr, b: std::net::SocketAddr) {
    let mut client = Client::new();
    assert_eq!(block_on(client.register(&Tcp(a), "shared")).status, 303);
    let before = block_on(client.visit(&Tcp(b))).expect("visits through b");
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let mut c = client.clone();
            let via = Tcp(if i % 2 == 0 { a } else { b });
            std::thread::spawn(move || block_on(c.get(&via, "/")).status)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), 200);
    }
    let after = block_on(client.visit(&Tcp(a))).expect("visits");
    assert_eq!(
        after,
        before + 51,
        "every one of the 50 parallel increments kept"
    );
}
