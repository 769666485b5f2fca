//! `[session.redis]`: each key's default, good values, and each bad value with its message.

use std::time::Duration;

use super::RedisConfig;
use crate::config::tests::{err, ok};
use crate::config::Config;

/// The error for `lines` in `[session.redis]`, without the file's name.
fn redis_err(lines: &str) -> String {
    let e = err(&format!("[session.redis]\n{lines}\n"));
    match e.strip_prefix("/etc/app/config.toml: ") {
        Some(rest) => rest.to_owned(),
        None => panic!("the error names the file: {e}"),
    }
}

fn redis_ok(lines: &str) -> RedisConfig {
    ok(&format!("[session.redis]\n{lines}\n")).session.redis
}

const URL_ALLOWED: &str = "expected redis://[user:password@]host[:port][/db] (rediss:// for \
                           TLS) or unix:///path/to/redis.sock[?db=N] (also redis+unix://)";
const CLUSTER_ALLOWED: &str = "expected redis://[user:password@]host[:port] (rediss:// for \
                               TLS) for each cluster node (a unix socket cannot reach a cluster)";
const TIMEOUT_ALLOWED: &str = "expected seconds from 0.01 to 60, such as 2, 0.5 or \"500ms\"";

#[test]
fn defaults() {
    let r = Config::defaults()
        .expect("defaults are valid")
        .session
        .redis;
    assert_eq!(r.url, "redis://127.0.0.1:6379");
    assert!(r.cluster_urls.is_empty());
    assert!(!r.is_cluster());
    assert_eq!(r.key_prefix, "session:");
    assert_eq!(r.pool_size, 4);
    assert_eq!(r.connect_timeout, Duration::from_secs(2));
    assert_eq!(r.command_timeout, Duration::from_secs(1));
}

#[test]
fn url_takes_redis_and_unix_sockets() {
    for url in [
        "redis://127.0.0.1",
        "redis://[::1]:6380/2",
        "redis://:secret@localhost:6379",
        "redis://app:secret@redis.internal:6379/0?protocol=resp3",
        "unix:///run/redis/redis-server.sock",
        "redis+unix:///tmp/redis.sock?db=3",
    ] {
        assert_eq!(redis_ok(&format!("url = {url:?}")).url, url);
    }
}

#[test]
fn url_refuses_other_schemes_and_what_redis_cannot_connect_to() {
    for url in [
        "",
        "127.0.0.1:6379",
        "http://127.0.0.1:6379",
        "valkey://127.0.0.1",
        "redis://",
        "redis://0.0.0.0:6379",
        "redis://127.0.0.1:6379/zero",
        "redis://127.0.0.1:99999",
        "unix://",
    ] {
        assert_eq!(
            redis_err(&format!("url = {url:?}")),
            format!("session.redis.url = {url:?}: {URL_ALLOWED}"),
        );
    }
    assert!(
        redis_err("url = 6379").starts_with("session.redis.url = 6379: invalid type: integer"),
        "a number is not a URL"
    );
}

#[test]
fn a_password_in_a_refused_url_is_not_shown() {
    assert_eq!(
        redis_err("url = \"redis://app:hunter2@127.0.0.1:6379/x\""),
        format!("session.redis.url = \"redis://app:***@127.0.0.1:6379/x\": {URL_ALLOWED}")
    );
    let e = redis_err(
        "url = \"redis://:hunter2@127.0.0.1\"\ncluster_urls = [\"redis://127.0.0.1:7000\"]",
    );
    assert!(!e.contains("hunter2"), "{e}");
    let e = redis_err("cluster_urls = [\"unix:///tmp/r.sock?pass=hunter2&db=1\"]");
    assert!(!e.contains("hunter2") && e.contains("pass=***"), "{e}");
}

#[test]
fn cluster_urls_turn_on_cluster_mode() {
    let r = redis_ok(
        "cluster_urls = [\"redis://127.0.0.1:7000\", \"redis://127.0.0.1:7001\", \
         \"redis://node3.example:7002\"]",
    );
    assert!(r.is_cluster());
    assert_eq!(r.cluster_urls.len(), 3);
    assert_eq!(r.url, "redis://127.0.0.1:6379");
    // The default written out is still "left at its default".
    let r =
        redis_ok("url = \"redis://127.0.0.1:6379\"\ncluster_urls = [\"redis://127.0.0.1:7000\"]");
    assert!(r.is_cluster());
}

