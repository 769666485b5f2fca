//! `sessions list | stats | gc | purge` (and the shared reading `show` and `watch` use): what
//! the configured store holds, read through the store seam, so that every command works on
//! every type whose engine can list, and says plainly when one cannot.
//!
//! Deleting is the stores' own: `gc` is the sweeper's delete-if-still-expired, and `purge` is a
//! logout, so a request writing a session at that moment writes nothing (deletion wins).

use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use time::OffsetDateTime;

use super::gather::{digest_of, explain, gather, Seen, READ_AHEAD};
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

async fn list(
    store: &Store,
    user: Option<&str>,
    expired: bool,
    as_json: bool,
) -> Result<(), CliError> {
    let now = OffsetDateTime::now_utc();
    let wanted = user.map(canonical_id);
    let seen: Vec<Seen> = gather(store, true)
        .await?
        .into_iter()
        .filter(|s| expired || s.summary.is_live(now))
        .filter(|s| {
            wanted
                .as_ref()
                .is_none_or(|w| s.user().is_some_and(|u| canonical_id(u) == *w))
        })
        .collect();
    if as_json {
        let rows: Vec<_> = seen
            .iter()
            .map(|s| {
                json!({
                    "hash": s.summary.stem,
                    "user": s.user(),
                    "created_at": s.record.as_ref().map(|r| rfc3339(r.created_at)),
                    "expires_at": rfc3339(s.summary.expires_at),
                    "expires_in": (s.summary.expires_at - now).whole_seconds(),
                    "bytes": s.summary.bytes,
                })
            })
            .collect();
        return output::page(&format!("{}\n", output::json(&rows, false)?));
    }
    if seen.is_empty() {
        eprintln!("no sessions");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = seen
        .iter()
        .map(|s| {
            vec![
                shown(s.short()).into_owned(),
                shown(s.user().unwrap_or("-")).into_owned(),
                s.record
                    .as_ref()
                    .map_or_else(|| "?".into(), |r| when(r.created_at)),
                until(s.summary.expires_at, now),
                s.summary.bytes.map_or_else(|| "-".into(), bytes),
            ]
        })
        .collect();
    output::page(&table(
        &["SESSION", "USER", "CREATED (UTC)", "EXPIRES IN", "SIZE"],
        &rows,
    ))
}

pub(super) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

async fn stats(store: &Store, by_user: bool, as_json: bool) -> Result<(), CliError> {
    let now = OffsetDateTime::now_utc();
    let seen = gather(store, true).await?;
    let (live, ended): (Vec<&Seen>, Vec<&Seen>) = seen.iter().partition(|s| s.summary.is_live(now));
    let total: u64 = live.iter().filter_map(|s| s.summary.bytes).sum();
    let created = live
        .iter()
        .filter_map(|s| s.record.as_ref().map(|r| r.created_at));
    let (oldest, newest) = (created.clone().min(), created.max());
    let mut users: std::collections::BTreeMap<String, u64> = Default::default();
    if by_user {
        for s in &live {
            let user = s.user().map_or("(anonymous)".into(), canonical_id);
            *users.entry(user).or_default() += 1;
        }
    }
    if as_json {
        let doc = json!({
            "type": store.kind(),
            "live": live.len(),
            "expired": ended.len(),
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
            vec!["live sessions".into(), live.len().to_string()],
            vec![
                "expired".into(),
                format!("{} (not yet deleted)", ended.len()),
            ],
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
    let seen = gather(store, wanted.is_some()).await?;
    let targets: Vec<[u8; 32]> = seen
        .iter()
        .filter(|s| {
            wanted
                .as_ref()
                .is_none_or(|w| s.user().is_some_and(|u| canonical_id(u) == *w))
        })
        .filter_map(|s| digest_of(&s.summary.stem))
        .collect();
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
