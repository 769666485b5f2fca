//! session-server keeps its users' sessions on the server, one JSON file per session, the way
//! Flask-Session does with `SESSION_TYPE = "filesystem"`.
//!
//! Where things live:
//! - [`config`]: `config.toml`, its keys and defaults.
//! - [`store`]: the session stores (a session is written to disk in [`store::file`](mod@store::file)).
//! - [`users`]: the user database (bcrypt hashes in SQLite).
//! - [`web`]: the pages, the middleware stack, error pages.
//! - [`secret`]: the cookie-signing key.
//! - [`atomic`]: crash-safe file replacement shared by the stores and the user database.

pub mod atomic;
pub mod cli;
pub mod config;
pub mod engine_runtime;
pub mod i18n;
pub mod logging;
pub mod postgres;
pub mod redis_blocking;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod users;
pub mod web;
