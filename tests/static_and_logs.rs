//! Review round 2, findings 8 and 9, against the built binary: `static_dir` serves only its own
//! regular files (no link leads out of it) and may not hold the server's private files; an
//! outage logs one line per cause, never a backtrace, whatever `RUST_BACKTRACE` says.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, raw_http, ServerProcess, BIN};

fn get(server: &ServerProcess, path: &str) -> (u16, String) {
    raw_http(
        server.addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
    .expect("an answer")
}

fn write_config(dir: &Path, lines: &str) -> (std::path::PathBuf, std::net::SocketAddr) {
    let port = free_port();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 1\n{lines}"),
    )
    .expect("config");
    (config, format!("127.0.0.1:{port}").parse().expect("addr"))
}

#[test]
fn no_link_in_static_dir_serves_what_it_points_at() {
    let dir = tempfile::tempdir().expect("tempdir");
    let public = dir.path().join("public");
    std::fs::create_dir_all(public.join("css")).expect("mkdir");
    std::fs::write(public.join("css/site.css"), "body {}").expect("write");
    std::fs::write(dir.path().join("private.txt"), "not for you").expect("write");
    std::os::unix::fs::symlink("../private.txt", public.join("key.txt")).expect("link");
    std::os::unix::fs::symlink("..", public.join("up")).expect("link");
    std::os::unix::fs::symlink("css", public.join("styles")).expect("link");
    let (config, addr) = write_config(dir.path(), "static_dir = \"public\"\n");
    let server = ServerProcess::start(&config, addr);
    let (status, text) = get(&server, "/static/css/site.css");
    assert_eq!(status, 200, "{text}");
    for path in [
        "/static/key.txt",
        "/static/up/private.txt",
        "/static/up/config.toml",
        "/static/up/secret.key",
        "/static/styles/site.css",
        "/static/css",
        "/static/css/",
    ] {
        let (status, text) = get(&server, path);
        assert_eq!(status, 404, "{path}: {text}");
        assert!(!text.contains("not for you"), "{path}");
    }
}

#[test]
fn a_static_dir_that_holds_private_files_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("public")).expect("mkdir");
    std::fs::create_dir(dir.path().join("keys")).expect("mkdir");
    for (lines, names) in [
        ("static_dir = \".\"\n", "the secret key file"),
        (
            "static_dir = \"keys\"\n[session]\nsecret_key_file = \"keys/app.key\"\n",
            "the secret key file",
        ),
        (
            "static_dir = \"public\"\n[auth]\nusers_db = \"public/users.db\"\n",
            "the user database",
        ),
        (
            "static_dir = \"public\"\n[session.filesystem]\ndir = \"public/sessions\"\n",
            "the session folder",
        ),
    ] {
        let (config, _) = write_config(dir.path(), lines);
        for args in [&["--check"][..], &["config", "check"][..]] {
            let out = Command::new(BIN)
                .arg("--config")
                .arg(&config)
                .args(args)
                .output()
                .expect("run");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{lines} {args:?}: {stderr}");
            assert!(
                stderr.contains("server.static_dir") && stderr.contains(names),
                "{lines}: {stderr}"
            );
        }
    }
    // A folder of public files only is fine.
    let (config, _) = write_config(dir.path(), "static_dir = \"public\"\n");
    let (code, stderr) = common::check_config(&config);
    assert_eq!(code, 0, "{stderr}");
}

/// The built binary on `config`, logging at info (with `RUST_BACKTRACE=1`, as many servers run)
/// into `<dir>/server.log`, once it answers at `addr`.
fn start_logging(
    dir: &Path,
    config: &Path,
    addr: std::net::SocketAddr,
) -> (std::process::Child, std::path::PathBuf) {
    let log = dir.join("server.log");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while raw_http(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .is_none()
    {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, log)
}

/// A dead Redis behind every request, with `RUST_BACKTRACE=1` as many servers run: the log
/// holds one line for the cause, not one (with a backtrace, ~217 KB) per request.
#[test]
fn an_outage_logs_each_cause_once_without_a_backtrace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = free_port();
    let (config, addr) = write_config(
        dir.path(),
        &format!(
            "[session]\ntype = \"redis\"\n[session.redis]\nurl = \"redis://127.0.0.1:{dead}\"\n\
             connect_timeout = 0.2\ncommand_timeout = 0.2\n"
        ),
    );
    let (mut child, log) = start_logging(dir.path(), &config, addr);
    // A session cookie makes every request load its session from the dead engine.
    let master =
        session_server::secret::load_or_create(&dir.path().join("secret.key"), None).expect("key");
    let key = session_server::secret::derive_key(&master, "session");
    let cookie = common::signed_cookie_value(
        &key,
        "session",
        "Aq3kVbXr0tZxYw1uE5sJm8nGc2hLp9fDd4iKo7BaSeU",
    );
    for _ in 0..50 {
        let (status, _) = raw_http(
            addr,
            format!("GET / HTTP/1.1\r\nHost: t\r\nCookie: session={cookie}\r\nConnection: close\r\n\r\n"),
        )
        .expect("answer");
        assert_eq!(status, 503);
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        !text.contains("stack backtrace") && !text.contains("Backtrace"),
        "{text}"
    );
    let failures = text
        .lines()
        .filter(|l| l.contains("engine failure"))
        .count();
    assert!(
        (1..=3).contains(&failures),
        "{failures} failure lines for 50 failed requests:\n{text}"
    );
    assert!(text.len() < 64 * 1024, "{} bytes of log", text.len());
}

