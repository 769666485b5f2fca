//! Fills a session folder with real sessions, for the benchmarks and `scripts/scale.sh`.
//!
//! ```sh
//! cargo run --release --example populate -- DIR LIVE [EXPIRED] [KEYS_FILE] [SECRET_KEY_FILE [KEY_PURPOSE]]
//! ```
//!
//! Writes LIVE logged-in sessions that last a day and EXPIRED ones that ended a minute ago,
//! through the store itself. KEYS_FILE gets the ids of up to 1000 live ones, one per line; or,
//! when SECRET_KEY_FILE is given (created if missing, as the server would), a `session=<value>`
//! cookie line for every live session, signed as the server signs them, so that a load test can
//! use many sessions without logging each one in. KEY_PURPOSE says which key signs the cookie:
//! `session` (the key derived for the session cookie, the default) or `master` (the secret key
//! itself, as builds before the per-cookie keys did).

use std::io::Write;

use actix_session::storage::SessionStore;
use actix_web::cookie::{Cookie, CookieJar};
use session_server::engines::filesystem::{FileSessionStore, FileStoreOptions};
use session_server::store::SessionState;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: populate DIR LIVE [EXPIRED] [KEYS_FILE] [SECRET_KEY_FILE [session|master]]";
    let dir = args.first().ok_or(usage)?;
    let live: usize = args.get(1).ok_or(usage)?.parse()?;
    let expired: usize = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let keys_file = args.get(3);
    let signing = match args.get(4) {
        Some(path) => {
            let master = session_server::secret::load_or_create(path.as_ref(), None)?;
            Some(match args.get(5).map(String::as_str) {
                None | Some("session") => session_server::secret::derive_key(&master, "session"),
                Some("master") => master,
                Some(_) => return Err(usage.into()),
            })
        }
        None => None,
    };
    let store = FileSessionStore::open(FileStoreOptions::new(dir).io_threads(4))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let keep = if signing.is_some() { live } else { 1000 };
    let keys = runtime.block_on(async {
        let mut keys = Vec::new();
        for (count, ttl) in [
            (live, time::Duration::days(1)),
            (expired, time::Duration::seconds(-60)),
        ] {
            let mut done = 0;
            while done < count {
                let batch = (count - done).min(512);
                let saves = (0..batch).map(|i| {
                    let state: SessionState = [
                        ("user_id".to_owned(), "\"bench\"".to_owned()),
                        ("visits".to_owned(), "1".to_owned()),
                        ("csrf_token".to_owned(), format!("\"token-{}\"", done + i)),
                    ]
                    .into();
                    store.save(state, &ttl)
                });
                for key in futures_util::future::join_all(saves).await {
                    let key = key?;
                    if ttl.is_positive() && keys.len() < keep {
                        keys.push(key.as_ref().to_owned());
                    }
                }
                done += batch;
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(keys)
    })?;
    if let Some(path) = keys_file {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for k in &keys {
            match &signing {
                Some(key) => {
                    let mut jar = CookieJar::new();
                    jar.signed_mut(key).add(Cookie::new("session", k.clone()));
                    let value = jar.get("session").ok_or("cookie just added")?.value();
                    writeln!(out, "session={value}")?;
                }
                None => writeln!(out, "{k}")?,
            }
        }
        out.flush()?;
    }
    eprintln!(
        "wrote {live} live and {expired} expired sessions to {dir} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
