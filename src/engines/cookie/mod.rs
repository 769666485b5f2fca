//! `type = "cookie"`: Flask's default client-side session, the session encrypted in the cookie
//! itself ([`codec`]). Nothing of it is on the server, so nothing there can be listed, swept or
//! locked; accounts and login counters are in the accounts' file (`[auth] users_db`).

pub mod codec;

use std::path::Path;

pub use codec::{CookieBackend, CookieCodec, BROWSER_LIMIT};

use crate::config::effective::Keys;
use crate::config::{Config, Invalid, SessionConfig};
use crate::engines::{Engine, EngineError, NoTable, Shared};
use crate::store::{Capabilities, Place, Store, StoreError};
use crate::web::lock::Across;

/// The `cookie` engine.
pub struct Kind;

impl Engine for Kind {
    const NAME: &'static str = "cookie";
    const CAPABILITIES: Capabilities = Capabilities {
        server_side: false,
        shared: true,
        can_list: false,
        expires_by_itself: true,
    };
    type Raw = NoTable;
    type Config = NoTable;

    fn validate(raw: NoTable, _: &Path) -> Result<NoTable, Invalid> {
        Ok(raw)
    }

    fn effective(_: &NoTable, _: &mut Keys<'_>) {}

    fn open(session: &SessionConfig) -> Result<Store, StoreError> {
        Ok(Store::client_side(
            CookieBackend,
            CookieCodec::new(&session.cookie_name, session.max_session_bytes),
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
