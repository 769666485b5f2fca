//! Unit tests of the user database: ids, the legacy import, re-hashing and the dummy's cost.

use super::*;

fn db_in(dir: &Path, cost: u32) -> UserDb {
    UserDb::open(dir.join("users.db"), Some(&dir.join("users.json")), cost).expect("open")
}

#[test]
fn register_then_verify_and_duplicates_refused_in_any_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(dir.path(), 4);
    let alice = db
        .register("Alice", "Alice A.", "correct horse")
        .expect("registered");
    assert_eq!(
        (alice.id.as_str(), alice.spelling.as_str()),
        ("alice", "Alice")
    );
    for twin in ["alice", "ALICE", "aLiCe"] {
        assert!(
            matches!(db.register(twin, "A2", "x"), Err(UserError::Taken(_))),
            "{twin}"
        );
    }
    let found = db.verify("ALICE", "correct horse").expect("db");
    assert_eq!(
        found.map(|u| (u.id, u.spelling, u.name)),
        Some(("alice".into(), "Alice".into(), "Alice A.".into()))
    );
    assert_eq!(db.verify("alice", "wrong").expect("db"), None);
    assert_eq!(db.verify("bob", "correct horse").expect("db"), None);
    let bytes = std::fs::read(db.path().expect("a file")).expect("read");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("correct horse"));
    let mode = std::fs::metadata(db.path().expect("a file"))
        .expect("stat")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn a_legacy_json_file_is_imported_once_and_kept_renamed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = |p: &str| bcrypt::hash(p, 4).expect("hash");
    let legacy = serde_json::json!({
        "version": 1,
        "users": {
            "Bob": {"name": "Bob", "password_hash": hash("bob password"),
                    "created_at": "2025-01-02T00:00:00Z"},
            "bob": {"name": "Later bob", "password_hash": hash("other password"),
                    "created_at": "2025-06-01T00:00:00Z"},
            "carol": {"name": "Carol", "password_hash": hash("carol password"),
                      "created_at": "2025-03-01T00:00:00Z"}
        }
    });
    let json_path = dir.path().join("users.json");
    std::fs::write(&json_path, legacy.to_string()).expect("write legacy");
    let db = db_in(dir.path(), 4);
    assert!(!json_path.exists(), "renamed after the import");
    assert!(imported_path(&json_path).exists(), "kept, never deleted");
    assert_eq!(
        db.verify("carol", "carol password")
            .expect("db")
            .map(|u| u.name),
        Some("Carol".into())
    );
    // Of two ids that differ only in case, the one registered first keeps it.
    assert_eq!(
        db.verify("BOB", "bob password")
            .expect("db")
            .map(|u| u.spelling),
        Some("Bob".into())
    );
    assert_eq!(db.verify("bob", "other password").expect("db"), None);
    drop(db);
    // A second import of the same file (a crash before the rename) changes nothing.
    std::fs::rename(imported_path(&json_path), &json_path).expect("put back");
    let db = db_in(dir.path(), 4);
    assert!(db.verify("carol", "carol password").expect("db").is_some());
    assert!(matches!(
        db.register("Carol", "x", "x"),
        Err(UserError::Taken(_))
    ));
}

#[test]
fn a_broken_legacy_file_is_a_typed_error_and_stays_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json_path = dir.path().join("users.json");
    std::fs::write(&json_path, "{ not json").expect("write");
    let opened = UserDb::open(dir.path().join("users.db"), Some(&json_path), 4);
    assert!(matches!(opened, Err(UserError::Legacy { .. })));
    assert!(json_path.exists());
}

#[test]
fn a_login_rehashes_a_password_stored_at_another_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    db_in(dir.path(), 5)
        .register("dave", "Dave", "dave password")
        .expect("registered");
    let db = db_in(dir.path(), 4);
    assert_eq!(db.stored_cost("dave").expect("db"), Some(5));
    assert_eq!(db.verify("dave", "wrong password").expect("db"), None);
    assert_eq!(
        db.stored_cost("dave").expect("db"),
        Some(5),
        "only a login rehashes"
    );
    let before = db.credential("dave").expect("db");
    assert!(db.verify("dave", "dave password").expect("db").is_some());
    assert_eq!(db.stored_cost("dave").expect("db"), Some(4));
    assert!(db.verify("dave", "dave password").expect("db").is_some());
    // The re-hash keeps the salt: sessions bound to the password stay.
    assert_eq!(db.credential("dave").expect("db"), before);
    // A new password (or a new account under the same id) has a new one.
    let changed = db.set_password("dave", "new password!").expect("db");
    assert!(changed.is_some() && changed != before);
    assert_eq!(db.credential("dave").expect("db"), changed);
    assert!(db.remove("dave").expect("db"));
    assert_eq!(db.credential("dave").expect("db"), None);
    db.register("DAVE", "Dave", "new password!")
        .expect("registered");
    let again = db.credential("dave").expect("db");
    assert!(again.is_some() && again != changed);
}

