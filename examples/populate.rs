//! Fills a session folder with real sessions, for the benchmarks and `scripts/scale.sh`.
//!
//! ```sh
//! cargo run --release --example populate -- DIR LIVE [EXPIRED] [KEYS_FILE]
//! ```
//!
//! Writes LIVE sessions that last a day and EXPIRED ones that ended a minute ago, through the
//! store itself, and the ids of up to 1000 live ones to KEYS_FILE, one per line.

use std::io::Write;

use actix_session::storage::SessionStore;
use session_server::store::{FileSessionStore, FileStoreOptions, SessionState};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: populate DIR LIVE [EXPIRED] [KEYS_FILE]";
    let dir = args.first().ok_or(usage)?;
    let live: usize = args.get(1).ok_or(usage)?.parse()?;
    let expired: usize = args.get(2).map_or(Ok(0), |s| s.parse())?;
    let keys_file = args.get(3);
    let store = FileSessionStore::open(
        FileStoreOptions::new(dir)
            .cleanup_interval(None)
            .io_threads(4),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
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
                        ("user_id".to_owned(), format!("\"user{}\"", done + i)),
                        ("visits".to_owned(), "1".to_owned()),
                    ]
                    .into();
                    store.save(state, &ttl)
                });
                for key in futures_util::future::join_all(saves).await {
                    let key = key?;
                    if ttl.is_positive() && keys.len() < 1000 {
                        keys.push(key.as_ref().to_owned());
                    }
                }
                done += batch;
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(keys)
    })?;
    if let Some(path) = keys_file {
        let mut out = std::fs::File::create(path)?;
        for k in &keys {
            writeln!(out, "{k}")?;
        }
    }
    eprintln!(
        "wrote {live} live and {expired} expired sessions to {dir} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
