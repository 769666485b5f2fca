//! What the session commands share: every stored session gathered from the store (with its
//! record when asked, read ahead a few at a time, with a progress bar on a terminal), whom a
//! session belongs to, and a store's refusal explained by what its type can do.

use futures_util::stream::{self, StreamExt};

use super::output;
use super::CliError;
use crate::store::{SessionRecord, SessionSummary, Store, StoreError};
use crate::web::auth::USER_KEY;

/// Records read (or ended) at once: enough to keep an engine or the disk busy, few enough to be
/// polite to a server under load.
pub(super) const READ_AHEAD: usize = 32;

/// One stored session and, when asked for, its record (`None`: deleted since the listing, or
/// not a record).
pub(super) struct Seen {
    pub summary: SessionSummary,
    pub record: Option<SessionRecord>,
}

impl Seen {
    pub fn user(&self) -> Option<&str> {
        user_of(self.record.as_ref()?)
    }

    pub fn short(&self) -> &str {
        self.summary.stem.get(..12).unwrap_or(&self.summary.stem)
    }
}

/// The user id a session belongs to, as the login stored it.
pub(super) fn user_of(record: &SessionRecord) -> Option<&str> {
    record.data.get(USER_KEY)?.as_str()
}

/// Every stored session, its record read too when `records` (with a progress bar on a
/// terminal), ordered by end then hash.
pub(super) async fn gather(store: &Store, records: bool) -> Result<Vec<Seen>, CliError> {
    let listing = async { store.server("listing sessions")?.list().await };
    let mut listed = listing.await.map_err(|e| explain(store, e))?;
    listed.sort_by(|a, b| (a.expires_at, &a.stem).cmp(&(b.expires_at, &b.stem)));
    if !records {
        return Ok(listed
            .into_iter()
            .map(|summary| Seen {
                summary,
                record: None,
            })
            .collect());
    }
    let bar = output::progress(listed.len(), "reading sessions");
    let backend = store
        .server("reading a session by its digest")
        .map_err(|e| explain(store, e))?;
    let seen: Vec<Result<Seen, StoreError>> = stream::iter(listed)
        .map(|summary| {
            let bar = &bar;
            async move {
                let digest = digest_of(&summary.stem);
                let record = match digest {
                    Some(d) => match backend.inspect(&d).await {
                        Ok(record) => record,
                        Err(StoreError::NotARecord(_)) => None,
                        // Junk that took a session's place since the listing: skipped, said.
                        Err(e @ StoreError::NotASessionFile { .. }) => {
                            tracing::warn!(error = %e, "skipped");
                            None
                        }
                        Err(e) => return Err(e),
                    },
                    None => None,
                };
                bar.inc(1);
                Ok(Seen { summary, record })
            }
        })
        .buffered(READ_AHEAD)
        .collect()
        .await;
    bar.finish_and_clear();
    Ok(seen.into_iter().collect::<Result<_, _>>()?)
}

/// The digest a listing's stem names.
pub(super) fn digest_of(stem: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(stem, &mut digest).ok()?;
    Some(digest)
}

/// A store's refusal, with what the type can do instead.
pub(super) fn explain(store: &Store, e: StoreError) -> CliError {
    if !matches!(e, StoreError::Unsupported { .. }) {
        return e.into();
    }
    let (kind, can) = (store.kind(), store.capabilities());
    let why = if !can.server_side {
        format!(
            "type = \"{kind}\" keeps each session in its browser's cookie: the server holds no \
             sessions to list or delete (`sessions show <cookie value>` decodes one)"
        )
    } else if !can.can_list {
        let expiry = if can.expires_by_itself {
            format!("; {kind} drops expired sessions by itself")
        } else {
            String::new()
        };
        format!(
            "{kind} cannot list its keys: `sessions show` works with a full hash or a cookie \
             value{expiry}"
        )
    } else {
        return e.into();
    };
    CliError::Failed(format!("{e}: {why}"))
}
