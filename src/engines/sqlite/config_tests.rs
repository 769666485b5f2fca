//! `[session.sqlite]`: what its keys take.

use std::path::Path;
use std::time::Duration;

use crate::config::tests::{err, ok};

#[test]
fn sqlite_paths_are_relative_to_the_config_file() {
    let c = ok("[session.sqlite]\npath = \"data/sessions.db\"\nbusy_timeout = 0.5\n");
    assert_eq!(
        c.session.sqlite.path,
        Path::new("/etc/app/data/sessions.db")
    );
    assert_eq!(c.session.sqlite.busy_timeout, Duration::from_millis(500));
    let e = err("[session.sqlite]\npath = \"\"\n");
    assert!(e.contains("session.sqlite.path"), "{e}");
}
