//! The built binary as an operator runs it: a clean stop under load (SIGTERM and SIGINT), the
//! request log with its request id, forged cookies counted instead of logged, `/metrics` on its
//! own address in Prometheus' text format, changed templates and static files, and
//! `config check` / `config init`.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, raw_http, Browser, Tcp, BIN};

/// A server started from `extra` config lines, logging at `level` to a file.
struct Started {
    dir: tempfile::TempDir,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &str, level: &str) -> Started {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\nshutdown_timeout = 5\n\
             [auth]\nbcrypt_cost = 4\nmax_failed_logins = 1000\n{extra}"
        ),
    )
    .expect("config");
    let log = dir.path().join("server.log");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", level)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if raw_http(
            addr,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .is_some_and(|(s, _)| s == 200)
        {
            return Started {
                dir,
                child,
                addr,
                log,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "no start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Polls the server's log until `ready` holds for it, for at most 10 s: a request's line is
/// written once its answer has gone out, so shortly after the client has read it.
fn log_once(log: &Path, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {what} in 10 s: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// What one request saw.
enum Seen {
    Answered,
    /// Connection refused: the server had stopped accepting.
    Refused,
    /// Connected but cut off without a whole answer: what a clean stop must never do.
    Cut(String),
}

fn one_request(addr: SocketAddr, path: &str) -> Seen {
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Seen::Refused;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return Seen::Refused;
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    if text.is_empty() {
        // Accepted by the kernel's backlog after the listener closed: reset, not served.
        return Seen::Refused;
    }
    match text.split_once("\r\n\r\n") {
        Some((head, _)) if head.starts_with("HTTP/1.1 200") => Seen::Answered,
        _ => Seen::Cut(text.chars().take(200).collect()),
    }
}

fn stops_cleanly_under_load(signal_name: &str) {
    let mut s = start("[session]\nlifetime = 600\n", "info");
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|n| {
            let (stop, answered, addr) = (Arc::clone(&stop), Arc::clone(&answered), s.addr);
            std::thread::spawn(move || {
                let mut cut = Vec::new();
                let path = if n % 2 == 0 { "/" } else { "/login" };
                while !stop.load(Ordering::Relaxed) {
                    match one_request(addr, path) {
                        Seen::Answered => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Seen::Refused => break,
                        Seen::Cut(text) => cut.push(text),
                    }
                }
                cut
            })
        })
        .collect();
    // Under load: the workers have had more than 20 answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.load(Ordering::Relaxed) <= 20 {
        assert!(
            Instant::now() < deadline,
            "not under load: {} requests answered in 10 s",
            answered.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&s.child, signal_name);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = s.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no stop within the shutdown timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    let cut: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    assert!(cut.is_empty(), "requests cut off by the stop: {cut:?}");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stopping") && log.contains("stopped"), "{log}");
    let tmp = s.dir.path().join("sessions/.tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").flatten().collect();
    assert!(left.is_empty(), "temporary folders left: {left:?}");
}

#[test]
fn sigterm_under_load_finishes_requests_and_exits_0() {
    stops_cleanly_under_load("TERM");
}

#[test]
fn sigint_under_load_finishes_requests_and_exits_0() {
    stops_cleanly_under_load("INT");
}

/// One line per request with its id (sent back as `X-Request-Id`), method, path without the
/// query, status, latency and the session's short hash, never the raw id; a flood of forged
/// cookies leaves no line per cookie.
#[actix_web::test]
async fn each_request_is_one_line_with_its_id_and_forged_cookies_are_only_counted() {
    let s = start("[session]\nlifetime = 600\n", "info");
    let via = Tcp(s.addr);
    let mut alice = Browser::new();
    alice.register(&via, "alice").await;
    let cookie = alice.session_cookie().expect("cookie").clone();
    let (status, text) = raw_http(
        s.addr,
        format!(
            "GET /?secret=hunter2 HTTP/1.1\r\nHost: t\r\nCookie: session={cookie}\r\nConnection: close\r\n\r\n"
        ),
    )
    .expect("answer");
    assert_eq!(status, 200);
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("X-Request-Id")
        .trim()
        .to_owned();
    let parsed = uuid::Uuid::parse_str(&id).expect("the request id is a UUID");
    assert_eq!(parsed.get_version_num(), 7, "time-ordered: UUIDv7, {id}");
    for _ in 0..200 {
        raw_http(
            s.addr,
            "GET / HTTP/1.1\r\nHost: t\r\nCookie: session=forged-value\r\nConnection: close\r\n\r\n",
        );
    }
    // Every forged request's line is written (each after whatever its request logged).
    let log = log_once(&s.log, "line for each forged request", |log| {
        log.contains(&format!("id={id}"))
            && log
                .lines()
                .filter(|l| l.contains("path=\"/\" status=200") && l.contains("session=\"-\""))
                .count()
                >= 200
    });
    let line = log
        .lines()
        .find(|l| l.contains(&format!("id={id}")))
        .unwrap_or_else(|| panic!("no line for {id}: {log}"));
    let tag = session_server::store::id::log_tag(cookie.get(cookie.len() - 43..).expect("id"));
    for part in [
        "method=GET",
        "path=\"/\"",
        "status=200",
        "latency_ms=",
        &format!("session=\"{tag}\""),
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(!log.contains("hunter2"), "no query strings in the log");
    assert!(
        !log.contains(&cookie[cookie.len() - 43..]),
        "no raw session id in the log"
    );
    let per_cookie = log.lines().filter(|l| l.contains("cryptographic")).count();
    assert_eq!(
        per_cookie, 0,
        "forged cookies are counted, not logged one by one"
    );
}

#[actix_web::test]
async fn json_logs_are_one_object_per_line() {
    let s = start(
        "[session]\nlifetime = 600\n[log]\nformat = \"json\"\n",
        "info",
    );
    raw_http(
        s.addr,
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let log = log_once(&s.log, "request line", |log| {
        log.contains("\"message\":\"request\"")
    });
    let mut requests = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["message"] == "request" {
            requests += 1;
            assert!(v["status"].is_number() && v["path"].is_string(), "{line}");
        }
    }
    assert!(requests >= 1, "{log}");
}

/// Parses Prometheus' text format: every sample line is `name{labels} value`.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample: {l}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {l}"));
            let bare = name.split('{').next().expect("name");
            assert!(
                bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "metric name {bare}"
            );
            if let Some(labels) = name.strip_prefix(bare) {
                assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')));
            }
            (name.to_owned(), value)
        })
        .collect()
}

