//! `type = "cookie"`: Flask's default client-side session. The session is the cookie itself:
//! its value is the session record (creation and end times, the data) and a random session id,
//! which the session middleware encrypts and authenticates with the server's key
//! (`CookieContentSecurity::Private`), so the browser can neither read nor change it.
//!
//! Better than Flask's and actix-session's cookie stores, the server enforces the lifetime: a
//! payload past its `expires_at` is no session, even if a browser (or whoever copied the cookie)
//! keeps sending it. What no cookie store can do: end a session on the server (a copied cookie
//! stays valid until its end), list sessions, or hold more than a browser keeps in one cookie.
//!
//! [`CookieCodec`] is the store's [`ClientSide`]: `crate::store::Store::Client` sends
//! actix-session's calls to it; what needs sessions on the server (listing, removing, sweeping)
//! is refused by the store as unsupported, with no backend pretending to hold any.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::backend::{Capabilities, Loaded};
use crate::store::record::{SessionRecord, SessionState};
use crate::store::{ClientSide, Clock, SessionId, StoreError};

/// What browsers keep of one cookie: its name, `=`, and its value.
pub const BROWSER_LIMIT: usize = 4096;

/// The cookie's payload before encryption.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// A random id, so that two sessions never share a cookie value and logs can name one.
    sid: String,
    #[serde(flatten)]
    record: SessionRecord,
}

/// Turns session state into the cookie's payload and back.
#[derive(Debug, Clone)]
pub struct CookieCodec {
    max_bytes: usize,
    cookie_name_len: usize,
    clock: Clock,
}

impl CookieCodec {
    /// A codec for the cookie named `cookie_name`, refusing records over `max_bytes` (the size
    /// rule of every store) and cookies over [`BROWSER_LIMIT`].
    pub fn new(cookie_name: &str, max_bytes: usize) -> Self {
        Self {
            max_bytes,
            cookie_name_len: cookie_name.len(),
            clock: Clock::system(),
        }
    }

    /// This codec judging expiry by `clock` (a test's, to reach a session's end at once).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The live record in `key`, if it is one of ours and has not ended.
    fn live(&self, key: &str) -> Option<Payload> {
        let payload: Payload = serde_json::from_str(key).ok()?;
        (!payload.record.is_expired(self.clock.now())).then_some(payload)
    }

    pub fn load(&self, key: &str) -> Option<SessionState> {
        self.live(key).map(|p| p.record.state())
    }

    /// When the session in `key` ends, if it is live.
    pub fn expires_at(&self, key: &str) -> Option<OffsetDateTime> {
        self.live(key).map(|p| p.record.expires_at)
    }

    /// When the live session in `key` began.
    pub fn created_at(&self, key: &str) -> Option<OffsetDateTime> {
        self.live(key).map(|p| p.record.created_at)
    }

    /// A new session's payload.
    pub fn save(&self, state: &SessionState, ttl: &time::Duration) -> Result<String, StoreError> {
        let now = self.clock.now();
        let sid = SessionId::generate()?.stem();
        self.encode(sid, SessionRecord::new(state, now, now, ttl)?)
    }

    /// The payload of the session in `key` with `state`: same id and creation time.
    pub fn update(
        &self,
        key: &str,
        state: &SessionState,
        ttl: &time::Duration,
    ) -> Result<String, StoreError> {
        let Some(old) = self.live(key) else {
            return self.save(state, ttl);
        };
        let now = self.clock.now();
        let mut record = SessionRecord::new(state, now, now, ttl)?;
        record.created_at = old.record.created_at;
        self.encode(old.sid, record)
    }

    fn encode(&self, sid: String, record: SessionRecord) -> Result<String, StoreError> {
        // The size rule of every store first, then what the browser will keep.
        record.to_bytes(self.max_bytes)?;
        let text = serde_json::to_string(&Payload { sid, record }).map_err(StoreError::Encode)?;
        let size = self.cookie_size(text.len());
        if size > BROWSER_LIMIT {
            return Err(StoreError::TooLarge {
                size,
                limit: BROWSER_LIMIT,
            });
        }
        Ok(text)
    }

