//! The one-time import of the JSON user file of earlier versions (`[auth] users_file`) into the
//! user storage (a file or an engine). Each entry must pass the rules a registration passes (id, display name) and
//! hold a bcrypt hash; one that does not is skipped and named in the log, never failing the
//! import. In a file the import runs in one write transaction, so that processes starting
//! together import once (in an engine that adds each user on its own, and a second import adds
//! nothing); the file is then renamed `<name>.imported` (or `.imported.1`, `.2`, ... when an earlier
//! import's file is there: none is ever overwritten) and kept, never deleted. A crash between
//! the commit and the rename only repeats an import that changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::OffsetDateTime;

use super::{ids, NewUser, Row, UserError, UserStorage};

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

/// Where an imported legacy file is moved to, when no earlier import's file is there.
pub fn imported_path(legacy: &Path) -> PathBuf {
    numbered_imported_path(legacy, 0)
}

/// `<legacy>.imported` for 0, `<legacy>.imported.<n>` after it.
fn numbered_imported_path(legacy: &Path, n: u32) -> PathBuf {
    let mut name = legacy.as_os_str().to_owned();
    name.push(".imported");
    if n > 0 {
        name.push(format!(".{n}"));
    }
    PathBuf::from(name)
}

/// How many numbered names are tried before the kept files are judged a runaway.
const MAX_KEPT_FILES: u32 = 10_000;

/// Whether an entry may be imported: what a registration would accept, and a bcrypt hash (the
/// only kind a login can check). Logs why not.
fn importable(id: &str, user: &StoredUser, legacy: &Path) -> bool {
    let why = if !ids::valid_id(id) {
        "the id is not one a registration accepts"
    } else if !ids::valid_display_name(user.name.trim()) {
        "the display name is not one a registration accepts"
    } else if super::cost_of(&user.password_hash).is_none() {
        "the password hash is not a bcrypt hash"
    } else {
        return true;
    };
    tracing::warn!(user_id = ?id, file = %legacy.display(), "not imported: {why}");
    false
}

/// Moves `legacy` to the first free kept name. A hard link never replaces an existing file
/// (`rename` would); where links are not supported, a rename to a name seen free is used.
/// `Ok(None)` when `legacy` is gone: another process moved it first.
fn keep(legacy: &Path) -> std::io::Result<Option<PathBuf>> {
    use std::io::ErrorKind;
    for n in 0..MAX_KEPT_FILES {
        let target = numbered_imported_path(legacy, n);
        match std::fs::hard_link(legacy, &target) {
            Ok(()) => {
                return match std::fs::remove_file(legacy) {
                    Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                    _ => Ok(Some(target)),
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(_) if target.symlink_metadata().is_ok() => continue,
            Err(_) => {
                return match std::fs::rename(legacy, &target) {
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                    Ok(()) => Ok(Some(target)),
                }
            }
        }
    }
    Err(std::io::Error::new(
        ErrorKind::AlreadyExists,
        "every name for the imported file is taken",
    ))
}

/// Imports `legacy` if it exists; returns how many users were added.
pub fn import(storage: &dyn UserStorage, legacy: &Path) -> Result<usize, UserError> {
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
    let mut entries: Vec<(String, StoredUser)> = file
        .users
        .into_iter()
        .filter(|(id, user)| importable(id, user, legacy))
        .collect();
    // Older versions compared ids case-sensitively: of `Alice` and `alice` the one registered
    // first (by the instant, whatever the offsets written) keeps the id; the other stays in the
    // kept file and is named in the log.
    entries.sort_by(|a, b| (a.1.created_at, &a.0).cmp(&(b.1.created_at, &b.0)));
    let users: Vec<NewUser> = entries
        .into_iter()
        .map(|(id, u)| NewUser {
            key: ids::canonical_id(&id),
            created_at: u
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            row: Row {
                id,
                name: u.name.trim().to_owned(),
                password_hash: u.password_hash,
            },
        })
        .collect();
    let total = users.len();
    let taken = storage.insert_all(users)?;
    for key in &taken {
        tracing::warn!(user_id = ?key, file = %legacy.display(), "not imported: the id is taken (ids are now compared without case)");
    }
    match keep(legacy) {
        Err(source) => {
            return Err(UserError::Io {
                path: legacy.to_owned(),
                source,
            })
        }
        // Another process imported it at the same time and moved it first.
        Ok(None) => {}
        Ok(Some(target)) => tracing::info!(
            from = %legacy.display(),
            to = %storage.path().map_or("the accounts engine".into(), |p| p.display().to_string()),
            kept_as = %target.display(),
            "imported the user file"
        ),
    }
    Ok(total - taken.len())
}