#[actix_web::test]
async fn metrics_are_served_on_their_own_address_in_prometheus_format() {
    let metrics_port = free_port();
    let s = start(
        &format!("[session]\nlifetime = 600\n[metrics]\nbind = \"127.0.0.1:{metrics_port}\"\n"),
        "warn",
    );
    let via = Tcp(s.addr);
    let mut alice = Browser::new();
    alice.register(&via, "alice").await;
    alice.get(&via, "/logout").await;
    alice.login(&via, "alice", "password123").await;
    alice.visit(&via).await;
    let mut guesser = Browser::new();
    guesser.login(&via, "alice", "wrong").await;
    raw_http(
        s.addr,
        "GET / HTTP/1.1\r\nHost: t\r\nCookie: session=forged\r\nConnection: close\r\n\r\n",
    );
    let (status, _) = raw_http(
        s.addr,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("answer");
    assert_eq!(status, 404, "never on the public port");
    let metrics_addr: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().expect("addr");
    let (status, text) = raw_http(
        metrics_addr,
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("metrics");
    assert_eq!(status, 200);
    let body = text.split_once("\r\n\r\n").expect("body").1;
    let samples = samples(body);
    let value = |name: &str| {
        samples
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{name} in {body}"))
    };
    assert!(value("sessions_created_total") >= 2.0);
    assert!(value("sessions_loaded_total") >= 1.0);
    assert!(value("sessions_deleted_total") >= 1.0);
    assert_eq!(value("logins_total{outcome=\"success\"}"), 1.0);
    assert_eq!(value("logins_total{outcome=\"failure\"}"), 1.0);
    assert_eq!(
        value("session_cookies_ignored_total{reason=\"forged\"}"),
        1.0
    );
    assert!(value("sessions_live") >= 1.0);
    assert!(value("errors_total{kind=\"not_found\"}") >= 1.0);
    assert!(value("session_store_operation_seconds_count{op=\"load\",type=\"filesystem\"}") >= 1.0);
}

#[test]
fn a_broken_template_stops_the_start_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).expect("mkdir");
    std::fs::write(
        templates.join("index.html"),
        "{% extends \"layout.html\" %}\n{% block content %}\n<p>{{ visits </p>\n{% endblock %}\n",
    )
    .expect("write");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{}\"\ntemplates_dir = \"templates\"\n",
            free_port()
        ),
    )
    .expect("config");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("index.html") && err.contains("line 3"),
        "{err}"
    );
    // `config check` finds it too, without starting anything.
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[actix_web::test]
async fn changed_templates_and_static_files_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = dir.path().join("t");
    let statics = dir.path().join("s");
    std::fs::create_dir(&templates).expect("mkdir");
    std::fs::create_dir(&statics).expect("mkdir");
    std::fs::write(
        templates.join("404.html"),
        "{% extends \"layout.html\" %}{% block body %}<p id=\"mine\">Nothing here, friend.</p>{% endblock body %}",
    )
    .expect("write");
    std::fs::write(statics.join("style.css"), "body { color: teal }").expect("write");
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\ntemplates_dir = \"t\"\nstatic_dir = \"s\"\n"
        ),
    )
    .expect("config");
    let server =
        common::ServerProcess::start(&config, format!("127.0.0.1:{port}").parse().expect("addr"));
    let (status, text) = raw_http(
        server.addr,
        "GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("404");
    assert_eq!(status, 404);
    assert!(text.contains("Nothing here, friend."), "{text}");
    let (status, text) = raw_http(
        server.addr,
        "GET /static/style.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("css");
    assert_eq!(status, 200);
    assert!(text.ends_with("body { color: teal }"), "{text}");
    let (status, text) = raw_http(
        server.addr,
        "GET /static/missing.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("miss");
    assert_eq!(status, 404);
    assert!(
        text.contains("Nothing here, friend."),
        "the 404 page: {text}"
    );
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn config_check_prints_the_effective_config_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.toml"),
        "[session]\nlifetime = \"2h\"\n",
    )
    .expect("write");
    let before = files_in(dir.path());
    for args in [&["config", "check"][..], &["--check"][..]] {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env_remove(session_server::cli::CONFIG_ENV)
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("lifetime = \"2h\""), "{text}");
        assert!(
            text.contains("# Flask: PERMANENT_SESSION_LIFETIME"),
            "{text}"
        );
        assert!(
            text.contains("cleanup_interval = \"1m\""),
            "defaults filled in: {text}"
        );
        assert!(text.contains("configuration OK"), "{text}");
    }
    assert_eq!(
        files_in(dir.path()),
        before,
        "no secret key, no folder, no database"
    );
}

