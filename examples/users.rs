//! Fills a user database with many users and times logins against it: the figures for "a login
//! costs one bcrypt check plus microseconds, whatever the number of users".
//!
//! ```sh
//! cargo run --release --example users -- DIR USERS [LOGINS] [COST]
//! ```
//!
//! Writes `DIR/config.toml` and `DIR/users.db` with USERS users `user0`, `user1`, ... that all
//! share one precomputed hash of `password123` at bcrypt COST (default 10), inserted in one
//! transaction (hashing a million passwords would take days). If `DIR/users.db` already has
//! them it is reused. Then it builds the app in process and times LOGINS (default 20) requests
//! each: `POST /register` of a new user, and `POST /login` for existing users (right password),
//! existing users (wrong password) and unknown ids, each next to the bare bcrypt work (a hash or
//! a check) run just before it (the machine may be busy), and prints the medians.

use std::time::{Duration, Instant};

use actix_web::test::{self, TestRequest};
use session_server::config::Config;
use session_server::web::{app, AppState};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: users DIR USERS [LOGINS] [COST]";
    let dir = std::path::PathBuf::from(args.first().ok_or(usage)?);
    let count: usize = args.get(1).ok_or(usage)?.parse()?;
    let logins: usize = args.get(2).map_or(Ok(20), |s| s.parse())?;
    let cost: u32 = args.get(3).map_or(Ok(10), |s| s.parse())?;
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[session]\ntype = \"memory\"\n[auth]\nbcrypt_cost = {cost}\nmax_failed_logins = 1000000\n"
        ),
    )?;
    let config = Config::load(&config_path)?;
    let key = session_server::secret::load_or_create(&config.session.secret_key_file, None)?;
    let state = AppState::new(config, key)?;

    let hash = bcrypt::hash("password123", cost)?;
    let started = Instant::now();
    let ids: Vec<String> = (0..count).map(|i| format!("user{i}")).collect();
    let added = state
        .users
        .add_hashed(ids.iter().map(|id| (id.as_str(), "A user", hash.as_str())))?;
    eprintln!(
        "{added} users added ({} asked) in {:.1} s; database {} MB",
        count,
        started.elapsed().as_secs_f64(),
        state
            .users
            .path()
            .map_or(Ok(0), |p| std::fs::metadata(p).map(|m| m.len()))?
            / 1_000_000
    );

    let bare = median((0..logins).map(|_| {
        let t = Instant::now();
        let _ = bcrypt::verify("password123", &hash);
        t.elapsed()
    }));
    let mut rng_state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // xorshift: spread the lookups over the whole table.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        usize::try_from(rng_state % u64::try_from(count.max(1)).unwrap_or(1)).unwrap_or(0)
    };
    let run = std::process::id();
    let cases: Vec<(&str, Vec<(String, &str)>)> = vec![
        (
            "register a new user",
            (0..logins)
                .map(|i| (format!("new{run}x{i}"), "password123"))
                .collect(),
        ),
        (
            "existing user, right password",
            (0..logins)
                .map(|_| (format!("user{}", next()), "password123"))
                .collect(),
        ),
        (
            "existing user, wrong password",
            (0..logins)
                .map(|_| (format!("user{}", next()), "wrong password"))
                .collect(),
        ),
        (
            "unknown user id",
            (0..logins)
                .map(|i| (format!("nobody{i}"), "password123"))
                .collect(),
        ),
    ];
    let hash_for_run = hash.clone();
    let results = actix_web::rt::System::new().block_on(async move {
        let hash = hash_for_run;
        let service = test::init_service(app(state)).await;
        let mut out = Vec::new();
        for (what, attempts) in cases {
            let mut times = Vec::new();
            let mut statuses = Vec::new();
            let path = if what.starts_with("register") {
                "/register"
            } else {
                "/login"
            };
            for (user, password) in attempts {
                let form =
                    test::call_service(&service, TestRequest::get().uri(path).to_request()).await;
                let cookies: Vec<String> = form
                    .response()
                    .cookies()
                    .map(|c| format!("{}={}", c.name(), c.value()))
                    .collect();
                let body = test::read_body(form).await;
                let body = String::from_utf8_lossy(&body);
                let marker = "name=\"csrf_token\" value=\"";
                let token = body
                    .split_once(marker)
                    .and_then(|(_, rest)| rest.split_once('"'))
                    .map(|(t, _)| t.to_owned())
                    .unwrap_or_default();
                let req = TestRequest::post()
                    .uri(path)
                    .insert_header(("cookie", cookies.join("; ")))
                    .set_form([
                        ("user_id", user.as_str()),
                        ("user_name", "A new user"),
                        ("password", password),
                        ("repassword", password),
                        ("csrf_token", token.as_str()),
                    ])
                    .to_request();
                // The bare bcrypt work (a hash for a registration, a check for a login) right
                // before, so that both see the same load on the machine.
                let t = Instant::now();
                if path == "/register" {
                    let _ = bcrypt::hash(password, cost);
                } else {
                    let _ = bcrypt::verify(password, &hash);
                }
                let bare = t.elapsed();
                let t = Instant::now();
                let res = test::call_service(&service, req).await;
                let login = t.elapsed();
                times.push((login, bare));
                statuses.push(res.status().as_u16());
            }
            statuses.dedup();
            let login = median(times.iter().map(|t| t.0));
            let over = median_signed(times.iter().map(|(l, b)| ms(*l) - ms(*b)));
            out.push((what, login, over, statuses));
        }
        out
    });
    println!("users: {count}, bcrypt cost {cost}, {logins} logins per case (medians)");
    println!("  bare bcrypt::verify: {:>9.3} ms", ms(bare));
    for (what, time, over, statuses) in results {
        println!(
            "  {what:<30} {:>9.3} ms; minus the bare bcrypt work just before: {over:+.3} ms; statuses {statuses:?}",
            ms(time),
        );
    }
    Ok(())
}

fn median(times: impl IntoIterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = times.into_iter().collect();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn median_signed(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
