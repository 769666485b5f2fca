//! The built binary: start-up with the shipped config, configuration errors (exit 2, one line
//! naming file, key, value and what is allowed), the secret key file, and requests the HTTP
//! parser itself refuses.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_port, raw_http, ServerProcess, BIN};

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn check(config: &Path) -> (i32, String) {
    common::check_config(config)
}

#[test]
fn config_errors_exit_2_naming_file_key_value_and_what_is_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[session]\nlifetime = 0\n",
            "session.lifetime = 0",
            "positive whole number of seconds",
        ),
        (
            "[session]\nlifetime = -30\n",
            "session.lifetime = -30",
            "positive",
        ),
        (
            "[session]\nlifetime = \"forever\"\n",
            "session.lifetime = \"forever\"",
            "\"31d\"",
        ),
        (
            "[session]\ntype = \"mongodb\"\n",
            "session.type = \"mongodb\"",
            "cannot run here",
        ),
        (
            "[session]\ntype = \"sqlalchemy\"\n",
            "session.type = \"sqlalchemy\"",
            "allowed: \"filesystem\", \"memory\"",
        ),
        (
            "[session]\npermanent = \"yes\"\n",
            "session.permanent = \"yes\"",
            "expected a boolean",
        ),
        (
            "[session]\nlifetme = 30\n",
            "session.lifetme",
            "expected one of",
        ),
        ("[sesion]\ntype = \"memory\"\n", "sesion", "expected one of"),
        (
            "[session]\ncookie_samesite = \"none\"\n",
            "session.cookie_samesite = \"none\"",
            "cookie_secure",
        ),
        (
            "[server]\nbind = \"localhost\"\n",
            "server.bind = \"localhost\"",
            "IP address and port",
        ),
        (
            "[auth]\nbcrypt_cost = 40\n",
            "auth.bcrypt_cost = 40",
            "from 4 to 31",
        ),
        (
            "[session.filesystem]\ncleanup_interval = 0\n",
            "session.filesystem.cleanup_interval = 0",
            "positive",
        ),
        ("[session\n", "line 1", "(at `"),
    ];
    for (text, key, allowed) in cases {
        let path = write_config(dir.path(), text);
        let (code, stderr) = check(&path);
        assert_eq!(code, 2, "{text:?}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "names the file: {stderr}"
        );
        assert!(stderr.contains(key), "names {key}: {stderr}");
        assert!(stderr.contains(allowed), "says {allowed}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    assert!(!dir.path().join("sessions").exists(), "nothing started");

    let missing = dir.path().join("missing.toml");
    let (code, stderr) = check(&missing);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn without_a_config_file_the_built_in_defaults_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .arg("--check")
        .current_dir(dir.path())
        .env_remove(session_server::cli::CONFIG_ENV)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("secret.key").exists(),
        "a check creates nothing: the key is made at the first start"
    );
}

#[test]
fn the_config_path_can_come_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "[session]\nlifetime = 0\n");
    let out = Command::new(BIN)
        .arg("--check")
        .env(session_server::cli::CONFIG_ENV, &path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("session.lifetime"));
}

#[test]
fn secret_key_file_is_created_0600_and_short_keys_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        "[session]\nsecret_key_file = \"keys/secret.key\"\n",
    );
    std::fs::create_dir(dir.path().join("keys")).expect("mkdir");
    let (code, stderr) = check(&path);
    assert_eq!(code, 0, "{stderr}");
    let key = dir.path().join("keys/secret.key");
    assert!(!key.exists(), "a check creates nothing");
    // The first start makes it.
    session_server::secret::load_or_create(&key, None).expect("first start");
    let meta = std::fs::metadata(&key).expect("created next to the config");
    assert_eq!(meta.len(), 64);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let first = std::fs::read(&key).expect("read");
    assert_eq!(check(&path).0, 0);
    assert_eq!(
        std::fs::read(&key).expect("read"),
        first,
        "kept across starts"
    );

    std::fs::write(&key, [7u8; 32]).expect("shorten");
    let (code, stderr) = check(&path);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("32 bytes") && stderr.contains("at least 64"),
        "{stderr}"
    );
}

#[test]
fn the_secret_key_can_come_from_the_environment() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let run = |value: &str| {
        Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .env(session_server::secret::ENV_VAR, value)
            .output()
            .expect("run")
    };
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 64]);
    assert_eq!(run(&key).status.code(), Some(0));
    assert!(
        !dir.path().join("secret.key").exists(),
        "no file when the environment gives the key"
    );
    let short = run(&base64::engine::general_purpose::STANDARD.encode([42u8; 16]));
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains(session_server::secret::ENV_VAR));
    assert_eq!(run("not base64!").status.code(), Some(2));
}

#[test]
fn serves_the_shipped_config_and_refuses_what_the_parser_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml"))
            .expect("shipped config.toml");
    let port = free_port();
    let text = shipped.replace(
        "bind = \"127.0.0.1:5000\"",
        &format!("bind = \"127.0.0.1:{port}\""),
    );
    assert_ne!(text, shipped, "the shipped config binds 127.0.0.1:5000");
    let config = write_config(dir.path(), &text);
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let server = ServerProcess::start(&config, addr);

    let (status, page) = raw_http(
        addr,
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("answer");
    assert_eq!(status, 200);
    assert!(page.contains("id=\"login-link\""));
    let (status, _) = raw_http(
        addr,
        "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .expect("answer");
    assert_eq!(status, 404);
    // Raw NUL and non-UTF-8 bytes in the cookie header: refused by the parser (400) or served
    // anonymously (200), never a 500.
    for cookie in [
        &b"session=abc\0def"[..],
        b"session=\xff\xfe",
        b"session=../../../../etc/passwd",
    ] {
        let mut req = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nCookie: ".to_vec();
        req.extend_from_slice(cookie);
        req.extend_from_slice(b"\r\n\r\n");
        let (status, _) = raw_http(addr, &req).expect("answer");
        assert!(status == 200 || status == 400, "{cookie:?} gave {status}");
    }
    // HEAD, as health checkers send it: GET's status and headers, no body.
    for path in ["/", "/healthz", "/api/session"] {
        let (status, text) = raw_http(
            addr,
            format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
        .expect("answer");
        let expected = if path == "/api/session" { 401 } else { 200 };
        assert_eq!(status, expected, "HEAD {path}: {text}");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(body.is_empty(), "HEAD {path} has a body: {body}");
        assert!(
            head.to_ascii_lowercase().contains("content-length: "),
            "{head}"
        );
    }
    let sessions = dir.path().join("sessions");
    assert!(
        sessions.is_dir(),
        "session folder created next to the config"
    );
    assert!(
        common::session_files(&sessions).is_empty(),
        "anonymous requests wrote no session"
    );
    assert!(dir.path().join("secret.key").exists());
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
