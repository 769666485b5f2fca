//! `sessions list | stats | gc | purge` (and the shared reading `show` and `watch` use): what
//! the configured store holds, read through the store seam, so that every command works on
//! every type whose engine can list, and says plainly when one cannot.
//!
//! Deleting is the stores' own: `gc` is the sweeper's delete-if-still-expired, and `purge` is a
//! logout, so a request writing a session at that moment writes nothing (deletion wins).

use std::io::IsTerminal;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use time::OffsetDateTime;

use super::gather::{digest_of, explain, for_each_seen, READ_AHEAD};
use super::output::{self, bytes, shown, table, until, when};
use super::{CliError, SessionsCommand};
use crate::config::{Config, StoreType};
use crate::store::{self, Store, StoreError};
use crate::users::canonical_id;

pub async fn run(config: &Config, cmd: &SessionsCommand) -> Result<(), CliError> {
    let store = open(config)?;
    match cmd {
        SessionsCommand::List {
            user,
            expired,
            json,
        } => list(&store, user.as_deref(), *expired, *json).await,
        SessionsCommand::Show { target, json } => {
            super::show::show(config, &store, target, *json).await
        }
        SessionsCommand::Stats { by_user, json } => stats(&store, *by_user, *json).await,
        SessionsCommand::Gc => gc(&store).await,
        SessionsCommand::Purge { user, all, yes } => {
            purge(&store, if *all { None } else { user.as_deref() }, *yes).await
        }
        SessionsCommand::Watch { interval } => super::watch::watch(&store, *interval).await,
    }
}

/// The configured store; a type that is not shared is refused, since its sessions live inside
/// the server process and no other process can see them.
fn open(config: &Config) -> Result<Store, CliError> {
    let store = config.session.store;
    if !store.capabilities().shared {
        return Err(CliError::Failed(format!(
            "type = \"{store}\" keeps sessions inside the server process: no other process can \
             see them (use a shared type such as \"{}\" to inspect sessions)",
            StoreType::DEFAULT
        )));
    }
    Ok(store::open(&config.session)?)
}

/// Rows laid out together at the start of a streamed table: their widths set the columns.
const FIRST_ROWS: usize = 1000;

/// Streams the sessions (in the store's listing order, so that the first line comes at once and
/// nothing is held at any size): a table whose columns are set by its first rows, or one JSON
/// object per line inside an array.
async fn list(
    store: &Store,
    user: Option<&str>,
    expired: bool,
    as_json: bool,
) -> Result<(), CliError> {
    let now = OffsetDateTime::now_utc();
    let wanted = user.map(canonical_id);
    let header = ["SESSION", "USER", "CREATED (UTC)", "EXPIRES IN", "SIZE"];
    let mut first: Vec<Vec<String>> = Vec::new();
    let mut widths = Vec::new();
    let mut out = Sink::default();
    let mut rows = 0u64;
    // No counter while a pager may show the rows on the same terminal.
    let counter = (!std::io::stdout().is_terminal()).then_some("listing sessions");
    for_each_seen(store, true, counter, |s| {
        if out.stopped() {
            return false;
        }
        let keep = (expired || s.summary.is_live(now))
            && wanted
                .as_ref()
                .is_none_or(|w| s.user().is_some_and(|u| canonical_id(u) == *w));
        if !keep {
            return true;
        }
        rows += 1;
        if as_json {
            let row = json!({
                "hash": s.summary.stem,
                "user": s.user(),
                "created_at": s.record.as_ref().map(|r| rfc3339(r.created_at)),
                "expires_at": rfc3339(s.summary.expires_at),
                "expires_in": (s.summary.expires_at - now).whole_seconds(),
                "bytes": s.summary.bytes,
            });
            // Through the one escaping rule for stored text (a user id may hold controls).
            let row = match output::json(&row, false) {
                Ok(row) => row,
                Err(e) => {
                    out.failed = Some(e);
                    return false;
                }
            };
            let text = format!("{}{row}", if rows == 1 { "[\n" } else { ",\n" });
            out.emit(&text, true);
            return !out.stopped();
        }
        let row = vec![
            shown(s.short()).into_owned(),
            shown(s.user().unwrap_or("-")).into_owned(),
            s.record
                .as_ref()
                .map_or_else(|| "?".into(), |r| when(r.created_at)),
            until(s.summary.expires_at, now),
            s.summary.bytes.map_or_else(|| "-".into(), bytes),
        ];
        if widths.is_empty() {
            first.push(row);
            if first.len() == FIRST_ROWS {
                widths = output::widths(&header, &first);
                let text = output::table_rows(Some(&header), &first, &widths);
                first.clear();
                out.emit(&text, true);
            }
        } else {
            out.emit(&output::table_rows(None, &[row], &widths), true);
        }
        !out.stopped()
    })
    .await?;
    let rest = if as_json {
        if rows > 0 {
            "\n]\n".to_owned()
        } else {
            "[]\n".to_owned()
        }
    } else if widths.is_empty() && !first.is_empty() {
        // A store small enough to lay out at once.
        output::table(&header, &first)
    } else {
        String::new()
    };
    if rows == 0 && !as_json {
        eprintln!("no sessions");
        return Ok(());
    }
    out.emit(&rest, false);
    out.finish()
}

/// Where a streamed listing goes: started by its first text, stopped by a reader who left or a
/// write that failed.
#[derive(Default)]
struct Sink {
    out: Option<output::Streamed>,
    gone: bool,
    failed: Option<CliError>,
}

impl Sink {
    fn stopped(&self) -> bool {
        self.gone || self.failed.is_some()
    }

