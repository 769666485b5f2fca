//! `type = "cookie"`: Flask's default client-side session, the session encrypted in the cookie
//! itself ([`codec`]). Nothing of it is on the server, so nothing there can be listed, swept or
//! locked; accounts and login counters are in the accounts' file (`[auth] users_db`).

pub mod codec;
pub mod config;


pub use codec::{CookieCodec, BROWSER_LIMIT};

use crate::config::{Config, SessionConfig};
use crate::engines::{Engine, EngineError, Shared};
use crate::store::{Place, Store, StoreError};
use crate::web::lock::Across;

/// The `cookie` engine.
pub struct Kind;

impl Engine for Kind {
    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        Ok(Store::client_side(
            CookieCodec::new(&session.cookie_name, session.max_session_bytes)
                .with_clock(session.clock.clone()),
        ))
    }

    fn place(_: &SessionConfig, _: &str) -> Place {
        Place::new(
            "panel-place-cookie",
            "",
            "",
            "the cookie itself (encrypted with the server's key)",
        )
    }

    /// Nothing of the sessions on the server to lock (`lock = true` is refused by the config
    /// check).
    fn shared(_: &Config) -> Result<Shared, EngineError> {
        Ok(Shared {
            counters: None,
            locks: Across::None,
            users: None,
        })
    }
}