    /// The size of the cookie for a payload of `len` bytes: its name, `=`, and the encrypted
    /// payload (AES-GCM: a 12-byte nonce and a 16-byte tag) in base64.
    fn cookie_size(&self, len: usize) -> usize {
        let sealed = len.saturating_add(12 + 16);
        let base64 = sealed.div_ceil(3).saturating_mul(4);
        self.cookie_name_len
            .saturating_add(1)
            .saturating_add(base64)
    }
}

impl ClientSide for CookieCodec {
    fn kind(&self) -> &'static str {
        "cookie"
    }

    fn capabilities(&self) -> Capabilities {
        super::config::CAPABILITIES
    }

    fn load(&self, value: &str) -> (Option<String>, Option<Loaded>) {
        let Ok(payload) = serde_json::from_str::<Payload>(value) else {
            return (None, None);
        };
        let tag = payload.sid.get(..12).map(str::to_owned);
        let live = (!payload.record.is_expired(self.clock.now()))
            .then(|| Loaded::from(&payload.record));
        (tag, live)
    }

    fn save(&self, state: &SessionState, ttl: &time::Duration) -> Result<String, StoreError> {
        CookieCodec::save(self, state, ttl)
    }

    fn update(
        &self,
        value: &str,
        state: &SessionState,
        ttl: &time::Duration,
    ) -> Result<String, StoreError> {
        CookieCodec::update(self, value, state, ttl)
    }

    fn created_at(&self, value: &str) -> Option<OffsetDateTime> {
        CookieCodec::created_at(self, value)
    }

    fn expires_at(&self, value: &str) -> Option<OffsetDateTime> {
        CookieCodec::expires_at(self, value)
    }

    fn decode(&self, value: &str) -> Option<(String, SessionRecord)> {
        serde_json::from_str::<Payload>(value)
            .ok()
            .map(|p| (p.sid, p.record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pairs: &[(&str, &str)]) -> SessionState {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_payload_round_trips_keeps_its_id_and_creation_and_ends_on_time() {
        let codec = CookieCodec::new("session", 64 * 1024);
        let key = codec
            .save(
                &state(&[("user_id", "\"alice\"")]),
                &time::Duration::minutes(5),
            )
            .expect("save");
        assert_eq!(codec.load(&key), Some(state(&[("user_id", "\"alice\"")])));
        let old: Payload = serde_json::from_str(&key).expect("payload");
        let next = codec
            .update(&key, &state(&[("n", "2")]), &time::Duration::minutes(5))
            .expect("update");
        let new: Payload = serde_json::from_str(&next).expect("payload");
        assert_eq!(
            (new.sid, new.record.created_at),
            (old.sid, old.record.created_at)
        );
        let ended = codec
            .save(&state(&[("n", "1")]), &time::Duration::seconds(-1))
            .expect("save");
        assert_eq!(codec.load(&ended), None, "an ended payload is no session");
        assert_eq!(codec.expires_at(&ended), None);
        assert_eq!(codec.load("not a payload"), None);
        assert_ne!(
            codec
                .save(&state(&[]), &time::Duration::minutes(5))
                .expect("a"),
            codec
                .save(&state(&[]), &time::Duration::minutes(5))
                .expect("b"),
            "two sessions never share a value"
        );
    }

    #[test]
    fn a_cookie_past_what_browsers_keep_is_refused_with_its_size() {
        let codec = CookieCodec::new("session", 64 * 1024);
        let fits = format!("\"{}\"", "x".repeat(2500));
        codec
            .save(&state(&[("pad", &fits)]), &time::Duration::minutes(5))
            .expect("fits in a cookie");
        let big = format!("\"{}\"", "x".repeat(3100));
        match codec.save(&state(&[("pad", &big)]), &time::Duration::minutes(5)) {
            Err(StoreError::TooLarge { size, limit }) => {
                assert_eq!(limit, BROWSER_LIMIT);
                assert!(size > BROWSER_LIMIT, "{size}");
            }
            other => panic!("refused as too large, not {other:?}"),
        }
        // The size rule of every store applies first.
        let small = CookieCodec::new("session", 256);
        assert!(matches!(
            small.save(&state(&[("pad", "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"")]), &time::Duration::minutes(5)),
            Err(StoreError::TooLarge { limit: 256, .. })
        ));
    }
}