#[test]
fn cluster_urls_are_checked_one_by_one() {
    assert_eq!(
        redis_err("url = \"redis://10.0.0.1:6379\"\ncluster_urls = [\"redis://127.0.0.1:7000\"]"),
        "session.redis.url = \"redis://10.0.0.1:6379\": set either url (one Redis server) or \
         cluster_urls (a Redis Cluster), not both"
    );
    for url in [
        "unix:///run/redis.sock",
        "redis+unix:///run/redis.sock",
        "http://127.0.0.1:7000",
        "redis://",
    ] {
        assert_eq!(
            redis_err(&format!(
                "cluster_urls = [\"redis://127.0.0.1:7000\", {url:?}]"
            )),
            format!("session.redis.cluster_urls = {url:?}: {CLUSTER_ALLOWED}")
        );
    }
    assert_eq!(
        redis_err("cluster_urls = [\"redis://127.0.0.1:7000/1\"]"),
        "session.redis.cluster_urls = \"redis://127.0.0.1:7000/1\": Redis Cluster has database 0 \
         only: leave the /db out"
    );
    assert!(
        redis_err("cluster_urls = \"redis://127.0.0.1:7000\"")
            .starts_with("session.redis.cluster_urls = \"redis://127.0.0.1:7000\": invalid type"),
        "a list is expected"
    );
}

#[test]
fn key_prefix_is_printable_ascii_without_spaces() {
    for prefix in ["", "app1:sess:", "{sessions}:", &"p".repeat(64)] {
        assert_eq!(
            redis_ok(&format!("key_prefix = {prefix:?}")).key_prefix,
            prefix
        );
    }
    for prefix in ["my session:", "tab\t", "é:", "new\nline", &"p".repeat(65)] {
        assert_eq!(
            redis_err(&format!("key_prefix = {prefix:?}")),
            format!(
                "session.redis.key_prefix = {prefix:?}: expected 0 to 64 printable ASCII \
                 characters without spaces, such as \"session:\""
            )
        );
    }
}

#[test]
fn pool_size_is_from_1_to_256() {
    assert_eq!(redis_ok("pool_size = 1").pool_size, 1);
    assert_eq!(redis_ok("pool_size = 256").pool_size, 256);
    assert_eq!(
        redis_err("pool_size = 257"),
        "session.redis.pool_size = 257: expected an integer from 1 to 256"
    );
    for bad in ["0", "-1"] {
        assert_eq!(
            redis_err(&format!("pool_size = {bad}")),
            format!("session.redis.pool_size = {bad}: expected an integer of at least 1")
        );
    }
}

#[test]
fn timeouts_take_seconds_fractions_and_units() {
    for (text, expected) in [
        ("2", Duration::from_secs(2)),
        ("0.5", Duration::from_millis(500)),
        ("0.01", Duration::from_millis(10)),
        ("60", Duration::from_secs(60)),
        ("\"250ms\"", Duration::from_millis(250)),
        ("\"1m\"", Duration::from_secs(60)),
    ] {
        let r = redis_ok(&format!(
            "connect_timeout = {text}\ncommand_timeout = {text}"
        ));
        assert_eq!(
            (r.connect_timeout, r.command_timeout),
            (expected, expected),
            "{text}"
        );
    }
}

#[test]
fn timeouts_are_bounded() {
    for key in ["connect_timeout", "command_timeout"] {
        for bad in [
            "0", "-1", "0.009", "60.5", "61", "\"5ms\"", "\"2m\"", "\"soon\"", "nan", "inf",
        ] {
            assert_eq!(
                redis_err(&format!("{key} = {bad}")),
                format!("session.redis.{key} = {bad}: {TIMEOUT_ALLOWED}"),
            );
        }
    }
}

#[test]
fn a_logged_config_does_not_show_redis_passwords() {
    let c = ok("[session.redis]\nurl = \"redis://app:hunter2@127.0.0.1:6379/1\"\n");
    let logged = format!("{c:?}");
    assert!(
        !logged.contains("hunter2") && logged.contains("redis://app:***@127.0.0.1:6379/1"),
        "{logged}"
    );
    let c = ok("[session.redis]\ncluster_urls = [\"redis://:hunter2@127.0.0.1:7000\"]\n");
    let logged = format!("{:?}", c.session.redis);
    assert!(
        !logged.contains("hunter2") && logged.contains("redis://:***@127.0.0.1:7000"),
        "{logged}"
    );
    assert_eq!(
        c.session.redis.cluster_urls[0],
        "redis://:hunter2@127.0.0.1:7000"
    );
}

