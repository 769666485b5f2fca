//! What a stored session is: [`SessionRecord`], the JSON document a session file holds, and its
//! conversion from and to the string map actix-session hands the stores.
//!
//! actix-session keeps each value as a JSON *string*; the record keeps them decoded, so that a
//! person who opens the file reads `"user_id": "alice"`, not `"user_id": "\"alice\""`.
//!
//! The map a handler sees holds exactly what handlers put there: the store's own bookkeeping
//! (expiry, creation time, cache state) travels beside it, in the record, never inside it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;

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
/// common case that costs no write. A deadline past what a date can hold is an error, not a
/// panic (the lifetime comes from the config).
pub fn expiry_after(
    now: OffsetDateTime,
    ttl: &time::Duration,
) -> Result<OffsetDateTime, StoreError> {
    let too_far = || StoreError::Deadline { ttl: *ttl };
    let at = now.checked_add(*ttl).ok_or_else(too_far)?;
    let whole = at.replace_nanosecond(0).unwrap_or(at);
    if whole == at {
        Ok(at)
    } else {
        whole
            .checked_add(time::Duration::SECOND)
            .ok_or_else(too_far)
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
            expires_at: expiry_after(now, ttl)?,
            ttl_seconds: ttl.whole_seconds().max(0).unsigned_abs(),
            data,
        })
    }

    /// Whether the record's lifetime is over at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }

    /// The state map actix-session expects: the session's data and nothing else.
    pub fn state(&self) -> SessionState {
        self.data
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }

    /// Moves the expiry to `ttl` from `now`.
    pub fn extend(&mut self, now: OffsetDateTime, ttl: &time::Duration) -> Result<(), StoreError> {
        self.expires_at = expiry_after(now, ttl)?;
        self.ttl_seconds = ttl.whole_seconds().max(0).unsigned_abs();
        Ok(())
    }

    /// The pretty-printed JSON document, refused when over `limit` bytes.
    pub fn to_bytes(&self, limit: usize) -> Result<Vec<u8>, StoreError> {
        self.to_text(limit).map(String::into_bytes)
    }

    /// [`Self::to_bytes`] as text, for the engines that keep the document as text.
    pub fn to_text(&self, limit: usize) -> Result<String, StoreError> {
        let mut text = serde_json::to_string_pretty(self).map_err(StoreError::Encode)?;
        text.push('\n');
        if text.len() > limit {
            return Err(StoreError::TooLarge {
                size: text.len(),
                limit,
            });
        }
        Ok(text)
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
        assert_eq!(back.state(), state, "the data and nothing else");
    }

    #[test]
    fn any_key_is_the_users_even_with_a_dollar() {
        let state: SessionState = [
            ("$cached".to_owned(), "true".to_owned()),
            ("$expires_at".to_owned(), "\"mine\"".to_owned()),
        ]
        .into();
        let now = OffsetDateTime::now_utc();
        let r = SessionRecord::new(&state, now, now, &time::Duration::seconds(30)).expect("json");
        assert_eq!(r.state(), state);
    }

    #[test]
    fn a_deadline_past_the_calendar_is_an_error_not_a_panic() {
        let now = OffsetDateTime::now_utc();
        let ttl = time::Duration::days(100_000_000);
        assert!(matches!(
            expiry_after(now, &ttl),
            Err(StoreError::Deadline { .. })
        ));
        assert!(SessionRecord::new(&SessionState::new(), now, now, &ttl).is_err());
        let mut r = SessionRecord::new(&SessionState::new(), now, now, &time::Duration::SECOND)
            .expect("record");
        assert!(r.extend(now, &ttl).is_err());
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
