//! [`ClientSide`]: a store whose sessions are kept by the client, in the cookie itself: the
//! cookie's (decrypted) value is the session. [`super::Store`] sends actix-session's calls to it
//! instead of to a server-side backend.

use time::OffsetDateTime;

use super::backend::{Capabilities, Loaded};
use super::record::{SessionRecord, SessionState};
use super::StoreError;

/// Turns session state into a cookie value and back. The session middleware encrypts and
/// authenticates the value; what reaches these calls is the plain text.
pub trait ClientSide: Send + Sync + 'static {
    /// The store type's name, as `config.toml` spells it.
    fn kind(&self) -> &'static str;
    /// What its sessions can do (nothing on the server).
    fn capabilities(&self) -> Capabilities;
    /// The session in `value`: its short tag for logs (if it is one of ours), and the session
    /// itself if it has not ended.
    fn load(&self, value: &str) -> (Option<String>, Option<Loaded>);
    /// A new session's value.
    fn save(&self, state: &SessionState, ttl: &time::Duration) -> Result<String, StoreError>;
    /// The value of the session in `value` with new data and a new end.
    fn update(
        &self,
        value: &str,
        state: &SessionState,
        ttl: &time::Duration,
    ) -> Result<String, StoreError>;
    /// When the live session in `value` began.
    fn created_at(&self, value: &str) -> Option<OffsetDateTime>;
    /// When the live session in `value` ends.
    fn expires_at(&self, value: &str) -> Option<OffsetDateTime>;
    /// The session's own id (for logs) and record in `value`, live or not: what the
    /// operator's `sessions show` prints.
    fn decode(&self, value: &str) -> Option<(String, SessionRecord)>;
}
