//! memcached's connections: a pool per server (deadpool) on the engine's own runtime, the
//! server a session's key lives on (rendezvous hashing: adding a server moves only its share of
//! the sessions), and the exptime memcached needs for a session's end.

use std::time::Duration;

use async_memcached::{Client, Status};
use deadpool::managed::{self, Metrics, Pool, RecycleError, RecycleResult};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::store::StoreError;

/// memcached reads an exptime above this many seconds as an absolute unix time.
pub const RELATIVE_LIMIT: i64 = 30 * 24 * 3600;

/// Makes and checks connections to one server.
pub struct Manager {
    pub(super) address: String,
}

impl managed::Manager for Manager {
    type Type = Client;
    type Error = async_memcached::Error;

    async fn create(&self) -> Result<Client, async_memcached::Error> {
        Client::new(&self.address).await
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<Self::Error> {
        // A connection whose operation was abandoned half-way (a timeout) is closed by the
        // client; it is replaced, never reused.
        if client.is_closed() {
            Err(RecycleError::message("connection closed"))
        } else {
            Ok(())
        }
    }
}

/// Why a call failed, before it becomes a [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub enum MemcachedError {
    #[error("memcached: {0}")]
    Memcached(#[from] async_memcached::Error),
    #[error("memcached: no connection: {0}")]
    Pool(String),
    #[error("memcached: no answer within {0:?}")]
    Timeout(Duration),
    #[error("memcached: {0}")]
    Runtime(#[from] crate::engines::runtime::RuntimeError),
}

/// `e` from the server at `at` (its name as configured).
pub(super) fn store_error(e: MemcachedError, at: &str) -> StoreError {
    match e {
        MemcachedError::Timeout(after) => StoreError::EngineTimeout {
            engine: "memcached",
            at: at.to_owned(),
            after,
        },
        other => StoreError::Engine {
            engine: "memcached",
            source: Box::new(crate::store::At {
                address: at.to_owned(),
                source: Box::new(other),
            }),
        },
    }
}

/// The protocol status of a failed call, if memcached answered one.
pub(super) fn status(e: &async_memcached::Error) -> Option<&Status> {
    match e {
        async_memcached::Error::Protocol(s) => Some(s),
        _ => None,
    }
}

/// One server's pool and its rendezvous weight seed.
pub(super) struct Server {
    pub(super) pool: Pool<Manager>,
    pub(super) seed: u64,
    /// Its name as configured (`host:port` or a socket path), for error lines; shared, since
    /// every call's task holds it.
    pub(super) name: std::sync::Arc<str>,
}

/// A server's weight for a key: the highest wins (rendezvous hashing). SplitMix64 of the key's
/// first 8 digest bytes and the server's seed: stable across processes and builds.
pub(super) fn weight(key: u64, seed: u64) -> u64 {
    let mut z = key ^ seed;
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of a server named `name` (as written in `servers`).
pub(super) fn seed(name: &str) -> u64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Which of the servers with `seeds` holds the session with `digest`.
pub fn server_for(seeds: &[u64], digest: &[u8; 32]) -> usize {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let key = u64::from_be_bytes(first);
    seeds
        .iter()
        .enumerate()
        .max_by_key(|(_, &s)| weight(key, s))
        .map_or(0, |(i, _)| i)
}

/// The exptime memcached needs for `seconds` of life from `now`: relative up to 30 days, an
/// absolute unix time beyond (memcached's rule), and at least 1 (0 would mean "never").
pub fn exptime(seconds: i64, now: OffsetDateTime) -> i64 {
    let seconds = seconds.max(1);
    if seconds <= RELATIVE_LIMIT {
        seconds
    } else {
        now.unix_timestamp().saturating_add(seconds)
    }
}

/// Whole seconds from `now` until `at`, rounded up.
pub(super) fn seconds_until(at: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let left = at - now;
    let whole = left.whole_seconds();
    if left.subsec_nanoseconds() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_over_thirty_days_are_sent_as_absolute_times() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        assert_eq!(exptime(60, now), 60);
        assert_eq!(exptime(RELATIVE_LIMIT, now), RELATIVE_LIMIT);
        assert_eq!(
            exptime(RELATIVE_LIMIT + 1, now),
            1_800_000_000 + RELATIVE_LIMIT + 1
        );
        assert_eq!(exptime(400 * 86_400, now), 1_800_000_000 + 400 * 86_400);
        assert_eq!(exptime(0, now), 1, "0 would mean never");
    }

    #[test]
    fn rendezvous_spreads_keys_and_a_new_server_takes_only_its_share() {
        let names = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"];
        let three: Vec<u64> = names.iter().map(|n| seed(n)).collect();
        let mut four = three.clone();
        four.push(seed("10.0.0.4:11211"));
        let digests: Vec<[u8; 32]> = (0u32..3000)
            .map(|n| Sha256::digest(n.to_be_bytes()).into())
            .collect();
        let mut per_server = [0usize; 3];
        let mut moved = 0;
        for d in &digests {
            let before = server_for(&three, d);
            per_server[before] += 1;
            let after = server_for(&four, d);
            if after != before {
                assert_eq!(after, 3, "a key only ever moves to the new server");
                moved += 1;
            }
        }
        assert!(
            per_server.iter().all(|&n| (800..1200).contains(&n)),
            "{per_server:?}"
        );
        assert!(
            (550..950).contains(&moved),
            "about a quarter moves: {moved}"
        );
    }
}
