//! The user table in SQLite: the schema, opening the file so that several server processes can
//! share it (WAL, a busy timeout, mode 0600), and the few statements the user database runs. A
//! login is one primary-key lookup; the count of stored hashes per bcrypt cost is kept by
//! triggers, so that the highest cost in use is one small query in every process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use crate::users::{NewUser, Row, UserStorage};
use crate::users::UserError;

/// How long a statement waits for another process's write before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tables, index and triggers; every statement is idempotent so that any process may run it.
/// `key` is the case-folded id (the primary key), `id` the spelling the user registered with.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    key TEXT PRIMARY KEY NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hash_costs (
    cost INTEGER PRIMARY KEY NOT NULL,
    users INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS users_cost_insert AFTER INSERT ON users BEGIN
    INSERT INTO hash_costs (cost, users)
        VALUES (CAST(substr(NEW.password_hash, 5, 2) AS INTEGER), 1)
        ON CONFLICT (cost) DO UPDATE SET users = users + 1;
END;
CREATE TRIGGER IF NOT EXISTS users_cost_update AFTER UPDATE OF password_hash ON users BEGIN
    UPDATE hash_costs SET users = users - 1
        WHERE cost = CAST(substr(OLD.password_hash, 5, 2) AS INTEGER);
    INSERT INTO hash_costs (cost, users)
        VALUES (CAST(substr(NEW.password_hash, 5, 2) AS INTEGER), 1)
        ON CONFLICT (cost) DO UPDATE SET users = users + 1;
END;
CREATE TRIGGER IF NOT EXISTS users_cost_delete AFTER DELETE ON users BEGIN
    UPDATE hash_costs SET users = users - 1
        WHERE cost = CAST(substr(OLD.password_hash, 5, 2) AS INTEGER);
END;
";

/// Accounts in the SQLite file `[auth] users_db`.
pub struct SqliteUsers {
    path: PathBuf,
    /// Registrations and re-hashes: these may wait (up to the busy timeout) for another process.
    writer: Mutex<Connection>,
    /// Lookups: in WAL mode they never wait for a writer, so logins go on during a slow write.
    reader: Mutex<Connection>,
}

impl SqliteUsers {
    /// Opens (or creates, mode 0600) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, UserError> {
        let writer = open(path)?;
        let reader = open_reader(path)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn db_err(&self, source: rusqlite::Error) -> UserError {
        UserError::Db {
            path: self.path.clone(),
            source,
        }
    }
}

impl UserStorage for SqliteUsers {
    fn find(&self, key: &str) -> Result<Option<Row>, UserError> {
        find(&self.reader.lock(), key).map_err(|e| self.db_err(e))
    }

    fn insert(&self, user: &NewUser) -> Result<bool, UserError> {
        insert(&self.writer.lock(), user).map_err(|e| self.db_err(e))
    }

    fn insert_all(&self, users: Vec<NewUser>) -> Result<Vec<String>, UserError> {
        insert_all(&mut self.writer.lock(), users).map_err(|e| self.db_err(e))
    }

    fn replace_hash(&self, key: &str, old: &str, new: &str) -> Result<bool, UserError> {
        replace_hash(&self.writer.lock(), key, old, new).map_err(|e| self.db_err(e))
    }

    fn list(&self) -> Result<Vec<(String, Row, String)>, UserError> {
        let conn = self.reader.lock();
        let rows = conn
            .prepare_cached(
                "SELECT key, id, name, password_hash, created_at FROM users ORDER BY key",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        Row {
                            id: r.get(1)?,
                            name: r.get(2)?,
                            password_hash: r.get(3)?,
                        },
                        r.get(4)?,
                    ))
                })?
                .collect()
            });
        rows.map_err(|e| self.db_err(e))
    }

    fn remove(&self, key: &str) -> Result<bool, UserError> {
        let conn = self.writer.lock();
        conn.prepare_cached("DELETE FROM users WHERE key = ?1")
            .and_then(|mut stmt| stmt.execute([key]))
            .map(|n| n == 1)
            .map_err(|e| self.db_err(e))
    }

    fn highest_cost(&self) -> Result<Option<u32>, UserError> {
        highest_cost(&self.reader.lock()).map_err(|e| self.db_err(e))
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// Opens (creating, mode 0600) the database at `path` for writing and makes sure the schema is
/// there. The login throttle keeps its counters in this file too (`web::throttle::sqlite`).
pub fn open(path: &Path) -> Result<Connection, UserError> {
    create_private(path).map_err(|source| UserError::Io {
        path: path.to_owned(),
        source,
    })?;
    make_private(path);
    let conn = connect(path)?;
    configure(&conn, path).map_err(|source| UserError::Db {
        path: path.to_owned(),
        source,
    })?;
    Ok(conn)
}

/// A second connection to the database `open` prepared, for lookups only: in WAL mode it reads
/// the last committed state without waiting for a writer, so logins never queue behind a write
/// that waits for another process.
fn open_reader(path: &Path) -> Result<Connection, UserError> {
    let conn = connect(path)?;
    conn.execute_batch("PRAGMA query_only = ON")
        .map_err(|source| UserError::Db {
            path: path.to_owned(),
            source,
        })?;
    Ok(conn)
}

fn connect(path: &Path) -> Result<Connection, UserError> {
    let db_err = |source| UserError::Db {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(db_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    Ok(conn)
}

fn configure(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    // WAL lets logins read while another process registers; it is a property of the file.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), journal_mode = %mode, "the user database could not use WAL");
    }
    conn.execute_batch(SCHEMA)
}

/// SQLite creates a missing file with the umask's mode and gives its WAL files the mode of the
/// database file: creating it empty first, 0600, keeps the hashes private.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// Sets mode 0600 on the database and on its WAL files if they exist: a file restored or
/// copied with a wider mode would otherwise keep it, and pass it on to the WAL files SQLite
/// makes. Runs before the first connection; a failure (another owner) is logged once.
fn make_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut failed = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        let mode = match std::fs::metadata(&file) {
            Ok(meta) => meta.permissions().mode() & 0o777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                failed.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        if mode != 0o600 {
            if let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                failed.push(format!("{}: {e}", file.display()));
            }
        }
    }
    if !failed.is_empty() {
        tracing::warn!(
            path = %path.display(),
            errors = ?failed,
            "could not make the user database private (mode 0600): other local users may read the password hashes"
        );
    }
}

