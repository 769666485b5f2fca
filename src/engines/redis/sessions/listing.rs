//! Listing Redis sessions a `SCAN` step at a time: each step's keys (about a thousand) become one
//! batch, their ends and sizes asked for all at once over the multiplexed connection (which
//! pipelines them), so that a listing of millions costs a round trip per command batch, not per
//! key, and holds one step's keys at a time.

use futures_util::stream::{self, StreamExt};
use time::OffsetDateTime;

use super::RedisSessionStore;
use crate::engines::redis::connection;
use crate::store::backend::{Listing, SessionSummary};
use crate::store::StoreError;

/// Lookups of one batch in flight at once.
const IN_FLIGHT: usize = 64;

/// Where a listing is: the nodes to scan (known after the first step), the node and its cursor.
struct Scan {
    nodes: Option<Vec<Option<(String, u16)>>>,
    node: usize,
    cursor: u64,
}

impl RedisSessionStore {
    /// Every session, one `SCAN` step per batch, node after node.
    pub(super) fn scan_batches(&self) -> Listing<'_> {
        let pattern = format!("{}*", crate::engines::redis::blocking::glob_escape(&self.prefix));
        let start = Scan {
            nodes: None,
            node: 0,
            cursor: 0,
        };
        Box::pin(stream::try_unfold(start, move |mut at| {
            let pattern = pattern.clone();
            async move {
                loop {
                    if at.nodes.is_none() {
                        at.nodes = Some(self.note(self.engine.scan_nodes().await)?);
                    }
                    let Some(node) = at.nodes.as_ref().and_then(|n| n.get(at.node)).cloned()
                    else {
                        return Ok(None);
                    };
                    let (next, keys) =
                        self.note(self.engine.scan_step(&node, at.cursor, &pattern).await)?;
                    if next == 0 {
                        at.node += 1;
                    }
                    at.cursor = next;
                    let batch = self.summaries(keys).await?;
                    if !batch.is_empty() {
                        return Ok(Some((batch, at)));
                    }
                }
            }
        }))
    }

    /// The end and size of each key that names a session (the prefix and a digest): the
    /// set-aside values and anything else sharing the prefix are left out, and so is a key
    /// that expired since the step.
    async fn summaries(&self, keys: Vec<Vec<u8>>) -> Result<Vec<SessionSummary>, StoreError> {
        let prefix = self.prefix.as_bytes();
        let sessions = keys.into_iter().filter_map(|key| {
            let stem = key.strip_prefix(prefix).filter(|s| {
                s.len() == 64 && s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })?;
            let stem = String::from_utf8_lossy(stem).into_owned();
            Some((key, stem))
        });
        let looked_up: Vec<Result<Option<SessionSummary>, StoreError>> = stream::iter(sessions)
            .map(|(key, stem)| async move {
                let at: i64 = self.query(redis::cmd("EXPIRETIME").arg(&key)).await?;
                let Some(expires_at) = (at >= 0)
                    .then(|| OffsetDateTime::from_unix_timestamp(at).ok())
                    .flatten()
                else {
                    return Ok(None);
                };
                let bytes: u64 = match self.query(redis::cmd("STRLEN").arg(&key)).await {
                    Ok(bytes) => bytes,
                    // Not a session: another program's key under the prefix.
                    Err(e) if connection::is_wrong_type(&e) => return Ok(None),
                    Err(e) => return Err(e),
                };
                Ok(Some(SessionSummary {
                    stem,
                    expires_at,
                    bytes: Some(bytes),
                }))
            })
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        looked_up
            .into_iter()
            .filter_map(Result::transpose)
            .collect()
    }
}
