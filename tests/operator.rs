//! The operator's commands (`sessions ...`, `users ...`) run as a second process beside a real
//! server, on every store type that can list sessions: accounts added from the command line log
//! in through the pages, `sessions show` goes from a cookie copied out of a real login to the
//! stored session, `purge` and `users remove` log people out while the server runs, `gc` deletes
//! what has expired, and `watch` reports a login as it happens. Types that cannot list say so
//! and exit 1.

mod common;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use common::engines::{PostgresServer, RedisServer};
use common::{Browser, ServerProcess, Tcp, BIN};

/// A server and its config, for the commands to point at.
struct Deployment {
    _dir: tempfile::TempDir,
    config: PathBuf,
    server: ServerProcess,
}

impl Deployment {
    fn start(tables: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = common::free_port();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n{tables}\n\
                 [auth]\nbcrypt_cost = 4\nmax_failed_logins = 1000\n"
            ),
        )
        .expect("config");
        let server =
            ServerProcess::start(&config, format!("127.0.0.1:{port}").parse().expect("addr"));
        Self {
            _dir: dir,
            config,
            server,
        }
    }

    fn via(&self) -> Tcp {
        Tcp(self.server.addr)
    }

    /// Runs `session-server -c <config> args...` with `stdin`.
    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        cli(&self.config, args, stdin)
    }
}

fn cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("cli output")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("json output")
}

/// The hashes of the listed sessions of `user`.
fn sessions_of(d: &Deployment, user: &str) -> Vec<String> {
    let listed = json(d.cli(&["sessions", "list", "--user", user, "--json"], ""));
    listed
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["hash"].as_str().expect("hash").to_owned())
        .collect()
}

/// The whole operator story on one deployment.
async fn operate(d: &Deployment) {
    let via = d.via();
    // Accounts from the command line are the pages' accounts.
    ok(d.cli(
        &["users", "add", "alice", "--name", "Alice Kim", "--stdin"],
        "password123\n",
    ));
    ok(d.cli(&["users", "add", "bob", "--stdin"], "password123\n"));
    let taken = d.cli(&["users", "add", "ALICE", "--stdin"], "password123\n");
    assert_eq!(taken.status.code(), Some(1), "{}", text(&taken));
    let short = d.cli(&["users", "add", "carol", "--stdin"], "short\n");
    assert_eq!(short.status.code(), Some(2), "{}", text(&short));
    let users = json(d.cli(&["users", "list", "--json"], ""));
    let names: Vec<&str> = users
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Alice Kim", "bob"]);

    let mut alice = Browser::new();
    let res = alice.login(&via, "alice", "password123").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(alice.visit(&via).await, Some(1));
    let mut bob = Browser::new();
    bob.login(&via, "bob", "password123").await;
    assert_eq!(bob.visit(&via).await, Some(1));

    // From the cookie the browser holds to what the server keeps.
    let cookie = alice.session_cookie().expect("session cookie").clone();
    let shown = ok(d.cli(&["sessions", "show", &cookie], ""));
    let hashes = sessions_of(d, "alice");
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    assert!(shown.contains(&hashes[0]), "{shown}");
    assert!(
        shown.contains("alice") && shown.contains("\"visits\": 1"),
        "{shown}"
    );
    assert!(
        shown.contains("(masked)"),
        "the CSRF token is masked: {shown}"
    );
    let id = cookie.get(cookie.len() - 43..).expect("id");
    assert!(!shown.contains(id), "the id itself is never printed");
    let by_prefix = ok(d.cli(&["sessions", "show", &hashes[0][..10]], ""));
    assert!(by_prefix.contains(&hashes[0]), "{by_prefix}");
    let mut forged = cookie.clone();
    forged.replace_range(..1, if forged.starts_with('A') { "B" } else { "A" });
    let refused = d.cli(&["sessions", "show", &forged], "");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not verify"));

    let stats = json(d.cli(&["sessions", "stats", "--by-user", "--json"], ""));
    assert_eq!(stats["by_user"]["alice"], 1, "{stats}");
    assert_eq!(stats["by_user"]["bob"], 1, "{stats}");
    assert!(stats["live"].as_u64().expect("live") >= 2, "{stats}");
    let table = ok(d.cli(&["sessions", "list"], ""));
    assert!(
        table.starts_with("SESSION") && table.contains(&hashes[0][..12]),
        "{table}"
    );

    // Log alice out everywhere while the server runs; bob stays.
    let purged = ok(d.cli(&["sessions", "purge", "--user", "alice", "--yes"], ""));
    assert!(purged.contains("ended 1 sessions of alice"), "{purged}");
    assert_eq!(alice.visit(&via).await, None, "alice is logged out");
    assert_eq!(bob.visit(&via).await, Some(2), "bob is not");

    // A new password from the command line: the old one no longer logs in, and every session
    // of the account ends (a thief's copy too).
    let mut thief = Browser::new();
    thief.login(&via, "alice", "password123").await;
    assert_eq!(thief.visit(&via).await, Some(1));
    let changed = ok(d.cli(
        &["users", "passwd", "alice", "--stdin"],
        "another password\n",
    ));
    assert!(
        changed.contains("deleted 1 stored sessions of alice"),
        "{changed}"
    );
    assert_eq!(thief.visit(&via).await, None, "the thief is logged out");
    let mut guesser = Browser::new();
    let res = guesser.login(&via, "alice", "password123").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // Removing an account ends its sessions too.
    let removed = ok(d.cli(&["users", "remove", "bob", "--yes"], ""));
    assert!(
        removed.contains("deleted 1 stored sessions of bob"),
        "{removed}"
    );
    assert_eq!(bob.visit(&via).await, None, "bob is logged out");
    let gone = d.cli(&["users", "remove", "bob", "--yes"], "");
    assert_eq!(gone.status.code(), Some(1));
    ok(d.cli(&["sessions", "gc"], ""));
}