/// Review finding 5: a URL the `redis` crate cannot parse (a typo in the scheme, a bad port)
/// is shown verbatim in the config error, password and all (`shown` masks only what
/// `parse_redis_url` accepts), and start-up errors go to the terminal and the service log.
#[test]
fn a_password_in_an_unparseable_url_is_not_shown() {
    for url in [
        "reddis://app:hunter2@127.0.0.1:6379",
        "redis://app:hunter2@127.0.0.1:99999",
    ] {
        let e = redis_err(&format!("url = {url:?}"));
        assert!(!e.contains("hunter2"), "{e}");
    }
}

#[test]
fn tls_urls_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    // A certificate's PEM framing (its body is not checked here, only that there is one).
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let r = redis_ok("url = \"rediss://127.0.0.1:6380\"");
    assert_eq!(r.url, "rediss://127.0.0.1:6380");
    assert!(r.tls.is_empty());
    let r = redis_ok(&format!(
        "url = \"rediss://localhost:6380\"\ntls_ca_file = {:?}",
        ca.display().to_string()
    ));
    assert_eq!(r.tls.ca.as_deref(), Some(ca.as_path()));
    redis_ok("cluster_urls = [\"rediss://127.0.0.1:7000\"]");

    let missing = dir.path().join("missing.pem");
    let e = redis_err(&format!(
        "url = \"rediss://localhost:6380\"\ntls_ca_file = {:?}",
        missing.display().to_string()
    ));
    assert!(
        e.starts_with("session.redis.tls_ca_file = ") && e.contains("cannot read it: "),
        "{e}"
    );
    let e = redis_err(&format!(
        "url = \"rediss://localhost:6380\"\ntls_ca_file = {:?}",
        junk.display().to_string()
    ));
    assert!(e.contains("no PEM certificate in it"), "{e}");
    let e = redis_err(&format!(
        "url = \"rediss://localhost:6380\"\ntls_cert_file = {:?}",
        ca.display().to_string()
    ));
    assert!(e.contains("a client certificate needs its key"), "{e}");
    let e = redis_err(&format!(
        "url = \"redis://localhost:6379\"\ntls_ca_file = {:?}",
        ca.display().to_string()
    ));
    assert!(e.contains("no URL asks for TLS: use rediss://"), "{e}");
}

#[test]
fn sentinels_and_wait_replicas() {
    let r = redis_ok(
        "sentinel_urls = [\"redis://127.0.0.1:26379\", \"redis://127.0.0.1:26380\"]\n\
         sentinel_master = \"main\"\nsentinel_password = \"s3cret\"\nwait_replicas = 1",
    );
    let sentinel = r.sentinel.as_ref().expect("sentinel mode");
    assert_eq!(sentinel.master, "main");
    assert_eq!(sentinel.urls.len(), 2);
    assert_eq!(r.wait_replicas, 1);
    assert!(!format!("{r:?}").contains("s3cret"), "{r:?}");
    assert!(redis_ok("").sentinel.is_none());

    let e = redis_err(
        "sentinel_urls = [\"redis://127.0.0.1:26379\"]\ncluster_urls = [\"redis://127.0.0.1:7000\"]",
    );
    assert!(e.starts_with("session.redis.sentinel_urls"), "{e}");
    let e = redis_err(
        "sentinel_urls = [\"redis://127.0.0.1:26379\"]\nurl = \"unix:///tmp/redis.sock\"",
    );
    assert!(e.contains("the Sentinels give its address"), "{e}");
    let e = redis_err("sentinel_urls = [\"unix:///tmp/s.sock\"]");
    assert!(e.contains("for each Sentinel"), "{e}");
    let e = redis_err(
        "sentinel_urls = [\"redis://127.0.0.1:26379\", \"rediss://127.0.0.1:26380\"]",
    );
    assert!(e.contains("all redis:// or all rediss://"), "{e}");
    let e = redis_err("sentinel_master = \"\"");
    assert!(e.starts_with("session.redis.sentinel_master"), "{e}");
    let e = redis_err("cluster_urls = [\"redis://127.0.0.1:7000\"]\nwait_replicas = 1");
    assert!(e.contains("WAIT is for one primary"), "{e}");
}