#[test]
fn the_dummy_hash_has_the_highest_stored_cost_and_is_made_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(dir.path(), 4);
    assert_eq!(
        db.dummy_cost().expect("db"),
        4,
        "no users: the configured cost"
    );
    let at5 = bcrypt::hash("x", 5).expect("hash");
    let at6 = bcrypt::hash("x", 6).expect("hash");
    let added = db
        .add_hashed([
            ("u1", "U", at5.as_str()),
            ("u2", "U", at5.as_str()),
            ("u3", "U", at6.as_str()),
        ])
        .expect("add");
    assert_eq!(added, 3);
    assert_eq!(
        db.dummy_cost().expect("db"),
        6,
        "the highest, not the most common"
    );
    drop(db);
    // Made at open, before any login.
    let db = db_in(dir.path(), 4);
    let dummy = db.dummy.lock().clone();
    assert_eq!((dummy.0, cost_of(&dummy.1)), (6, Some(6)));
    // Kept current: when the last hash at 6 is re-hashed at the configured cost, the dummy
    // follows the highest left.
    assert!(db.verify("u3", "x").expect("db").is_some());
    assert_eq!(db.dummy_cost().expect("db"), 5);
    assert_eq!(db.verify("nobody", "x").expect("db"), None);
    let dummy = db.dummy.lock().clone();
    assert_eq!((dummy.0, cost_of(&dummy.1)), (5, Some(5)));
}

#[test]
fn a_wrong_password_with_a_hash_cheaper_than_the_dummy_also_checks_the_dummy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(dir.path(), 4);
    let at5 = bcrypt::hash("old password", 5).expect("hash");
    db.add_hashed([("old", "Old", at5.as_str())]).expect("add");
    db.register("new", "New", "new password")
        .expect("registered");
    assert_eq!(db.dummy_cost().expect("db"), 5);
    let checks = || db.dummy_checks.load(Ordering::Relaxed);
    let mut before = checks();
    let mut ran_dummy = |id: &str, password: &str| {
        assert_eq!(
            db.verify(id, password).expect("db").is_some(),
            password.ends_with("password")
        );
        let now = checks();
        let ran = now - before;
        before = now;
        ran
    };
    assert_eq!(ran_dummy("nobody", "wrong"), 1, "unknown id");
    assert_eq!(ran_dummy("new", "wrong"), 1, "cost 4 < 5: the dummy too");
    assert_eq!(
        ran_dummy("old", "wrong"),
        0,
        "cost 5: its own check is enough"
    );
    assert_eq!(
        ran_dummy("new", "new password"),
        0,
        "a success costs what it costs"
    );
}

#[test]
fn a_login_answers_while_another_process_holds_the_write_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = std::sync::Arc::new(db_in(dir.path(), 4));
    db.register("alice", "Alice", "alice password")
        .expect("registered");
    let other = rusqlite::Connection::open(db.path().expect("a file")).expect("second connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    // A registration of this process now waits for the lock, up to the busy timeout.
    let registration = {
        let db = db.clone();
        std::thread::spawn(move || db.register("bob", "Bob", "bob password").map(drop))
    };
    // Lets the registration reach its wait; were it late, the test would prove less, never fail.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let login = {
        let db = db.clone();
        std::thread::spawn(move || db.verify("alice", "alice password").map(|u| u.is_some()))
    };
    assert!(login.join().expect("login thread").expect("db"));
    assert!(
        !registration.is_finished(),
        "the login answered while the registration still waited for the other process"
    );
    other.execute_batch("COMMIT").expect("release");
    registration
        .join()
        .expect("registration thread")
        .expect("registered once the lock is free");
}