#[actix_web::test]
async fn operating_a_filesystem_server() {
    operate(&Deployment::start(
        "[session]\ntype = \"filesystem\"\nlifetime = 600\n",
    ))
    .await;
}

#[actix_web::test]
async fn operating_a_sqlite_server() {
    operate(&Deployment::start(
        "[session]\ntype = \"sqlite\"\nlifetime = 600\n",
    ))
    .await;
}

#[actix_web::test]
async fn operating_a_redis_server() {
    let Some(redis) = RedisServer::start_for("operator::operating_a_redis_server") else {
        return;
    };
    let tables = format!(
        "[session]\ntype = \"redis\"\nlifetime = 600\n[session.redis]\nurl = \"{}\"\n",
        redis.url()
    );
    operate(&Deployment::start(&tables)).await;
}

#[actix_web::test]
async fn operating_a_postgres_server() {
    let Some(pg) = PostgresServer::start_for("operator::operating_a_postgres_server") else {
        return;
    };
    let tables = format!(
        "[session]\ntype = \"postgres\"\nlifetime = 600\n[session.postgres]\nurl = \"{}\"\n",
        pg.url()
    );
    operate(&Deployment::start(&tables)).await;
}

/// Waits until `browser` is logged out, at most the account cache bound plus a margin.
async fn logged_out_soon(browser: &mut Browser, via: &Tcp, who: &str) {
    let deadline =
        Instant::now() + session_server::web::account::CACHE_FOR + Duration::from_secs(3);
    while browser.visit(via).await.is_some() {
        assert!(Instant::now() < deadline, "{who} is still logged in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Review round 2, findings 1 and 3: where the operator's process cannot reach the sessions
/// (`memory` lives in the server's process, `cookie` in the browsers), `users remove` only
/// printed a note and the removed user stayed logged in, and `users passwd` ended nothing on
/// any type. Every session checks its account now, so both log out within the cache bound.
async fn remove_and_passwd_end_sessions_the_cli_cannot_list(store: &str) {
    let d = Deployment::start(&format!("[session]\ntype = \"{store}\"\nlifetime = 600\n"));
    let via = d.via();
    let (mut alice, mut bob) = (Browser::new(), Browser::new());
    alice.register(&via, "alice").await;
    bob.register(&via, "bob").await;
    assert_eq!(alice.visit(&via).await, Some(1));
    ok(d.cli(
        &["users", "passwd", "alice", "--stdin"],
        "another password\n",
    ));
    logged_out_soon(&mut alice, &via, "alice after passwd").await;
    assert_eq!(bob.visit(&via).await, Some(1), "bob is not touched");
    ok(d.cli(&["users", "remove", "bob", "--yes"], ""));
    logged_out_soon(&mut bob, &via, "bob after remove").await;
    // The id registered again: the old cookie is not the new account's.
    let mut new_bob = Browser::new();
    new_bob.register(&via, "BOB").await;
    assert_eq!(bob.visit(&via).await, None);
    assert_eq!(new_bob.visit(&via).await, Some(1));
}

#[actix_web::test]
async fn remove_and_passwd_end_memory_sessions() {
    remove_and_passwd_end_sessions_the_cli_cannot_list("memory").await;
}

#[actix_web::test]
async fn remove_and_passwd_end_cookie_sessions() {
    remove_and_passwd_end_sessions_the_cli_cannot_list("cookie").await;
}

/// Expired sessions are listed only when asked, and `gc` deletes them (the sweeper is set to run
/// once a day, so only `gc` can have).
#[actix_web::test]
async fn gc_deletes_what_has_expired_and_list_shows_it_until_then() {
    let d = Deployment::start(
        "[session]\ntype = \"filesystem\"\nlifetime = 2\n[session.filesystem]\ncleanup_interval = \"1d\"\n",
    );
    ok(d.cli(&["users", "add", "alice", "--stdin"], "password123\n"));
    let mut alice = Browser::new();
    alice.login(&d.via(), "alice", "password123").await;
    assert_eq!(sessions_of(&d, "alice").len(), 1);
    std::thread::sleep(Duration::from_millis(3200));
    assert!(sessions_of(&d, "alice").is_empty(), "expired: not live");
    let all = json(d.cli(&["sessions", "list", "--expired", "--json"], ""));
    let ended: Vec<_> = all
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["user"] == "alice")
        .collect();
    assert_eq!(ended.len(), 1, "{all}");
    assert!(ended[0]["expires_in"].as_i64().expect("secs") <= 0);
    let gc = ok(d.cli(&["sessions", "gc"], ""));
    assert!(
        gc.starts_with("deleted ") && !gc.starts_with("deleted 0 "),
        "{gc}"
    );
    let after = json(d.cli(&["sessions", "list", "--expired", "--json"], ""));
    assert!(
        !after
            .as_array()
            .expect("array")
            .iter()
            .any(|s| s["user"] == "alice"),
        "{after}"
    );
}

/// `sessions watch`, piped: one line per event; a login shows as a session created for alice.
#[actix_web::test]
async fn watch_reports_a_login_as_it_happens() {
    let d = Deployment::start("[session]\ntype = \"filesystem\"\nlifetime = 600\n");
    ok(d.cli(&["users", "add", "alice", "--stdin"], "password123\n"));
    ok(d.cli(&["users", "add", "probe", "--stdin"], "password123\n"));
    let mut watch = Command::new(BIN)
        .arg("--config")
        .arg(&d.config)
        .args(["sessions", "watch", "--interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // watch reports changes from its first look on, and prints nothing for the first look
    // itself: logins of `probe` until one is reported show it has looked.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.is_empty() {
        assert!(Instant::now() < deadline, "watch reported no login in 10 s");
        Browser::new().login(&d.via(), "probe", "password123").await;
        seen.extend(rx.recv_timeout(Duration::from_millis(500)));
    }
    let mut alice = Browser::new();
    alice.login(&d.via(), "alice", "password123").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let done = line.contains("created") && line.contains("user=alice");
            seen.push(line);
            if done {
                break;
            }
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        seen.iter()
            .any(|l| l.contains("created") && l.contains("user=alice")),
        "{seen:?}"
    );
}

/// What cannot be listed says so, one line, exit 1; the `cookie` type still shows the session a
/// cookie carries.
#[actix_web::test]
async fn types_that_cannot_list_say_so() {
    let memory = Deployment::start("[session]\ntype = \"memory\"\n");
    let out = memory.cli(&["sessions", "list"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the server process"));

    let cookie = Deployment::start("[session]\ntype = \"cookie\"\nlifetime = 600\n");
    let out = cookie.cli(&["sessions", "list"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cookie"));
    ok(cookie.cli(&["users", "add", "alice", "--stdin"], "password123\n"));
    let mut alice = Browser::new();
    alice.login(&cookie.via(), "alice", "password123").await;
    let value = alice.session_cookie().expect("cookie").clone();
    let shown = ok(cookie.cli(&["sessions", "show", &value], ""));
    assert!(
        shown.contains("the cookie itself") && shown.contains("alice"),
        "{shown}"
    );
}

/// A clipboard write (OSC 52) and a screen clear, as another program sharing the store could
/// leave them in a session; then the 8-bit CSI (C1), DEL and a right-to-left override.
const HOSTILE: &str = "\x1b]52;c;SGVsbG8=\x07\x1b[2J\u{9b}2J\x7fmallory\u{202e}";

/// Where `--json` must hold each of them as a JSON escape.
const HOSTILE_JSON: &str = r"\u001b]52;c;SGVsbG8=\u0007\u001b[2J\u009b2J\u007fmallory\u202e";

/// Where a table or a line of text must hold each of them as a Rust escape.
const HOSTILE_TEXT: &str = r"\u{1b}]52;c;SGVsbG8=\u{7}\u{1b}[2J\u{9b}2J\u{7f}mallory\u{202e}";

/// Fails when the output holds a character a terminal acts on (a control character other than
/// the line ends the output is made of) or one that turns the text around it.
fn assert_inert(what: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let raw: Vec<char> = text
            .chars()
            .filter(|&c| (c.is_control() && c != '\n') || c == '\u{202e}')
            .collect();
        assert!(
            raw.is_empty(),
            "{what}: {stream} holds {raw:?} raw: {text:?}"
        );
    }
}

/// The stdout of a command that succeeded and printed nothing raw.
fn inert(config: &Path, args: &[&str]) -> String {
    let out = cli(config, args, "");
    assert_inert(&args.join(" "), &out);
    ok(out)
}

/// Stored text reaches the operator's terminal escaped, whatever it holds: a session file
/// written by hand into the folder (as any program with access to it could) and an account
/// edited in the user database hold terminal escapes, and no command prints them raw, in a
/// table or in `--json`; the JSON still reads back as the stored text.
#[test]
fn stored_escapes_reach_the_terminal_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[session]\ntype = \"filesystem\"\nlifetime = 600\n[auth]\nbcrypt_cost = 4\n",
    )
    .expect("config");

    // An account whose id spelling, name and registration time were edited in the database.
    ok(cli(
        &config,
        &["users", "add", "mallory", "--stdin"],
        "password123\n",
    ));
    let db = rusqlite::Connection::open(dir.path().join("users.db")).expect("users.db");
    let changed = db
        .execute(
            "UPDATE users SET id = ?1, name = ?1, created_at = ?1 WHERE key = 'mallory'",
            [HOSTILE],
        )
        .expect("update");
    assert_eq!(changed, 1);
    drop(db);

    // A live session whose user and another field hold the escapes, in a key too.
    ok(cli(&config, &["sessions", "list"], ""));
    let stem = "e5".repeat(32);
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole second");
    let expires = now + time::Duration::seconds(600);
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .expect("rfc3339")
    };
    let record = serde_json::json!({
        "version": 1,
        "created_at": rfc3339(now),
        "expires_at": rfc3339(expires),
        "ttl_seconds": 600,
        "data": { "user_id": HOSTILE, "note\x1b[2J": "\x1b]0;title\x07" },
    });
    let file = dir.path().join("sessions").join(format!("{stem}.json"));
    std::fs::write(&file, record.to_string()).expect("session file");
    // The folder listing takes a file's modification time as its session's end.
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(std::time::SystemTime::from(expires)))
        .expect("mtime");

    let listed = inert(&config, &["sessions", "list"]);
    assert!(listed.contains(HOSTILE_TEXT), "{listed}");
    let listed = inert(&config, &["sessions", "list", "--json"]);
    assert!(listed.contains(HOSTILE_JSON), "{listed}");
    let rows: serde_json::Value = serde_json::from_str(&listed).expect("json");
    assert_eq!(rows[0]["user"], HOSTILE, "the JSON reads back as stored");

    let shown = inert(&config, &["sessions", "show", &stem]);
    assert!(shown.contains(HOSTILE_TEXT), "the user row: {shown}");
    assert!(shown.contains(HOSTILE_JSON), "the data: {shown}");
    assert!(
        shown.contains(r#""note\u001b[2J": "\u001b]0;title\u0007""#),
        "{shown}"
    );
    let shown = inert(&config, &["sessions", "show", &stem, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(doc["data"]["user_id"], HOSTILE, "{shown}");
    assert!(shown.contains(HOSTILE_JSON), "{shown}");

    // Ids are grouped lower-cased: the escapes' letters change, not whether they are escaped.
    let stats = inert(&config, &["sessions", "stats", "--by-user"]);
    assert!(stats.contains(r"\u{1b}]52;c;sgvsbg8=\u{7}"), "{stats}");
    let stats = inert(&config, &["sessions", "stats", "--by-user", "--json"]);
    assert!(stats.contains(r"\u001b]52;c;sgvsbg8=\u0007"), "{stats}");

    let users = inert(&config, &["users", "list"]);
    assert_eq!(users.matches(HOSTILE_TEXT).count(), 3, "{users}");
    let users = inert(&config, &["users", "list", "--json"]);
    assert_eq!(users.matches(HOSTILE_JSON).count(), 3, "{users}");
    let accounts: serde_json::Value = serde_json::from_str(&users).expect("json");
    assert_eq!(accounts[0]["name"], HOSTILE, "{users}");

    // The hostile user's sessions can still be ended by naming it.
    let purged = inert(&config, &["sessions", "purge", "--user", HOSTILE, "--yes"]);
    assert!(
        purged.contains(&format!("ended 1 sessions of {HOSTILE_TEXT}")),
        "{purged}"
    );
}
