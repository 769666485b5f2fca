//! `[session] type` and `[auth] users`: the one list of types, Flask-Session's others refused
//! with their reason, and where user accounts follow the session engine.

use super::StoreType;
use crate::config::tests::{err, ok};
use crate::config::Config;

const ALLOWED: &str =
    "allowed: \"filesystem\", \"memory\", \"redis\", \"sqlite\", \"postgres\", \"memcached\", \"cookie\"";

#[test]
fn every_type_this_build_runs_is_read_by_its_name() {
    assert_eq!(StoreType::ALL.len(), 7);
    for &t in StoreType::ALL {
        let c = ok(&format!("[session]\ntype = \"{t}\"\n"));
        assert_eq!(c.session.store, t);
    }
    assert_eq!(
        ok("[session]\ntype = \"redis\"\n").session.store,
        StoreType::Redis
    );
}

#[test]
fn flask_session_types_that_cannot_run_here_say_so_and_name_what_can() {
    assert_eq!(
        err("[session]\ntype = \"mongodb\"\n"),
        format!(
            "/etc/app/config.toml: session.type = \"mongodb\": store type `mongodb` cannot run \
             here: it needs a MongoDB server, which Debian does not package, and this build has \
             no MongoDB client; {ALLOWED}"
        )
    );
    let e = err("[session]\ntype = \"dynamodb\"\n");
    assert!(
        e.starts_with(
            "/etc/app/config.toml: session.type = \"dynamodb\": store type `dynamodb` cannot run \
             here: it is Amazon's hosted DynamoDB service"
        ) && e.ends_with(ALLOWED),
        "{e}"
    );
}

#[test]
fn a_type_in_the_wrong_case_is_unknown() {
    assert_eq!(
        err("[session]\ntype = \"Redis\"\n"),
        format!("/etc/app/config.toml: session.type = \"Redis\": unknown store type; {ALLOWED}")
    );
}

#[test]
fn users_follow_the_session_type_unless_written() {
    assert_eq!(
        Config::defaults().expect("defaults").auth.users,
        StoreType::Sqlite
    );
    for (session_type, users) in [
        ("filesystem", StoreType::Sqlite),
        ("memory", StoreType::Sqlite),
        ("redis", StoreType::Redis),
        ("sqlite", StoreType::Sqlite),
        ("postgres", StoreType::Postgres),
    ] {
        let c = ok(&format!("[session]\ntype = \"{session_type}\"\n"));
        assert_eq!(c.auth.users, users, "{session_type}");
    }
    let c = ok("[session]\ntype = \"redis\"\n[auth]\nusers = \"sqlite\"\n");
    assert_eq!(c.auth.users, StoreType::Sqlite);
    let c = ok("[session]\ntype = \"filesystem\"\n[auth]\nusers = \"redis\"\n");
    assert_eq!(c.auth.users, StoreType::Redis);
}

#[test]
fn users_takes_sqlite_redis_or_postgres_only() {
    let e = err("[auth]\nusers = \"mongodb\"\n");
    assert!(
        e.starts_with("/etc/app/config.toml: auth.users = \"mongodb\": unknown variant `mongodb`")
            && e.contains("`sqlite`")
            && e.contains("`redis`")
            && e.contains("`postgres`"),
        "{e}"
    );
}

#[test]
fn users_in_redis_need_a_valid_redis_table() {
    let e = err("[auth]\nusers = \"redis\"\n[session.redis]\nurl = \"http://127.0.0.1\"\n");
    assert!(
        e.starts_with(
            "/etc/app/config.toml: session.redis.url = \"http://127.0.0.1\": expected redis://"
        ),
        "{e}"
    );
}

#[test]
fn cookie_sessions_refuse_lock_because_nothing_on_the_server_could_hold_it() {
    ok("[session]\ntype = \"cookie\"\n");
    let e = err("[session]\ntype = \"cookie\"\nlock = true\n");
    assert!(
        e.starts_with("/etc/app/config.toml: session.lock = true: type = \"cookie\" keeps"),
        "{e}"
    );
}

#[test]
fn the_default_type_is_flasks_filesystem() {
    assert_eq!(StoreType::DEFAULT, StoreType::Filesystem);
    assert_eq!(StoreType::DEFAULT.name(), "filesystem");
}

#[test]
fn engine_tables_resolve_paths_and_bound_their_keys() {
    let c = ok("[session.filesystem]\ndir = \"data/s\"\n");
    assert_eq!(
        c.session.filesystem.dir,
        std::path::Path::new("/etc/app/data/s")
    );
    let e = err("[session.filesystem]\ncleanup_interval = \"25h\"\n");
    assert!(
        e.contains("session.filesystem.cleanup_interval = \"25h\": ")
            && e.ends_with("at most \"1d\" (86400)"),
        "{e}"
    );
    let e = err("[session.memory]\ncleanup_interval = \"25h\"\n");
    assert!(
        e.contains("session.memory.cleanup_interval = \"25h\": "),
        "{e}"
    );
    ok("[session.filesystem]\ncleanup_interval = \"1d\"\n[session.memory]\ncleanup_interval = 5\n");
}

#[test]
fn unknown_keys_of_an_engine_table_name_the_keys_it_takes() {
    assert_eq!(
        err("[session.redis]\nurll = \"redis://127.0.0.1\"\n"),
        "/etc/app/config.toml: session.redis.urll = \"redis://127.0.0.1\": unknown key; expected \
         one of `url`, `cluster_urls`, `key_prefix`, `pool_size`, `connect_timeout`, \
         `command_timeout`, `tls_ca_file`, `tls_cert_file`, `tls_key_file`, `sentinel_urls`, \
         `sentinel_master`, `sentinel_password`, `wait_replicas`"
    );
    assert_eq!(
        err("[session.filesystem]\nfoo = 1\n"),
        "/etc/app/config.toml: session.filesystem.foo = 1: unknown key; expected one of `dir`, \
         `cleanup_interval`, `durability`, `io_threads`, `read_cache`"
    );
    let e = err("[session.cookie]\nfoo = 1\n");
    assert!(
        e.starts_with("/etc/app/config.toml: session.cookie") && e.contains("no table of its own"),
        "{e}"
    );
}
