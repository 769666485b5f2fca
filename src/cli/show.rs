//! `sessions show`: from what the operator has (a file name, the start of a hash, or the cookie
//! value copied out of the browser's developer tools) to what the server remembers. A cookie
//! value is checked with the server's own key first, exactly as a request's would be, and is
//! then only the way to its digest: the id itself is never printed.

use actix_web::cookie::{Cookie, CookieJar};
use time::OffsetDateTime;

use super::gather::{digest_of, explain, user_of};
use super::output::{self, shown, span, until, when};
use super::CliError;
use crate::config::Config;
use crate::store::{id, SessionId, SessionRecord, Store};
use crate::web::csrf;

/// What the operator gave, once recognised.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Digest([u8; 32]),
    Prefix(String),
    Cookie(String),
}

/// Shortest hash prefix taken: fewer digits would match half the store.
const MIN_PREFIX: usize = 4;

fn recognise(text: &str) -> Target {
    let text = text.trim();
    let name = text.rsplit('/').next().unwrap_or(text);
    let stem = name
        .strip_suffix(".json")
        .unwrap_or(name)
        .to_ascii_lowercase();
    if stem.len() >= MIN_PREFIX && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Some(digest) = digest_of(&stem) {
            return Target::Digest(digest);
        }
        if stem.len() < 64 {
            return Target::Prefix(stem);
        }
    }
    Target::Cookie(text.to_owned())
}

pub async fn show(config: &Config, store: &Store, text: &str, json: bool) -> Result<(), CliError> {
    let (digest, record) = match recognise(text) {
        Target::Digest(d) => (d, None),
        Target::Prefix(p) => (by_prefix(store, &p).await?, None),
        Target::Cookie(value) => match from_cookie(config, &value)? {
            FromCookie::Id(id) => (*id.digest(), None),
            FromCookie::Record(sid, record) => (digest_of(&sid).unwrap_or_default(), Some(record)),
        },
    };
    let record = match record {
        Some(r) => r,
        None => async {
            store
                .server("reading a session by its digest")?
                .inspect(&digest)
                .await
        }
        .await
        .map_err(|e| explain(store, e))?
        .ok_or_else(|| {
            CliError::Failed(format!(
                "no stored session {} (it ended, or was never stored here)",
                id::stem(&digest)
            ))
        })?,
    };
    let stem = id::stem(&digest);
    let record = masked(record);
    if json {
        return output::page(&format!("{}\n", output::json(&record, true)?));
    }
    output::page(&describe(config, &stem, &record)?)
}

/// The one stored session whose hash starts with `prefix`.
async fn by_prefix(store: &Store, prefix: &str) -> Result<[u8; 32], CliError> {
    // Only the matches are kept, whatever the store's size.
    let mut matching = Vec::new();
    super::gather::for_each_seen(store, false, Some("finding the session"), |s| {
        if s.summary.stem.starts_with(prefix) {
            matching.push(s.summary);
        }
        // Two matches already make the prefix too short.
        matching.len() < 2
    })
    .await?;
    match matching.as_slice() {
        [one] => digest_of(&one.stem)
            .ok_or_else(|| CliError::Failed(format!("{} is not a session hash", one.stem))),
        [] => Err(CliError::Failed(format!(
            "no stored session's hash starts with {prefix}"
        ))),
        many => Err(CliError::Failed(format!(
            "{} sessions' hashes start with {prefix}: give more digits",
            many.len()
        ))),
    }
}

enum FromCookie {
    /// A server-side session's id, its signature checked.
    Id(SessionId),
    /// A `cookie`-type session: its id stem and the record the cookie carries.
    Record(String, SessionRecord),
}

/// The session a cookie value names, checked (or decrypted) with the server's key.
fn from_cookie(config: &Config, value: &str) -> Result<FromCookie, CliError> {
    let s = &config.session;
    let Some(keys) = crate::secret::Keyring::configured(s)? else {
        return Err(CliError::Failed(format!(
            "no secret key at {}: the server has never started with this config, so no cookie \
             can be from it",
            s.secret_key_file.display()
        )));
    };
    let keys = crate::web::CookieKeys::of(&keys);
    // The current key first, then the older ones a rotation still accepts.
    let session_keys: Vec<&actix_web::cookie::Key> = std::iter::once(&keys.session)
        .chain(keys.older.iter().map(|k| &k.session))
        .collect();
    // As copied: maybe `name=value`, maybe percent-encoded as the Set-Cookie header sent it.
    let value = value
        .strip_prefix(&format!("{}=", s.cookie_name))
        .unwrap_or(value);
    let cookie = Cookie::parse_encoded(format!("{}={value}", s.cookie_name))
        .map_err(|e| CliError::Failed(format!("not a cookie value: {e}")))?
        .into_owned();
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    let refused = || {
        CliError::Failed(
            "this cookie value does not verify with this server's key (edited, truncated, or \
             from another server or config)"
                .into(),
        )
    };
    if !s.store.capabilities().server_side {
        // The session is the cookie, encrypted: its store decodes it.
        let payload = session_keys
            .iter()
            .find_map(|key| jar.private(key).get(&s.cookie_name))
            .ok_or_else(refused)?;
        let store = crate::store::open(s)?;
        let (sid, record) = store
            .client()
            .and_then(|codec| codec.decode(payload.value()))
            .ok_or_else(refused)?;
        return Ok(FromCookie::Record(sid, record));
    }
    let verified = session_keys
        .iter()
        .find_map(|key| jar.signed(key).get(&s.cookie_name))
        .ok_or_else(refused)?;
    SessionId::parse(verified.value())
        .map(FromCookie::Id)
        .ok_or_else(refused)
}

/// The record with its CSRF token shortened: a token printed whole could be pasted into a
/// forged form.
fn masked(mut record: SessionRecord) -> SessionRecord {
    csrf::mask_in(&mut record.data);
    record
}

fn describe(config: &Config, stem: &str, record: &SessionRecord) -> Result<String, CliError> {
    let now = OffsetDateTime::now_utc();
    // The data is shown as the JSON it is stored as, so its escapes are JSON's.
    let data = output::json(&record.data, true)?;
    let ends = if record.is_expired(now) {
        until(record.expires_at, now)
    } else {
        format!("in {}", until(record.expires_at, now))
    };
    let rows = vec![
        vec![
            "stored at".into(),
            crate::engines::place(&config.session, stem).to_string(),
        ],
        vec![
            "user".into(),
            shown(user_of(record).unwrap_or("(not logged in)")).into_owned(),
        ],
        vec!["created".into(), format!("{} UTC", when(record.created_at))],
        vec![
            "expires".into(),
            format!("{} UTC ({ends})", when(record.expires_at)),
        ],
        vec!["lifetime".into(), span(record.ttl_seconds)],
    ];
    Ok(format!(
        "{}data:\n{data}\n",
        output::table(&["session", stem], &rows)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_hashes_prefixes_and_cookies_are_told_apart() {
        let stem = "ab".repeat(32);
        let digest = digest_of(&stem).expect("hex");
        assert_eq!(recognise(&stem), Target::Digest(digest));
        assert_eq!(
            recognise(&format!("sessions/{stem}.json")),
            Target::Digest(digest)
        );
        assert_eq!(recognise(&stem.to_uppercase()), Target::Digest(digest));
        assert_eq!(recognise("3f2a9c"), Target::Prefix("3f2a9c".into()));
        assert_eq!(recognise("abc"), Target::Cookie("abc".into()));
        let cookie = "q1w2e3r4t5y6+/=Zx".to_owned();
        assert_eq!(recognise(&cookie), Target::Cookie(cookie));
    }
}
