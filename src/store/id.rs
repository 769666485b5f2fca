//! Session ids: what a fresh one is (256 bits from the OS CSPRNG, 43 base64url characters), the
//! exact format a cookie's value must have before any store looks it up, and the one-way name a
//! session goes by on disk and in logs, so that neither a directory listing nor a log line
//! reveals a usable id.

use actix_session::storage::SessionKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::StoreError;

/// A session id of exactly the shape [`generate`] gives: the only kind of id a store ever sees.
/// A cookie value that is not one is "no session" and never reaches a store, a file name or a
/// key. Its `Debug` shows the log tag only, so that no log line carries a usable id.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId {
    text: String,
    digest: [u8; 32],
}

impl SessionId {
    /// `text` as an id, if it is well formed.
    pub fn parse(text: &str) -> Option<Self> {
        is_well_formed(text).then(|| Self {
            digest: digest(text),
            text: text.to_owned(),
        })
    }

    /// A fresh id from the OS CSPRNG.
    pub fn generate() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(StoreError::RandomSource)?;
        let text = URL_SAFE_NO_PAD.encode(bytes);
        Ok(Self {
            digest: digest(&text),
            text,
        })
    }

    /// The id as the cookie carries it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// SHA-256 of the id: what stores index and name a session by.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Lower-case hex of the digest: the session's name on disk and in an engine.
    pub fn stem(&self) -> String {
        stem(&self.digest)
    }

    /// The short tag log lines use.
    pub fn log_tag(&self) -> String {
        hex::encode(&self.digest[..6])
    }

    /// The id as actix-session's key type. 43 characters are far below actix-session's
    /// 4064-byte cap: this is never refused.
    pub fn into_key(self) -> Result<SessionKey, StoreError> {
        SessionKey::try_from(self.text).map_err(|e| StoreError::KeyRefused(Box::new(e)))
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({})", self.log_tag())
    }
}

/// Length of a session id: 32 random bytes in unpadded base64url.
pub const ID_LEN: usize = 43;

/// How many fresh ids a new session draws before giving up: a collision of 256 random bits is
/// astronomically rare, so eight in a row mean the random source is broken.
const FRESH_ID_TRIES: usize = 8;

/// Stores a new session under a fresh id: draws ids until `try_insert` takes one (`Some`: it
/// was free and the session is stored under it), so that two sessions never share an id.
pub fn with_fresh_id<T>(
    mut try_insert: impl FnMut(&SessionId) -> Result<Option<T>, StoreError>,
) -> Result<(SessionId, T), StoreError> {
    for _ in 0..FRESH_ID_TRIES {
        let id = SessionId::generate()?;
        if let Some(done) = try_insert(&id)? {
            return Ok((id, done));
        }
    }
    Err(StoreError::IdsExhausted)
}

/// [`with_fresh_id`] for an engine whose insert is awaited.
pub async fn with_fresh_id_async<
    T,
    F: std::future::Future<Output = Result<Option<T>, StoreError>>,
>(
    mut try_insert: impl FnMut(SessionId) -> F,
) -> Result<(SessionId, T), StoreError> {
    for _ in 0..FRESH_ID_TRIES {
        let id = SessionId::generate()?;
        if let Some(done) = try_insert(id.clone()).await? {
            return Ok((id, done));
        }
    }
    Err(StoreError::IdsExhausted)
}

/// A fresh session id.
pub fn generate() -> Result<SessionKey, StoreError> {
    SessionId::generate()?.into_key()
}

/// Whether `id` has exactly the shape [`generate`] gives. Anything else is "no session" and
/// must never reach a file system call.
pub fn is_well_formed(id: &str) -> bool {
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// SHA-256 of the id: the key the stores index by.
pub fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The name a session goes by on disk: lower-case hex of its digest.
pub fn stem(digest: &[u8; 32]) -> String {
    hex::encode(digest)
}

/// A short, non-reversible tag for log lines: the first 12 hex digits of the digest, which is
/// also the start of the session's file name.
pub fn log_tag(id: &str) -> String {
    hex::encode(&digest(id)[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_well_formed_and_distinct() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert!(is_well_formed(a.as_ref()));
        assert_ne!(a.as_ref(), b.as_ref());
    }

    #[test]
    fn hostile_values_are_refused() {
        for bad in [
            "",
            "../../etc/passwd",
            &"a".repeat(42),
            &"a".repeat(44),
            &format!("{}/", "a".repeat(42)),
            &format!("{}.", "a".repeat(42)),
            &format!("{}\0", "a".repeat(42)),
            &format!("{}é", "a".repeat(41)),
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn file_stem_is_sha256_hex_and_the_log_tag_its_start() {
        assert_eq!(
            stem(&digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(log_tag("abc"), "ba7816bf8f01");
    }
}
