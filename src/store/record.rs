//! What a stored session is: [`SessionRecord`], the JSON document a session file holds, and its
//! conversion from and to the string map actix-session hands the stores.
//!
//! actix-session keeps each value as a JSON *string*; the record keeps them decoded, so that a
//! person who opens the file reads `"user_id": "alice"`, not `"user_id": "\"alice\""`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;

/// State keys starting with this character belong to the store: handed to handlers on load,
/// never written.
pub const RESERVED_PREFIX: char = '$';
/// Reserved key under which a loaded session carries its expiry (RFC 3339, as a JSON string).
pub const EXPIRES_AT_KEY: &str = "$expires_at";

/// The only format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The state map actix-session works with: key to JSON-encoded value.
pub type SessionState = HashMap<String, String>;

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub ttl_seconds: u64,
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Why bytes on disk are not a session this build can use.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a session record: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("format version {0} is not {FORMAT_VERSION}")]
    UnknownVersion(u32),
}

/// The instant `ttl` from now, rounded up to the whole second: the stored precision. Rounding up
/// means a session never ends before its lifetime, and it makes "the expiry did not move" a
/// common case that costs no write.
pub fn expiry_after(now: OffsetDateTime, ttl: &time::Duration) -> OffsetDateTime {
    let at = now + *ttl;
    let whole = at.replace_nanosecond(0).unwrap_or(at);
    if whole == at {
        at
    } else {
        whole + time::Duration::SECOND
    }
}

/// `now` without its fraction of a second.
pub fn whole_seconds(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(0).unwrap_or(now)
}

impl SessionRecord {
    /// A record of `state` that expires `ttl` from `now`.
    pub fn new(
        state: &SessionState,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
        ttl: &time::Duration,
    ) -> Result<Self, StoreError> {
        let data = state
            .iter()
            .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
            .map(|(k, v)| {
                serde_json::from_str(v)
                    .map(|value| (k.clone(), value))
                    .map_err(|source| StoreError::NotJson {
                        key: k.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            version: FORMAT_VERSION,
            created_at: whole_seconds(created_at),
            expires_at: expiry_after(now, ttl),
            ttl_seconds: ttl.whole_seconds().max(0).unsigned_abs(),
            data,
        })
    }

    /// Whether the record's lifetime is over at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    /// The state map actix-session expects, with the expiry under [`EXPIRES_AT_KEY`].
    pub fn state(&self) -> SessionState {
        let mut state: SessionState = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        if let Ok(at) = self
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)
        {
            state.insert(EXPIRES_AT_KEY.to_owned(), format!("\"{at}\""));
        }
        state
    }

    /// The pretty-printed JSON document, refused when over `limit` bytes.
    pub fn to_bytes(&self, limit: usize) -> Result<Vec<u8>, StoreError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|source| StoreError::NotJson {
            key: String::new(),
            source,
        })?;
        bytes.push(b'\n');
        if bytes.len() > limit {
            return Err(StoreError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// Parses a stored document.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let record: Self = serde_json::from_slice(bytes)?;
        if record.version != FORMAT_VERSION {
            return Err(RecordError::UnknownVersion(record.version));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn values_are_stored_decoded_and_come_back_encoded() {
        let state: SessionState = [
            ("user_id".to_owned(), "\"alice\"".to_owned()),
            ("visits".to_owned(), "3".to_owned()),
        ]
        .into();
        let now = datetime!(2026-11-22 10:00:00.5 UTC);
        let r = SessionRecord::new(&state, now, now, &time::Duration::seconds(30)).expect("json");
        let text = String::from_utf8(r.to_bytes(65536).expect("fits")).expect("utf8");
        assert!(text.contains("\"user_id\": \"alice\""), "{text}");
        assert!(
            text.contains("\"expires_at\": \"2026-11-22T10:00:31Z\""),
            "{text}"
        );
        assert!(
            text.contains("\"created_at\": \"2026-11-22T10:00:00Z\""),
            "{text}"
        );
        let back = SessionRecord::from_bytes(text.as_bytes()).expect("parses");
        let mut loaded = back.state();
        assert_eq!(
            loaded.remove(EXPIRES_AT_KEY).as_deref(),
            Some("\"2026-11-22T10:00:31Z\"")
        );
        assert_eq!(loaded, state);
        let again = SessionRecord::new(&back.state(), now, now, &time::Duration::seconds(30))
            .expect("json");
        assert!(
            !again.data.contains_key(EXPIRES_AT_KEY),
            "reserved keys are never stored"
        );
    }

    #[test]
    fn bad_documents_are_told_apart() {
        assert!(matches!(
            SessionRecord::from_bytes(b""),
            Err(RecordError::Malformed(_))
        ));
        assert!(matches!(
            SessionRecord::from_bytes(b"{\"version\":1"),
            Err(RecordError::Malformed(_))
        ));
        let v2 = br#"{"version":2,"created_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:00:00Z","ttl_seconds":1,"data":{}}"#;
        assert!(matches!(
            SessionRecord::from_bytes(v2),
            Err(RecordError::UnknownVersion(2))
        ));
    }

    #[test]
    fn over_limit_is_refused() {
        let state: SessionState = [("k".to_owned(), format!("\"{}\"", "x".repeat(100)))].into();
        let now = OffsetDateTime::now_utc();
        let r = SessionRecord::new(&state, now, now, &time::Duration::seconds(1)).expect("json");
        assert!(matches!(r.to_bytes(64), Err(StoreError::TooLarge { .. })));
    }
}
