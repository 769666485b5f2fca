//! The web application: [`AppState`] (what handlers share), [`app`] (routes and the middleware
//! stack) and [`serve`]. Handlers live in [`pages`], [`auth`] and [`lang`] (the language switch);
//! `context.rs` gives every page its language, user and flash messages; [`panel`] builds the home
//! page's session panel; [`ended`] tells a person their session ended; [`errors`] makes sure
//! every answer is a page; [`csrf`] guards the forms; [`render`] owns the templates. Where the
//! accounts, the throttle's counters and the session locks live is the session engine's choice
//! ([`crate::engines::open_shared`]), so that several server processes agree on them.
//!
//! `/static/` is served outside the session, flash and lock layers: a publicly cacheable file must
//! never read or refresh a session, nor carry its cookie.

pub mod account;
pub mod auth;
pub mod body;
pub mod context;
pub mod csrf;
pub mod device;
pub mod ended;
pub mod errors;
pub mod flash;
pub mod hashing;
mod keys;
pub mod lang;
pub mod lock;
pub mod observe;
pub mod pages;
pub mod panel;
pub mod password;
pub mod register;
pub mod rekey;
pub mod render;
pub mod respond;
pub mod sample;
pub mod throttle;

use std::sync::Arc;

use actix_session::config::{
    BrowserSession, CookieContentSecurity, PersistentSession, SessionLifecycle, TtlExtensionPolicy,
};
use actix_session::{Session, SessionMiddleware};
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{guard, web, App, HttpRequest, HttpServer};
use actix_web_flash_messages::storage::CookieMessageStore;
use actix_web_flash_messages::{FlashMessagesFramework, IncomingFlashMessages, Level};

use crate::config::{self, Config};
use crate::store::{Store, StoreError};
use crate::users::UserDb;
use csrf::Csrf;
use flash::Flash;
pub use keys::CookieKeys;
use render::Templates;

/// Longest form body accepted, in bytes.
pub const FORM_LIMIT: usize = 16 * 1024;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub users: Arc<UserDb>,
    pub templates: Arc<Templates>,
    pub keys: CookieKeys,
    pub csrf: Csrf,
    /// Per-session locks when `[session] lock = true`; one set shared by every worker.
    pub locks: Option<web::Data<lock::SessionLocks>>,
    pub throttle: Arc<throttle::LoginThrottle>,
    pub devices: device::KnownDevices,
    /// What binds a logged-in session to its account (see [`account`]).
    pub accounts: Arc<account::Accounts>,
    /// The password checks running and waiting (see [`hashing`]).
    pub hashing: Arc<hashing::Hashing>,
}