#[test]
fn opening_makes_the_database_and_its_wal_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.permissions().mode() & 0o777)
            .expect("stat")
    };
    let chmod = |name: &str, mode: u32| {
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(mode))
            .expect("chmod")
    };
    // A database restored at 0644 with no WAL files: the files the database makes take its mode.
    db_in(dir.path(), 4)
        .register("m", "M", "m password")
        .expect("registered");
    chmod("users.db", 0o644);
    let db = db_in(dir.path(), 4);
    db.register("n", "N", "n password").expect("registered");
    for name in ["users.db", "users.db-wal", "users.db-shm"] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
    // WAL files already there at 0644 (another process has the database open).
    for name in ["users.db", "users.db-wal", "users.db-shm"] {
        chmod(name, 0o644);
    }
    let second = db_in(dir.path(), 4);
    for name in ["users.db", "users.db-wal", "users.db-shm"] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
    drop((db, second));
}

fn legacy_file(dir: &Path, users: serde_json::Value) -> PathBuf {
    let path = dir.join("users.json");
    let file = serde_json::json!({"version": 1, "users": users});
    std::fs::write(&path, file.to_string()).expect("write legacy");
    path
}

#[test]
fn a_legacy_import_skips_entries_a_registration_would_refuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("password123", 4).expect("hash");
    let entry = |name: &str, hash: &str| {
        serde_json::json!({"name": name, "password_hash": hash,
                           "created_at": "2024-01-01T00:00:00Z"})
    };
    let legacy = legacy_file(
        dir.path(),
        serde_json::json!({
            ".": entry("dot", &hash),
            "Ådmin": entry("x", &hash),
            "two words": entry("x", &hash),
            "mallory": entry("ad\u{202E}nimda", &hash),
            "blank": entry("\u{2800}", &hash),
            "broken": entry("Broken", "not-a-hash"),
            "sha": entry("Sha", "$6$salt$abcdefghijklmnop"),
            "erin": entry("  Erin  ", &hash),
        }),
    );
    let db = UserDb::open(dir.path().join("users.db"), Some(&legacy), 4).expect("imported");
    // Not in the database: the id is free.
    for skipped in [
        ".",
        "Ådmin",
        "two words",
        "mallory",
        "blank",
        "broken",
        "sha",
    ] {
        assert!(db.register(skipped, "N", "pw").is_ok(), "{skipped:?}");
    }
    let erin = db.verify("erin", "password123").expect("db");
    assert_eq!(
        erin.map(|u| u.name),
        Some("Erin".into()),
        "trimmed as a registration does"
    );
    assert!(imported_path(&legacy).exists(), "moved aside as usual");
}

#[test]
fn a_legacy_import_compares_registration_instants_not_their_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = bcrypt::hash("first password", 4).expect("hash");
    let second = bcrypt::hash("second password", 4).expect("hash");
    // 10:00+05:00 is 05:00Z, an hour before 06:00Z, though its text sorts after it.
    let legacy = legacy_file(
        dir.path(),
        serde_json::json!({
            "ALICE": {"name": "First", "password_hash": first,
                      "created_at": "2024-01-01T10:00:00+05:00"},
            "alice": {"name": "Second", "password_hash": second,
                      "created_at": "2024-01-01T06:00:00Z"},
        }),
    );
    let db = UserDb::open(dir.path().join("users.db"), Some(&legacy), 4).expect("imported");
    let alice = db.verify("alice", "first password").expect("db");
    assert_eq!(
        alice.map(|u| (u.spelling, u.name)),
        Some(("ALICE".into(), "First".into()))
    );
    assert_eq!(db.verify("alice", "second password").expect("db"), None);
}

#[test]
fn a_second_legacy_file_never_overwrites_the_kept_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("password123", 4).expect("hash");
    let mut kept = Vec::new();
    for id in ["first", "second", "third"] {
        let legacy = legacy_file(
            dir.path(),
            serde_json::json!({id: {"name": id, "password_hash": hash,
                                    "created_at": "2024-01-01T00:00:00Z"}}),
        );
        kept.push(std::fs::read_to_string(&legacy).expect("read"));
        drop(db_in(dir.path(), 4));
        assert!(!legacy.exists(), "moved aside");
    }
    let json = dir.path().join("users.json");
    assert_eq!(
        std::fs::read_to_string(imported_path(&json)).expect("first kept"),
        kept[0]
    );
    for (n, text) in kept.iter().enumerate().skip(1) {
        let path = dir.path().join(format!("users.json.imported.{n}"));
        assert_eq!(&std::fs::read_to_string(path).expect("kept"), text);
    }
    let db = db_in(dir.path(), 4);
    for id in ["first", "second", "third"] {
        assert!(db.verify(id, "password123").expect("db").is_some(), "{id}");
    }
}