#[test]
fn config_init_writes_the_commented_default_and_keeps_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new.toml");
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["config", "init"])
            .arg(&path)
            .args(extra)
            .output()
            .expect("run")
    };
    assert_eq!(run(&[]).status.code(), Some(0));
    let written = std::fs::read_to_string(&path).expect("written");
    assert!(written.contains("# ") && written.contains("[session]"));
    session_server::config::Config::load(&path).expect("loads");
    std::fs::write(&path, "# mine\n").expect("write");
    let again = run(&[]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), "# mine\n");
    assert_eq!(run(&["--force"]).status.code(), Some(0));
}

#[test]
fn usage_errors_exit_2_and_every_command_has_an_example() {
    let out = Command::new(BIN)
        .arg("sessions")
        .arg("frobnicate")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    for cmd in [
        &["sessions", "list"][..],
        &["sessions", "show"],
        &["sessions", "stats"],
        &["sessions", "gc"],
        &["sessions", "purge"],
        &["sessions", "watch"],
        &["users", "add"],
        &["users", "list"],
        &["users", "remove"],
        &["users", "passwd"],
        &["config", "check"],
        &["config", "init"],
    ] {
        let out = Command::new(BIN)
            .args(cmd)
            .arg("--help")
            .output()
            .expect("run");
        let help = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
        assert!(help.contains("Example"), "{cmd:?} has an example: {help}");
    }
}