/// A server started while its Redis is down: r2d2 tried a connection a second and logged each
/// failure at error, without saying where. Now the log names the engine and its address once,
/// at warn, and a few seconds of the engine being down add no line.
#[test]
fn an_engine_down_at_start_is_named_once_with_its_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = free_port();
    let (config, addr) = write_config(
        dir.path(),
        &format!(
            "[session]\ntype = \"redis\"\n[session.redis]\nurl = \"redis://app:hunter2@127.0.0.1:{dead}\"\n\
             connect_timeout = 0.5\ncommand_timeout = 0.5\n"
        ),
    );
    let (mut child, log) = start_logging(dir.path(), &config, addr);
    // What is measured is the quiet: r2d2 would have retried every second meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    let refused: Vec<&str> = text.lines().filter(|l| l.contains("refused")).collect();
    let told: Vec<&&str> = refused
        .iter()
        .filter(|l| l.contains("engine unreachable"))
        .collect();
    assert_eq!(told.len(), 1, "one line names the cause:\n{text}");
    assert!(
        told[0].contains("WARN") && told[0].contains(&format!("127.0.0.1:{dead}")),
        "at warn, with the address: {}",
        told[0]
    );
    assert!(!text.contains("hunter2"), "never the password:\n{text}");
    assert!(
        !text.lines().any(|l| l.contains("r2d2")),
        "no bare r2d2 lines:\n{text}"
    );
}

/// Every engine that cannot be reached, whatever its type: requests get 503 pages, the log
/// names the engine and its address at warn (not once per request), and never its password;
/// the errors the pages' log lines carry name the address too.
#[test]
fn every_engine_down_is_named_at_warn_with_its_address_never_its_password() {
    let dead = free_port();
    let engines = [
        (
            "redis",
            format!("[session.redis]\nurl = \"redis://app:hunter2@127.0.0.1:{dead}\"\n"),
        ),
        (
            "postgres",
            format!(
                "[session.postgres]\nurl = \"postgresql://app:hunter2@127.0.0.1:{dead}/sessions\"\n"
            ),
        ),
        (
            "memcached",
            format!("[session.memcached]\nservers = [\"127.0.0.1:{dead}\"]\n"),
        ),
    ];
    for (engine, table) in engines {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, addr) = write_config(
            dir.path(),
            &format!(
                "[session]\ntype = \"{engine}\"\n{table}connect_timeout = 0.5\ncommand_timeout = 0.5\n\
                 [auth]\nusers = \"sqlite\"\n"
            ),
        );
        let (mut child, log) = start_logging(dir.path(), &config, addr);
        for _ in 0..5 {
            let (status, _) = raw_http(
                addr,
                "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .expect("an answer");
            assert_eq!(status, 503, "{engine}");
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).expect("log");
        let address = format!("127.0.0.1:{dead}");
        let told: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("engine unreachable"))
            .collect();
        assert!(
            !told.is_empty() && told.len() < 5,
            "{engine}: named, and not once per request:\n{text}"
        );
        assert!(
            told.iter()
                .all(|l| l.contains("WARN") && l.contains(&address)),
            "{engine}: at warn, with the address:\n{text}"
        );
        let failures: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("engine failure"))
            .collect();
        assert!(
            failures.iter().all(|l| l.contains(&address)),
            "{engine}: each failure names the address:\n{text}"
        );
        assert!(
            !text.contains("hunter2"),
            "{engine}: never the password:\n{text}"
        );
    }
}
