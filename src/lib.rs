//! session-server keeps its users' sessions on the server, one JSON file per session, the way
//! Flask-Session does with its default file type.
//!
//! Where things live:
//! - [`config`]: `config.toml`, its keys and defaults.
//! - [`store`]: the session seam every engine implements, and what the engines share.
//! - [`engines`]: the engines, one folder each, and the registry (the default one writes one
//!   JSON file per session).
//! - [`users`]: the user database (bcrypt hashes; the accounts' policy over any engine's storage).
//! - [`web`]: the pages, the middleware stack, error pages.
//! - [`secret`]: the cookie-signing key.
//! - [`atomic`]: crash-safe file replacement shared by the stores and the user database.

pub mod atomic;
pub mod cli;
pub mod config;
pub mod engines;
pub mod i18n;
pub mod logging;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod users;
pub mod web;
