//! Session ids: what a fresh one is (256 bits from the OS CSPRNG, 43 base64url characters), the
//! exact format a cookie's value must have before any store looks it up, and the one-way name a
//! session goes by on disk and in logs, so that neither a directory listing nor a log line
//! reveals a usable id.

use actix_session::storage::SessionKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::StoreError;

/// Length of a session id: 32 random bytes in unpadded base64url.
pub const ID_LEN: usize = 43;

/// A fresh session id.
pub fn generate() -> Result<SessionKey, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(StoreError::RandomSource)?;
    // 43 characters are far below actix-session's 4064-byte cap: this is never refused.
    SessionKey::try_from(URL_SAFE_NO_PAD.encode(bytes))
        .map_err(|e| StoreError::KeyRefused(Box::new(e)))
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
