//! The pages in a real browser: Debian's headless Chromium, driven over WebDriver from Rust
//! (fantoccini), against the real server binary. Each scenario saves what it checked as a
//! screenshot under `target/e2e/`.
//!
//! - [`session`]: register, log in, the counter and the countdown; HttpOnly; an idle session
//!   ends; a browser restart with a browser-session cookie and with a permanent one.
//! - [`forms`]: a form posted from another origin is refused.
//! - [`languages`]: Korean from `Accept-Language`, the switch link, every page in both.
//! - [`password`]: changing one's password keeps this browser in and logs the other out.
//! - [`pages`]: the 404 and 503 pages styled; axe-core on every page, both languages, desktop
//!   and phone width; and, ignored by the suite, the README's screenshots (`scripts/screenshots`).
//!
//! Needs `chromium` and `chromium-driver` (Debian packages; `scripts/test` installs them) and
//! axe-core (`npm ci --prefix tests/browser`, also run by `scripts/test`).

#[path = "../common/mod.rs"]
mod common;
mod forms;
mod harness;
mod languages;
mod page;
mod pages;
mod password;
mod session;
