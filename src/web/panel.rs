//! The session panel of the home page: what the browser holds (the cookie's name, flags and
//! kind), what the server keeps (the session's data with the CSRF token masked, and where it is
//! stored), and when it ends (after idling, and for good: `absolute_lifetime` after the login),
//! with the seconds left that `static/session.js` counts down. It
//! teaches what the Flask tutorials explain with the browser's developer tools.

use actix_session::Session;
use serde::Serialize;
use time::OffsetDateTime;

use super::AppState;
use crate::store::record::expiry_after;
use crate::store::{id, seen, Place};

/// What the panel shows, as the template reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// RFC 3339, for `<time datetime>`; empty when the store cannot say.
    pub started_at: String,
    /// For a person: `HH:MM:SS UTC`.
    pub started_text: String,
    pub expires_at: String,
    pub expires_text: String,
    /// From this answer to the end: the countdown's start.
    pub seconds_left: i64,
    /// The login's absolute end (`absolute_lifetime`); empty when there is none.
    pub login_ends_at: String,
    pub login_ends_text: String,
    pub refresh_each_request: bool,
    pub cookie_name: String,
    pub same_site: String,
    pub secure: bool,
    /// false for a type whose cookie is the session itself.
    pub server_side: bool,
    pub store: &'static str,
    /// The message that names the place, and its arguments.
    pub place_key: &'static str,
    pub place_name: String,
    pub place_table: String,
    /// The session's data as the store will keep it after this request, pretty JSON.
    pub data: String,
}

impl Panel {
    /// The panel of `session`, logged in, answered now. `changed`: this request changes the
    /// session (so the store moves its expiry whatever `refresh_each_request` says).
    pub fn of(state: &AppState, session: &Session, changed: bool) -> Option<Panel> {
        let s = &state.config.session;
        // The start and the end are the store's bookkeeping, not session data: as this
        // request's load found them (no second look, no second check of the cookie).
        // Only what the panel shows is copied (for the cookie type, `asked` is the session).
        let (asked, live, digest) =
            seen::with(|seen| (seen.asked.is_some(), seen.live, seen.digest))?;
        if !asked {
            return None;
        }
        let started = live.map(|live| live.created_at);
        let now = s.clock.now();
        let expires = if changed || s.refresh_each_request {
            // This very answer moves the expiry (a change, or every request).
            expiry_after(now, &s.ttl()).ok()
        } else {
            live.map(|live| live.expires_at)
        }?;
        let server_side = state.store.capabilities().server_side;
        let stem = digest.map(|d| id::stem(&d)).unwrap_or_default();
        let Place {
            message: place_key,
            name: place_name,
            table: place_table,
            ..
        } = crate::engines::place(s, &stem);
        let login_ends = super::account::Accounts::logged_in_at(session)
            .and_then(|at| state.accounts.ends_at(at));
        Some(Panel {
            login_ends_at: login_ends.map(rfc3339).unwrap_or_default(),
            login_ends_text: login_ends.map(clock).unwrap_or_default(),
            started_at: started.map(rfc3339).unwrap_or_default(),
            started_text: started.map(clock).unwrap_or_default(),
            expires_at: rfc3339(expires),
            expires_text: clock(expires),
            seconds_left: (expires - now).whole_seconds().max(0),
            refresh_each_request: s.refresh_each_request,
            cookie_name: s.cookie_name.clone(),
            // As the Set-Cookie header spells it.
            same_site: super::same_site(s.cookie_samesite).to_string(),
            secure: s.cookie_secure,
            server_side,
            store: s.store.name(),
            place_key,
            place_name,
            place_table,
            data: shown_data(session),
        })
    }

    /// A panel with every field set: for the templates' start-up check.
    pub fn sample() -> Panel {
        Panel {
            started_at: "2026-01-01T00:00:00Z".into(),
            started_text: "00:00:00 UTC".into(),
            expires_at: "2026-01-01T00:00:30Z".into(),
            expires_text: "00:00:30 UTC".into(),
            seconds_left: 30,
            login_ends_at: "2026-01-08T00:00:00Z".into(),
            login_ends_text: "00:00:00 UTC".into(),
            refresh_each_request: true,
            cookie_name: "session".into(),
            same_site: "Lax".into(),
            secure: false,
            server_side: true,
            store: crate::engines::StoreType::DEFAULT.name(),
            place_key: "panel-place-file",
            place_name: "0000.json".into(),
            place_table: String::new(),
            data: "{}".into(),
        }
    }
}

/// The session's entries as one JSON object, keys sorted, the CSRF token masked.
fn shown_data(session: &Session) -> String {
    let entries = session.entries();
    let mut data = serde_json::Map::new();
    let mut keys: Vec<&String> = entries.keys().collect();
    keys.sort();
    for key in keys {
        let value = serde_json::from_str(&entries[key]).unwrap_or(serde_json::Value::Null);
        data.insert(key.clone(), value);
    }
    super::csrf::mask_in(&mut data);
    serde_json::to_string_pretty(&data).unwrap_or_default()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn clock(at: OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[hour]:[minute]:[second] UTC"
    ))
    .unwrap_or_default()
}
