//! Where one session lives, in its store's own terms (a file, a key, a row): what
//! `sessions show` prints and what the page's session panel names.

use std::path::PathBuf;

use crate::config::{SessionConfig, StoreType};

/// The place of the session whose id hashes to `stem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    File {
        dir: PathBuf,
        name: String,
    },
    Memory,
    RedisKey(String),
    MemcachedKey(String),
    SqliteRow {
        db: PathBuf,
        id: String,
    },
    PostgresRow {
        table: String,
        id: String,
    },
    /// `type = "cookie"`: the session is the cookie.
    Cookie,
}

impl Place {
    pub fn of(s: &SessionConfig, stem: &str) -> Self {
        match s.store {
            StoreType::Filesystem => Place::File {
                dir: s.filesystem.dir.clone(),
                name: format!("{stem}.json"),
            },
            StoreType::Memory => Place::Memory,
            StoreType::Redis => Place::RedisKey(format!("{}{stem}", s.redis.key_prefix)),
            StoreType::Memcached => {
                Place::MemcachedKey(format!("{}{stem}", s.memcached.key_prefix))
            }
            StoreType::Sqlite => Place::SqliteRow {
                db: s.sqlite.path.clone(),
                id: stem.to_owned(),
            },
            StoreType::Postgres => Place::PostgresRow {
                table: s.postgres.table.clone(),
                id: stem.to_owned(),
            },
            StoreType::Cookie => Place::Cookie,
        }
    }
}

/// For the operator: full paths included.
impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::File { dir, name } => write!(f, "{}", dir.join(name).display()),
            Place::Memory => f.write_str("this process's memory"),
            Place::RedisKey(key) => write!(f, "Redis key {key}"),
            Place::MemcachedKey(key) => write!(f, "memcached key {key}"),
            Place::SqliteRow { db, id } => write!(f, "{}: table sessions, id {id}", db.display()),
            Place::PostgresRow { table, id } => write!(f, "table {table}, id {id}"),
            Place::Cookie => f.write_str("the cookie itself (encrypted with the server's key)"),
        }
    }
}
