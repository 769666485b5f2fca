//! `sessions watch`: the store looked at every interval and compared with the look before, so a
//! person sees the session's life: created at login, renewed or updated by each request,
//! deleted at logout, expired when its lifetime runs out. On a terminal the screen is redrawn
//! with a countdown per session; piped, one line per event, for a log or a test.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use time::OffsetDateTime;

use super::gather::{gather, Seen};
use super::output::{shown, table, until};
use super::CliError;
use crate::store::Store;

/// What a session looked like at one look.
#[derive(Clone, PartialEq)]
struct Look {
    expires_at: OffsetDateTime,
    data: Option<serde_json::Map<String, serde_json::Value>>,
    user: Option<String>,
}

impl From<&Seen> for Look {
    fn from(s: &Seen) -> Self {
        Self {
            expires_at: s.summary.expires_at,
            data: s.record.as_ref().map(|r| r.data.clone()),
            user: s.user().map(str::to_owned),
        }
    }
}

/// Events shown under the table on a terminal.
const RECENT: usize = 12;

pub async fn watch(store: &Store, every: Duration) -> Result<(), CliError> {
    let terminal = std::io::stdout().is_terminal();
    let mut before: HashMap<String, Look> = HashMap::new();
    let mut recent: Vec<String> = Vec::new();
    let mut first = true;
    loop {
        let seen = gather(store, true).await?;
        let now = OffsetDateTime::now_utc();
        let now_looks: HashMap<String, Look> = seen
            .iter()
            .map(|s| (s.summary.stem.clone(), Look::from(s)))
            .collect();
        let events = if first {
            Vec::new()
        } else {
            changes(&before, &now_looks, now)
        };
        first = false;
        let mut out = std::io::stdout().lock();
        let written = if terminal {
            recent.extend(events);
            let keep = recent.len().saturating_sub(RECENT);
            recent.drain(..keep);
            write!(out, "\x1b[2J\x1b[H{}", screen(store, &seen, &recent, now))
        } else {
            events.iter().try_for_each(|e| writeln!(out, "{e}"))
        };
        match written.and_then(|()| out.flush()) {
            // Whoever read the events has gone (`| head`): done.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.map_err(CliError::io("cannot write the output"))?,
        }
        drop(out);
        before = now_looks;
        tokio::time::sleep(every).await;
    }
}

/// One line per difference between two looks.
fn changes(
    before: &HashMap<String, Look>,
    after: &HashMap<String, Look>,
    now: OffsetDateTime,
) -> Vec<String> {
    let clock = super::output::when(now);
    let clock = clock.get(11..).unwrap_or(&clock);
    let line = |what: &str, stem: &str, look: &Look| {
        let who = shown(look.user.as_deref().unwrap_or("-"));
        format!(
            "{clock}  {what:<8} {}  user={who}  ends {}",
            shown(stem.get(..12).unwrap_or(stem)),
            until(look.expires_at, now)
        )
    };
    let mut events = Vec::new();
    for (stem, now_look) in after {
        let live = now_look.expires_at > now;
        match before.get(stem) {
            None if live => events.push(line("created", stem, now_look)),
            None => {}
            Some(old) if old.data != now_look.data => events.push(line("updated", stem, now_look)),
            Some(old) if old.expires_at != now_look.expires_at => {
                events.push(line("renewed", stem, now_look));
            }
            Some(old) if old.expires_at > now && !live => {
                events.push(line("expired", stem, now_look));
            }
            Some(_) => {}
        }
    }
    for (stem, old) in before {
        if !after.contains_key(stem) {
            let what = if old.expires_at <= now {
                "expired"
            } else {
                "deleted"
            };
            events.push(line(what, stem, old));
        }
    }
    events.sort();
    events
}

fn screen(store: &Store, seen: &[Seen], recent: &[String], now: OffsetDateTime) -> String {
    let live: Vec<&Seen> = seen.iter().filter(|s| s.summary.is_live(now)).collect();
    let rows: Vec<Vec<String>> = live
        .iter()
        .map(|s| {
            vec![
                shown(s.short()).into_owned(),
                shown(s.user().unwrap_or("-")).into_owned(),
                until(s.summary.expires_at, now),
            ]
        })
        .collect();
    let mut text = format!(
        "{} live sessions in the {} store   {} UTC   (Ctrl-C to stop)\n\n",
        live.len(),
        store.kind(),
        super::output::when(now)
    );
    text.push_str(&table(&["SESSION", "USER", "ENDS IN"], &rows));
    text.push_str("\nrecent events:\n");
    for e in recent {
        text.push_str(e);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(at: OffsetDateTime, visits: i64) -> Look {
        let mut data = serde_json::Map::new();
        data.insert("visits".into(), visits.into());
        Look {
            expires_at: at,
            data: Some(data),
            user: Some("alice".into()),
        }
    }

    #[test]
    fn each_change_of_a_session_is_named() {
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::seconds(30);
        let stems = [
            "a".repeat(64),
            "b".repeat(64),
            "c".repeat(64),
            "d".repeat(64),
        ];
        let before: HashMap<_, _> = [
            (stems[0].clone(), look(later, 1)),
            (stems[1].clone(), look(later, 1)),
            (stems[2].clone(), look(later, 1)),
        ]
        .into();
        let after: HashMap<_, _> = [
            (stems[0].clone(), look(later, 2)),
            (
                stems[1].clone(),
                look(later + time::Duration::seconds(5), 1),
            ),
            (stems[3].clone(), look(later, 1)),
        ]
        .into();
        let events = changes(&before, &after, now).join("\n");
        for (what, stem) in [
            ("updated", &stems[0]),
            ("renewed", &stems[1]),
            ("deleted", &stems[2]),
            ("created", &stems[3]),
        ] {
            assert!(
                events.contains(&format!("{what:<8} {}", &stem[..12])),
                "{what}: {events}"
            );
        }
        let mut hostile = look(later, 1);
        hostile.user = Some("\x1b]52;c;SGVsbG8=\x07\x1b[2J".into());
        let created = changes(&HashMap::new(), &[(stems[0].clone(), hostile)].into(), now);
        assert!(
            created[0].contains(r"user=\u{1b}]52;c;SGVsbG8=\u{7}\u{1b}[2J  "),
            "{created:?}"
        );
        assert!(!created[0].contains(['\x1b', '\x07']), "{created:?}");
        let gone: HashMap<_, _> =
            [(stems[0].clone(), look(now - time::Duration::SECOND, 1))].into();
        assert!(changes(&gone, &HashMap::new(), now)[0].contains("expired"));
    }
}
