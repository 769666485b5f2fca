//! The built binary against config files that the type checks let through before: durations past
//! their maximum (which used to start and then panic on the first request) and unknown keys in
//! sub-tables; and against the store types and `[session.redis]` values it refuses. Each is
//! refused with exit code 2 and one exact line, by `--check` and at start.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, BIN};

/// Writes a config for a server on a free loopback port in `dir`, with `extra` appended.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[server]\nbind = \"127.0.0.1:{}\"\nworkers = 1\n{extra}",
        free_port()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs the binary with `config` and `args`; its exit code and stderr, or `None` when it was
/// still running after 10 seconds (it started serving) and had to be stopped.
fn run(config: &Path, args: &[&str]) -> Option<(i32, String)> {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            let out = child.wait_with_output().expect("output");
            return Some((
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Asserts that both `--check` and a start refuse `extra` with exit code 2 and exactly
/// `error: <file>: <message>` on stderr, and that nothing was started.
fn assert_refused(extra: &str, message: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), extra);
    let expected = format!("error: {}: {message}\n", config.display());
    for args in [&["--check"][..], &[]] {
        let outcome = run(&config, args);
        assert_eq!(
            outcome,
            Some((2, expected.clone())),
            "{extra:?} with {args:?}"
        );
    }
    assert!(
        !dir.path().join("sessions").exists(),
        "nothing started for {extra:?}"
    );
}

const DURATION_ALLOWED: &str = "expected a positive whole number of seconds, or a string such as \
                                \"30s\", \"15m\", \"12h\", \"31d\"";

#[test]
fn a_lifetime_past_400_days_is_refused_before_anything_starts() {
    assert_refused(
        "[session]\nlifetime = \"100000000d\"\n",
        &format!(
            "session.lifetime = \"100000000d\": {DURATION_ALLOWED}; at most \"400d\" (34560000)"
        ),
    );
    assert_refused(
        "[session]\nlifetime = 34560001\n",
        &format!("session.lifetime = 34560001: {DURATION_ALLOWED}; at most \"400d\" (34560000)"),
    );
}

#[test]
fn every_duration_key_has_a_maximum() {
    assert_refused(
        "[session.filesystem]\ncleanup_interval = \"25h\"\n",
        &format!(
            "session.filesystem.cleanup_interval = \"25h\": {DURATION_ALLOWED}; at most \"1d\" \
             (86400)"
        ),
    );
    assert_refused(
        "[auth]\nfailed_login_window = \"2d\"\n",
        &format!("auth.failed_login_window = \"2d\": {DURATION_ALLOWED}; at most \"1d\" (86400)"),
    );
}

#[test]
fn the_maxima_themselves_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "[session]\nlifetime = \"400d\"\n[session.filesystem]\ncleanup_interval = 86400\n\
         [auth]\nfailed_login_window = \"24h\"\n",
    );
    let (code, stderr) = run(&config, &["--check"]).expect("--check ends");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn an_unknown_key_in_a_sub_table_is_named_once_with_its_value() {
    assert_refused(
        "[session.mongodb]\nurl = \"mongodb://127.0.0.1\"\n",
        "session.mongodb = { url = \"mongodb://127.0.0.1\" }: unknown key; expected one of \
         `type`, `permanent`, `lifetime`, `absolute_lifetime`, `refresh_each_request`, `max_session_bytes`, \
         `lock`, `lock_timeout`, \
         `cookie_name`, `cookie_secure`, `cookie_samesite`, `cookie_domain`, `secret_key_file`, \
         `secret_key_fallbacks`, `filesystem`, `memory`, `redis`, `sqlite`, `postgres`, `memcached`, `cookie`",
    );
    assert_refused(
        "[session.redis]\nprefix = \"app:\"\n",
        "session.redis.prefix = \"app:\": unknown key; expected one of `url`, `cluster_urls`, \
         `key_prefix`, `pool_size`, `connect_timeout`, `command_timeout`, `tls_ca_file`, \
         `tls_cert_file`, `tls_key_file`, `sentinel_urls`, `sentinel_master`, \
         `sentinel_password`, `wait_replicas`",
    );
    assert_refused(
        "[session.filesystem]\nfoo = 1\n",
        "session.filesystem.foo = 1: unknown key; expected one of `dir`, `cleanup_interval`, \
         `durability`, `io_threads`, `read_cache`",
    );
}

const ALLOWED_TYPES: &str =
    "allowed: \"filesystem\", \"memory\", \"redis\", \"sqlite\", \"postgres\", \"memcached\", \"cookie\"";

#[test]
fn flask_session_types_that_cannot_run_here_are_refused_with_the_reason() {
    assert_refused(
        "[session]\ntype = \"mongodb\"\n",
        &format!(
            "session.type = \"mongodb\": store type `mongodb` cannot run here: it needs a MongoDB \
             server, which Debian does not package, and this build has no MongoDB client; \
             {ALLOWED_TYPES}"
        ),
    );
    assert_refused(
        "[session]\ntype = \"dynamodb\"\n",
        &format!(
            "session.type = \"dynamodb\": store type `dynamodb` cannot run here: it is Amazon's \
             hosted DynamoDB service, which these machines cannot reach or run, and this build \
             has no AWS client; {ALLOWED_TYPES}"
        ),
    );
    assert_refused(
        "[session]\ntype = \"sqlalchemy\"\n",
        &format!(
            "session.type = \"sqlalchemy\": store type `sqlalchemy`: Flask-Session's sqlalchemy \
             type is named after its database here: \"postgres\" or \"sqlite\"; {ALLOWED_TYPES}"
        ),
    );
}

#[test]
fn a_wrong_redis_value_is_refused_whatever_the_type() {
    assert_refused(
        "[session.redis]\nurl = \"http://127.0.0.1:6379\"\n",
        "session.redis.url = \"http://127.0.0.1:6379\": expected \
         redis://[user:password@]host[:port][/db] (rediss:// for TLS) or \
         unix:///path/to/redis.sock[?db=N] (also redis+unix://)",
    );
    assert_refused(
        "[session]\ntype = \"redis\"\n[session.redis]\nurl = \"redis://10.0.0.1\"\n\
         cluster_urls = [\"redis://127.0.0.1:7000\"]\n",
        "session.redis.url = \"redis://10.0.0.1\": set either url (one Redis server) or \
         cluster_urls (a Redis Cluster), not both",
    );
    assert_refused(
        "[session.redis]\ncommand_timeout = \"2m\"\n",
        "session.redis.command_timeout = \"2m\": expected seconds from 0.01 to 60, such as 2, \
         0.5 or \"500ms\"",
    );
    assert_refused(
        "[auth]\nusers = \"redis\"\n[session.redis]\npool_size = 0\n",
        "session.redis.pool_size = 0: expected an integer of at least 1",
    );
}

#[test]
fn a_redis_config_passes_the_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "[session]\ntype = \"redis\"\n[session.redis]\nurl = \"unix:///run/redis/redis.sock\"\n\
         key_prefix = \"app1:\"\npool_size = 8\nconnect_timeout = 0.5\ncommand_timeout = \"250ms\"\n\
         [auth]\nusers = \"sqlite\"\n",
    );
    let (code, stderr) = run(&config, &["--check"]).expect("--check ends");
    assert_eq!(code, 0, "{stderr}");
}
