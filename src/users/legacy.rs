//! The one-time import of the JSON user file of earlier versions (`[auth] users_file`) into the
//! SQLite database. The import runs in one write transaction, so that processes starting
//! together import once; the file is then renamed `<name>.imported` and kept, never deleted.
//! A crash between the commit and the rename only repeats an import that changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{ids, sqlite, UserError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[allow(dead_code)]
    version: u32,
    users: BTreeMap<String, StoredUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredUser {
    name: String,
    password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// Where an imported legacy file is moved to.
pub fn imported_path(legacy: &Path) -> PathBuf {
    let mut name = legacy.as_os_str().to_owned();
    name.push(".imported");
    PathBuf::from(name)
}

/// Imports `legacy` if it exists; returns how many users were added.
pub fn import(conn: &mut Connection, db_path: &Path, legacy: &Path) -> Result<usize, UserError> {
    let bytes = match std::fs::read(legacy) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(UserError::Io {
                path: legacy.to_owned(),
                source,
            })
        }
    };
    let file: UsersFile = serde_json::from_slice(&bytes).map_err(|source| UserError::Legacy {
        path: legacy.to_owned(),
        source,
    })?;
    let stamps: Vec<String> = file
        .users
        .values()
        .map(|u| {
            u.created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        })
        .collect();
    // Older versions compared ids case-sensitively: of `Alice` and `alice` the one registered
    // first keeps the id; the other stays in the renamed file and is named in the log.
    let mut users: Vec<(String, sqlite::Row, &str)> = file
        .users
        .into_iter()
        .zip(&stamps)
        .map(|((id, u), stamp)| {
            let row = sqlite::Row {
                id: id.clone(),
                name: u.name,
                password_hash: u.password_hash,
            };
            (ids::canonical_id(&id), row, stamp.as_str())
        })
        .collect();
    users.sort_by(|a, b| a.2.cmp(b.2));
    let total = users.len();
    let taken = sqlite::insert_all(conn, users).map_err(|source| UserError::Db {
        path: db_path.to_owned(),
        source,
    })?;
    for key in &taken {
        tracing::warn!(user_id = ?key, file = %legacy.display(), "not imported: the id is taken (ids are now compared without case)");
    }
    let target = imported_path(legacy);
    match std::fs::rename(legacy, &target) {
        // Another process imported it at the same time and renamed it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(UserError::Io {
                path: legacy.to_owned(),
                source,
            })
        }
        Ok(()) => tracing::info!(
            from = %legacy.display(),
            to = %db_path.display(),
            kept_as = %target.display(),
            "imported the user file"
        ),
    }
    Ok(total - taken.len())
}