/// The user whose case-folded id is `key`.
fn find(conn: &Connection, key: &str) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached("SELECT id, name, password_hash FROM users WHERE key = ?1")?
        .query_row([key], |r| {
            Ok(Row {
                id: r.get(0)?,
                name: r.get(1)?,
                password_hash: r.get(2)?,
            })
        })
        .optional()
}

/// Adds a user; `Ok(false)` when the key is taken.
fn insert(conn: &Connection, user: &NewUser) -> rusqlite::Result<bool> {
    let (key, row, created_at) = (&user.key, &user.row, &user.created_at);
    let added = conn
        .prepare_cached(
            "INSERT INTO users (key, id, name, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            key,
            row.id,
            row.name,
            row.password_hash,
            created_at
        ]);
    match added {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Adds every user whose key is free, in one transaction; returns the keys that were taken by
/// another user (not those already holding this very user, as after an earlier import).
fn insert_all(conn: &mut Connection, users: Vec<NewUser>) -> rusqlite::Result<Vec<String>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut taken = Vec::new();
    for user in users {
        if !insert(&tx, &user)?
            && find(&tx, &user.key)?.is_none_or(|had| had.password_hash != user.row.password_hash)
        {
            taken.push(user.key);
        }
    }
    tx.commit()?;
    Ok(taken)
}

/// Replaces a user's hash if it is still `old` (another process may have changed it meanwhile).
fn replace_hash(conn: &Connection, key: &str, old: &str, new: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE users SET password_hash = ?3 WHERE key = ?1 AND password_hash = ?2",
        )?
        .execute([key, old, new])?;
    Ok(changed == 1)
}

/// The highest bcrypt cost of a stored hash, if any user exists.
fn highest_cost(conn: &Connection) -> rusqlite::Result<Option<u32>> {
    conn.prepare_cached(
        "SELECT max(cost) FROM hash_costs WHERE users > 0 AND cost BETWEEN 4 AND 31",
    )?
    .query_row([], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(key: &str, hash: &str) -> NewUser {
        NewUser {
            key: key.into(),
            row: Row {
                id: "x".into(),
                name: "x".into(),
                password_hash: hash.into(),
            },
            created_at: "t".into(),
        }
    }

    #[test]
    fn triggers_keep_the_highest_cost_in_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("u.db")).expect("open");
        assert_eq!(highest_cost(&conn).expect("query"), None);
        assert!(insert(&conn, &user("a", "$2b$10$aaaa")).expect("insert"));
        assert!(insert(&conn, &user("b", "$2b$04$bbbb")).expect("insert"));
        assert!(insert(&conn, &user("c", "$2b$04$cccc")).expect("insert"));
        assert!(!insert(&conn, &user("c", "$2b$04$cccc")).expect("taken"));
        assert_eq!(highest_cost(&conn).expect("query"), Some(10));
        assert!(replace_hash(&conn, "a", "$2b$10$aaaa", "$2b$04$aaaa").expect("update"));
        assert!(!replace_hash(&conn, "a", "$2b$10$aaaa", "$2b$12$aaaa").expect("stale"));
        assert_eq!(highest_cost(&conn).expect("query"), Some(4));
        assert!(replace_hash(&conn, "b", "$2b$04$bbbb", "$2b$10$bbbb").expect("update"));
        assert_eq!(highest_cost(&conn).expect("query"), Some(10));
        // A second open of the same file (another process) finds the schema and counts as is.
        let other = open(&dir.path().join("u.db")).expect("reopen");
        assert_eq!(highest_cost(&other).expect("query"), Some(10));
    }
}
