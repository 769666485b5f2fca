//! `[session.postgres]`: what each key takes, and that a password never
//! shows in an error or a logged config.

use crate::config::tests::{err, ok};

#[test]
fn postgres_takes_libpq_urls_over_tcp_and_unix_sockets() {
    let c = ok("[session.postgres]\nurl = \"postgresql://app:pw@db.local:6432/app\"\n");
    assert_eq!(
        c.session.postgres.url,
        "postgresql://app:pw@db.local:6432/app"
    );
    assert_eq!(c.session.postgres.table, "sessions");
    ok("[session.postgres]\nurl = \"postgresql:///app?host=/var/run/postgresql\"\n");
    ok("[session.postgres]\nurl = \"postgres://localhost/app\"\n");
    let e = err("[session.postgres]\nurl = \"mysql://app:secret@db/app\"\n");
    assert!(
        e.starts_with("/etc/app/config.toml: session.postgres.url = \"mysql://app:***@db/app\": expected postgresql://"),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
}

#[test]
fn a_postgres_password_never_shows_in_a_logged_config() {
    let c = ok("[session.postgres]\nurl = \"postgresql://app:hunter2@db/app?password=hunter3\"\n");
    let shown = format!("{:?}", c.session.postgres);
    assert!(
        !shown.contains("hunter2") && !shown.contains("hunter3"),
        "{shown}"
    );
    assert!(shown.contains("app:***@db"), "{shown}");
}

#[test]
fn postgres_tables_are_plain_identifiers_and_pools_are_bounded() {
    ok("[session.postgres]\ntable = \"app_sessions_2\"\n");
    for bad in [
        "",
        "Sessions",
        "2sessions",
        "sessions; drop table users",
        "a-b",
    ] {
        let e = err(&format!("[session.postgres]\ntable = {bad:?}\n"));
        assert!(e.contains("session.postgres.table"), "{bad}: {e}");
    }
    let e = err("[session.postgres]\npool_size = 1000\n");
    assert!(e.contains("expected an integer from 1 to 256"), "{e}");
}

