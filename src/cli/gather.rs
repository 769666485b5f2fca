//! What the session commands share: every stored session gathered from the store (with its
//! record when asked, read ahead a few at a time, with a progress bar on a terminal), whom a
//! session belongs to, and a store's refusal explained by what its type can do.

use futures_util::stream::StreamExt;

use super::output;
use super::CliError;
use crate::store::{SessionRecord, SessionSummary, Store, StoreError};
use crate::web::auth::USER_KEY;

/// Sessions ended at once: enough to keep an engine or the disk busy, few enough to be polite
/// to a server under load.
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
/// terminal), ordered by end then hash: for the commands that show a store at once (`watch`).
/// The commands that must work at any size stream with [`for_each_seen`] instead.
pub(super) async fn gather(store: &Store, records: bool) -> Result<Vec<Seen>, CliError> {
    let mut all = Vec::new();
    for_each_seen(store, records, Some("reading sessions"), |seen| {
        all.push(seen);
        true
    })
    .await?;
    all.sort_by(|a, b| {
        (a.summary.expires_at, &a.summary.stem).cmp(&(b.summary.expires_at, &b.summary.stem))
    });
    Ok(all)
}

/// Hands every stored session to `each`, in the store's listing order, with its record when
/// `records`: a batch listed while the one before is read (two batches read at once, which
/// keeps a disk or an engine and both cores busy), so that only a few batches are ever held,
/// whatever the store's size. `each` answers whether to go on (a reader who left stops the
/// listing). A counter on a terminal says how far it got (`what`; none when `None`, as while a
/// pager shows the output on the same terminal).
pub(super) async fn for_each_seen(
    store: &Store,
    records: bool,
    what: Option<&str>,
    mut each: impl FnMut(Seen) -> bool,
) -> Result<u64, CliError> {
    let backend = store
        .server("listing sessions")
        .map_err(|e| explain(store, e))?;
    let bar = what.map_or_else(indicatif::ProgressBar::hidden, output::counter);
    let mut batches = backend
        .list_batches()
        .map(|listed| async move {
            let listed = listed?;
            if !records {
                return Ok(listed
                    .into_iter()
                    .map(|summary| (summary, Ok(None)))
                    .collect());
            }
            // Engines list only well-formed stems; anything else is shown without a record.
            let digests: Vec<[u8; 32]> = listed.iter().filter_map(|s| digest_of(&s.stem)).collect();
            let mut read = backend.inspect_batch(digests).await.into_iter();
            Ok::<Vec<_>, StoreError>(
                listed
                    .into_iter()
                    .map(|summary| {
                        let record = match digest_of(&summary.stem) {
                            Some(_) => read.next().unwrap_or(Ok(None)),
                            None => Ok(None),
                        };
                        (summary, record)
                    })
                    .collect(),
            )
        })
        .buffered(2);
    let mut count = 0u64;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| explain(store, e))?;
        for (summary, read) in batch {
            let record = match read {
                Ok(record) => record,
                Err(StoreError::NotARecord(_)) => None,
                // Junk that took a session's place since the listing: skipped, said.
                Err(e @ StoreError::NotASessionFile { .. }) => {
                    tracing::warn!(error = %e, "skipped");
                    None
                }
                Err(e) => {
                    bar.finish_and_clear();
                    return Err(explain(store, e));
                }
            };
            count += 1;
            if !each(Seen { summary, record }) {
                bar.finish_and_clear();
                return Ok(count);
            }
        }
        bar.set_position(count);
    }
    bar.finish_and_clear();
    Ok(count)
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