    /// Writes `text`; `more`: more is to come.
    fn emit(&mut self, text: &str, more: bool) {
        match &mut self.out {
            Some(out) => match out.write(text) {
                Ok(open) => self.gone |= !open,
                Err(e) => self.failed = Some(e),
            },
            None => self.out = Some(output::Streamed::start(text, more)),
        }
    }

    fn finish(self) -> Result<(), CliError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.out.map_or(Ok(()), output::Streamed::finish)
    }
}

pub(super) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// Counts as the sessions stream past: nothing is held but the counts (and, with
/// `--by-user`, one count per user).
async fn stats(store: &Store, by_user: bool, as_json: bool) -> Result<(), CliError> {
    let now = OffsetDateTime::now_utc();
    let (mut live, mut ended, mut total) = (0u64, 0u64, 0u64);
    let (mut oldest, mut newest): (Option<OffsetDateTime>, Option<OffsetDateTime>) = (None, None);
    let mut users: std::collections::BTreeMap<String, u64> = Default::default();
    for_each_seen(store, true, Some("reading sessions"), |s| {
        if !s.summary.is_live(now) {
            ended += 1;
            return true;
        }
        live += 1;
        total = total.saturating_add(s.summary.bytes.unwrap_or(0));
        if let Some(created) = s.record.as_ref().map(|r| r.created_at) {
            oldest = Some(oldest.map_or(created, |o| o.min(created)));
            newest = Some(newest.map_or(created, |n| n.max(created)));
        }
        if by_user {
            let user = s.user().map_or("(anonymous)".into(), canonical_id);
            *users.entry(user).or_default() += 1;
        }
        true
    })
    .await?;
    if as_json {
        let doc = json!({
            "type": store.kind(),
            "live": live,
            "expired": ended,
            "bytes": total,
            "oldest_created_at": oldest.map(rfc3339),
            "newest_created_at": newest.map(rfc3339),
            "by_user": by_user.then_some(&users),
        });
        return output::page(&format!("{}\n", output::json(&doc, false)?));
    }
    let mut text = table(
        &["type", store.kind()],
        &[
            vec!["live sessions".into(), live.to_string()],
            vec!["expired".into(), format!("{ended} (not yet deleted)")],
            vec!["bytes (live)".into(), bytes(total)],
            vec![
                "oldest".into(),
                oldest.map_or("-".into(), |at| format!("{} UTC", when(at))),
            ],
            vec![
                "newest".into(),
                newest.map_or("-".into(), |at| format!("{} UTC", when(at))),
            ],
        ],
    );
    if by_user {
        let rows: Vec<Vec<String>> = users
            .iter()
            .map(|(u, n)| vec![shown(u).into_owned(), n.to_string()])
            .collect();
        text.push('\n');
        text.push_str(&table(&["USER", "LIVE SESSIONS"], &rows));
    }
    output::page(&text)
}

async fn gc(store: &Store) -> Result<(), CliError> {
    if store.capabilities().expires_by_itself {
        println!(
            "the {} store drops expired sessions by itself: nothing to delete",
            store.kind()
        );
        return Ok(());
    }
    let bar = output::spinner("deleting expired sessions");
    let started = Instant::now();
    let sweep = async {
        store
            .server("deleting expired sessions")?
            .delete_expired()
            .await
    };
    let deleted = sweep.await.map_err(|e| explain(store, e))?;
    bar.finish_and_clear();
    println!(
        "deleted {deleted} expired sessions in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Ends every session of `user` (every session when `None`).
async fn purge(store: &Store, user: Option<&str>, yes: bool) -> Result<(), CliError> {
    let ended = end_sessions(store, user, yes).await?;
    match user {
        Some(u) => println!("ended {ended} sessions of {}", shown(u)),
        None => println!("ended {ended} sessions"),
    }
    Ok(())
}

/// Deletes the live sessions of `user` (all when `None`) after asking on a terminal; returns how
/// many were ended. `users remove` uses it too.
pub(super) async fn end_sessions(
    store: &Store,
    user: Option<&str>,
    yes: bool,
) -> Result<usize, CliError> {
    let wanted = user.map(canonical_id);
    // Only the digests are kept: 32 bytes a session.
    let mut targets: Vec<[u8; 32]> = Vec::new();
    for_each_seen(store, wanted.is_some(), Some("finding sessions"), |s| {
        let chosen = wanted
            .as_ref()
            .is_none_or(|w| s.user().is_some_and(|u| canonical_id(u) == *w));
        if let Some(digest) = chosen.then(|| digest_of(&s.summary.stem)).flatten() {
            targets.push(digest);
        }
        true
    })
    .await?;
    if targets.is_empty() {
        return Ok(0);
    }
    let question = match user {
        Some(u) => format!("End {} sessions of {}?", targets.len(), shown(u)),
        None => format!(
            "End all {} sessions (everyone is logged out)?",
            targets.len()
        ),
    };
    if !output::confirm(&question, yes)? {
        return Err(CliError::Failed("nothing deleted".into()));
    }
    let bar = output::progress(targets.len(), "ending sessions");
    let backend = store
        .server("deleting a session by its digest")
        .map_err(|e| explain(store, e))?;
    let results: Vec<Result<(), StoreError>> = stream::iter(&targets)
        .map(|d| {
            let bar = &bar;
            async move {
                let r = backend.remove(d).await;
                bar.inc(1);
                r
            }
        })
        .buffer_unordered(READ_AHEAD)
        .collect()
        .await;
    bar.finish_and_clear();
    for r in results {
        r.map_err(|e| explain(store, e))?;
    }
    Ok(targets.len())
}
