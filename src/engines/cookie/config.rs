//! What the configuration knows of the `cookie` type: it has no table of its own (its cookie's
//! keys are `[session]`'s `cookie_*`), and nothing of it is on the server.

use std::path::{Path, PathBuf};

use crate::config::check::{Invalid, NoTable};
use crate::config::shown::Keys;
use crate::store::backend::Capabilities;

/// What the registry knows of the engine: the session is the cookie, so nothing on the server
/// can end, list or sweep it.
pub const CAPABILITIES: Capabilities = Capabilities {
    server_side: false,
    shared: true,
    can_list: false,
    expires_by_itself: true,
    our_clock: true,
};
/// Accounts are never kept in a cookie.
pub const HOLDS_ACCOUNTS: bool = false;

/// `[session.cookie]`: refused if written.
pub type Raw = NoTable;
pub type Table = NoTable;

pub fn validate(raw: NoTable, _: &Path) -> Result<NoTable, Invalid> {
    Ok(raw)
}

/// No keys of its own to print.
pub fn effective(_: &NoTable, _: &mut Keys<'_>) {}

/// Nothing of this engine is a file of the server's.
pub fn private_paths(_: &NoTable) -> Vec<(&'static str, PathBuf)> {
    Vec::new()
}