/// Why the application could not be built, or why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Users(#[from] crate::users::UserError),
    #[error("{0}")]
    Engine(#[from] crate::engines::EngineError),
    #[error("{0}")]
    Throttle(#[from] throttle::ThrottleError),
    #[error("template {0}")]
    Templates(#[from] render::TemplateError),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(#[source] metrics_exporter_prometheus::BuildError),
    #[error("the server stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
}

impl AppState {
    /// Opens the configured store and prepares templates; the cookies' keys are derived from
    /// `keys`, the master secret (a [`Key`]) or a [`crate::secret::Keyring`] with older keys.
    pub fn new(
        config: Config,
        keys: impl Into<crate::secret::Keyring>,
    ) -> Result<Self, StartError> {
        let keys = CookieKeys::of(&keys.into());
        let s = &config.session;
        let store = crate::store::open(s)?;
        let auth = &config.auth;
        let shared = crate::engines::open_shared(&config)?;
        let locks = s.lock.then(|| {
            web::Data::new(lock::SessionLocks::new(shared.locks).with_timeout(s.lock_timeout))
        });
        Ok(Self {
            accounts: Arc::new(
                account::Accounts::new(
                    &keys.account,
                    keys.older.iter().map(|k| &k.account),
                    s.absolute_lifetime,
                )
                .with_clock(s.clock.clone()),
            ),
            hashing: Arc::new(hashing::Hashing::for_this_machine()),
            throttle: Arc::new(throttle::LoginThrottle::with_counters(
                auth.max_failed_logins,
                auth.failed_login_window,
                shared.counters,
            )),
            locks,
            users: Arc::new(shared.users),
            devices: device::KnownDevices::new(
                keys.device.clone(),
                &s.cookie_name,
                s.cookie_secure,
            ),
            csrf: Csrf::new(keys.csrf.clone(), &s.cookie_name, s.cookie_secure),
            templates: Arc::new(Templates::load(
                config.server.templates_dir.as_deref(),
                sample::context,
                &context::fixed_values(&config),
            )?),
            store,
            keys,
            config: Arc::new(config),
        })
    }

    /// actix-session's middleware over the configured store, with the cookie and lifetime
    /// `config.toml` asks for (also for tests that need it around routes of their own).
    pub fn session_middleware(&self) -> SessionMiddleware<Store> {
        let s = &self.config.session;
        let ttl = s.ttl();
        let policy = if s.refresh_each_request {
            TtlExtensionPolicy::OnEveryRequest
        } else {
            TtlExtensionPolicy::OnStateChanges
        };
        let lifecycle: SessionLifecycle = if s.permanent {
            PersistentSession::default()
                .session_ttl(ttl)
                .session_ttl_extension_policy(policy)
                .into()
        } else {
            BrowserSession::default()
                .state_ttl(ttl)
                .state_ttl_extension_policy(policy)
                .into()
        };
        SessionMiddleware::builder(self.store.clone(), self.keys.session.clone())
            .cookie_name(s.cookie_name.clone())
            .cookie_secure(s.cookie_secure)
            .cookie_http_only(true)
            .cookie_path("/".into())
            .cookie_domain(s.cookie_domain.clone())
            .cookie_same_site(same_site(s.cookie_samesite))
            // A cookie session's payload is data: encrypted, not only signed.
            .cookie_content_security(if self.store.capabilities().server_side {
                CookieContentSecurity::Signed
            } else {
                CookieContentSecurity::Private
            })
            .session_lifecycle(lifecycle)
            .build()
    }

    fn flash_framework(&self) -> FlashMessagesFramework {
        let s = &self.config.session;
        let store = CookieMessageStore::builder(self.keys.flash.clone())
            .cookie_name(flash_cookie_name(&s.cookie_name))
            .same_site(SameSite::Lax)
            .build();
        FlashMessagesFramework::builder(store)
            .minimum_level(Level::Info)
            .build()
    }
}

/// The flash cookie's name, after the session cookie's.
pub(crate) fn flash_cookie_name(session_cookie_name: &str) -> String {
    format!("{session_cookie_name}_flash")
}

pub(crate) fn same_site(s: config::SameSite) -> SameSite {
    match s {
        config::SameSite::Strict => SameSite::Strict,
        config::SameSite::Lax => SameSite::Lax,
        config::SameSite::None => SameSite::None,
    }
}

/// The value of the cookie `name` if its signature under `key` holds.
pub(crate) fn signed_cookie_value(req: &HttpRequest, key: &Key, name: &str) -> Option<String> {
    let mut jar = actix_web::cookie::CookieJar::new();
    jar.add_original(req.cookie(name)?);
    Some(jar.signed(key).get(name)?.value().to_owned())
}

/// The flash messages a page shows: those waiting in the flash cookie (errors and warnings as
/// `error`, the rest `info`), and the notice that the session ended ([`ended`]).
pub fn flashes_of(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    incoming: &IncomingFlashMessages,
) -> Vec<Flash> {
    incoming
        .iter()
        .map(|m| match m.level() {
            Level::Error | Level::Warning => Flash::error(m.content()),
            _ => Flash::info(m.content()),
        })
        .chain(ended::notice(req, state, session))
        .collect()
}

/// The whole application: routes, session and flash layers, error pages, security headers.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let session = state.session_middleware();
    let flash = state.flash_framework();
    let static_files = match &state.config.server.static_dir {
        // The operator's folder: its own regular files only (no link is followed out of it),
        // no listing, misses get the 404 page.
        Some(dir) => web::scope("/static").service(
            actix_files::Files::new("", dir)
                .path_filter(pages::own_regular_file(dir.clone()))
                .default_handler(actix_web::dev::fn_service(pages::static_miss)),
        ),
        None => web::scope("/static")
            .route("/style.css", get_or_head().to(pages::stylesheet))
            .route("/session.js", get_or_head().to(pages::script))
            .default_service(web::to(pages::static_not_found)),
    };
    let with_session = web::scope("")
        .route("/", get_or_head().to(pages::index))
        .service(
            web::resource("/login")
                .route(web::get().to(auth::login_page))
                .route(web::post().to(auth::login)),
        )
        .service(
            web::resource("/register")
                .route(web::get().to(register::register_page))
                .route(web::post().to(register::register)),
        )
        .service(
            web::resource("/logout")
                .route(web::get().to(auth::logout_get))
                .route(web::post().to(auth::logout_post)),
        )
        .service(
            web::resource("/password")
                .route(web::get().to(password::page))
                .route(web::post().to(password::change)),
        )
        .route("/api/session", get_or_head().to(pages::api_session))
        .route("/lang/{code}", get_or_head().to(lang::switch))
        .route("/healthz", get_or_head().to(pages::healthz))
        .default_service(web::to(pages::not_found))
        .wrap(from_fn(account::check))
        .wrap(from_fn(rekey::reissue))
        .wrap(session)
        .wrap(from_fn(ended::forget_stale_cookie))
        .wrap(from_fn(lock::one_request_per_session))
        .wrap(flash)
        .wrap(from_fn(observe::in_session_layer));
    App::new()
        .app_data(web::Data::new(state))
        .app_data(web::FormConfig::default().limit(FORM_LIMIT))
        .service(static_files)
        .service(with_session)
        .wrap(from_fn(body::read_within))
        .wrap(from_fn(errors::every_response))
        .wrap(from_fn(observe::log_request))
        // Before any layer reads a cookie.
        .wrap(from_fn(rekey::accept_older_keys))
}

/// A route for GET and for HEAD, which health checkers use (the server drops the body).
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Runs the server until it is stopped by SIGTERM or SIGINT (Ctrl-C): then it stops accepting,
/// lets the requests in flight finish (up to `[server] shutdown_timeout`), stops the metrics
/// endpoint, and returns; the store is closed when the last handle on it goes (the file store
/// removes its temporary folder then).
pub async fn serve(state: AppState) -> Result<(), StartError> {
    let config = Arc::clone(&state.config);
    let store = state.store.clone();
    let bind = config.server.bind.clone();
    let server = HttpServer::new(move || app(state.clone()))
        .workers(config.server.workers)
        .shutdown_timeout(config.server.shutdown_timeout.as_secs())
        // Both signals stop gracefully (actix's own handling makes SIGINT a forced stop).
        .disable_signals()
        .bind(&bind)
        .map_err(|source| StartError::Bind {
            bind: bind.clone(),
            source,
        })?
        .run();
    let mut handles = vec![server.handle()];
    let metrics = match &config.metrics.bind {
        Some(metrics_bind) => {
            let recorder = crate::telemetry::install().map_err(StartError::Metrics)?;
            let metrics = observe::start_metrics(
                metrics_bind,
                store.clone(),
                config.session.clock.clone(),
                recorder,
            )?;
            let handle = metrics.handle();
            handles.push(handle.clone());
            tracing::info!(address = %metrics_bind, "metrics at http://{metrics_bind}/metrics");
            Some((handle, actix_web::rt::spawn(metrics)))
        }
        None => None,
    };
    crate::telemetry::IGNORED.summarise_every(std::time::Duration::from_secs(60));
    crate::telemetry::FAILURES.summarise_every(std::time::Duration::from_secs(60));
    tracing::info!(
        address = %bind,
        store = %config.session.store,
        sessions = %crate::engines::place(&config.session, "<id>"),
        "session-server listening on http://{bind}"
    );
    actix_web::rt::spawn(observe::stop_on_signal(handles));
    let served = server.await;
    if let Some((handle, running)) = metrics {
        handle.stop(true).await;
        let _ = running.await;
    }
    if let Err(e) = store.close().await {
        tracing::warn!(error = %e, "the session store did not close cleanly");
    }
    served.map_err(StartError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}
