//! The key files `session-server secret` changes beside `secret_key_file` (see [`super::ring`]):
//! [`prepare`] makes `<file>.next`, [`rotate`] keeps the current key as `<file>.<N>` and puts the
//! prepared (or a new) key in its place, [`retire`] deletes kept keys.
//!
//! Every step is one atomic file operation, in an order that never loses a key: the current key
//! is kept under its number before the new key replaces it, so a server that starts at any moment
//! finds the old key either as the current one or as a kept one. The commands take a lock file
//! (`<file>.lock`) so that two of them never pick the same number; the wait for it is bounded by
//! [`LOCK_WAIT`]. Key files are written mode 0600 and fsynced with their folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ring::{kept_numbers, kept_path, prepared_path, EnvKeys};
use super::{checked, SecretError, MIN_LEN};
use crate::atomic::{self, Durability, Placed};

/// How long a `secret` command waits for another one to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// What [`rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Where the key that was current until now is kept.
    pub kept: PathBuf,
    /// Whether the new current key is the one `secret rotate --prepare` made (else a new one).
    pub from_prepared: bool,
}

/// Keeps the current key as the next numbered file and makes the prepared key (or a new random
/// one) current.
pub fn rotate(file: &Path, env: &EnvKeys) -> Result<Rotated, SecretError> {
    refuse_environment(env)?;
    let _lock = lock(file)?;
    let io_err = io_error(file);
    let current = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::NoKey {
                path: file.to_owned(),
            })
        }
        Err(e) => return Err(io_err(e)),
    };
    let prepared = prepared_path(file);
    let (new, from_prepared) = match std::fs::read(&prepared) {
        // A prepared key that is already the current one (copied from the instance that
        // rotated, or left by a rotation cut short) is no new key: a rotation after a leak
        // must change the key, so a new one is made.
        Ok(bytes) if bytes == current => (random_key(file)?, false),
        Ok(bytes) => {
            checked(bytes.clone(), prepared.display().to_string())?;
            (bytes, true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (random_key(file)?, false),
        Err(e) => return Err(io_error(&prepared)(e)),
    };
    let number = kept_numbers(file)?
        .first()
        .map_or(Some(1), |n| n.checked_add(1))
        .ok_or_else(|| io_err(std::io::Error::other("no free number for the kept key")))?;
    let kept = kept_path(file, number);
    write_key(&kept, &current)?;
    atomic::replace_synced(file, &new).map_err(io_error(file))?;
    match std::fs::remove_file(&prepared) {
        Ok(()) => atomic::sync_dir(atomic::folder_of(file)).map_err(io_error(file))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&prepared)(e)),
    }
    Ok(Rotated {
        kept,
        from_prepared,
    })
}

/// Makes `<file>.next`, a key every instance accepts before any signs with it. `Ok(false)`
/// when one is already prepared (it is kept: instances may already accept it).
pub fn prepare(file: &Path, env: &EnvKeys) -> Result<(PathBuf, bool), SecretError> {
    refuse_environment(env)?;
    let _lock = lock(file)?;
    if !file.exists() {
        return Err(SecretError::NoKey {
            path: file.to_owned(),
        });
    }
    let prepared = prepared_path(file);
    match (std::fs::read(&prepared), std::fs::read(file)) {
        // The current key left as `.next` (see [`rotate`]) is no next key: replaced.
        (Ok(next), Ok(current)) if next == current => {
            std::fs::remove_file(&prepared).map_err(io_error(&prepared))?;
        }
        (Ok(_), _) => return Ok((prepared, false)),
        _ => {}
    }
    write_key(&prepared, &random_key(file)?)?;
    Ok((prepared, true))
}

/// Deletes the kept keys but the newest `keep`; returns the deleted files. Cookies under those
/// keys are no longer accepted once the servers restart.
pub fn retire(file: &Path, env: &EnvKeys, keep: usize) -> Result<Vec<PathBuf>, SecretError> {
    refuse_environment(env)?;
    let _lock = lock(file)?;
    let mut removed = Vec::new();
    for number in kept_numbers(file)?.into_iter().skip(keep) {
        let path = kept_path(file, number);
        std::fs::remove_file(&path).map_err(io_error(&path))?;
        removed.push(path);
    }
    if !removed.is_empty() {
        atomic::sync_dir(atomic::folder_of(file)).map_err(io_error(file))?;
    }
    Ok(removed)
}

fn refuse_environment(env: &EnvKeys) -> Result<(), SecretError> {
    match env.key {
        Some(_) => Err(SecretError::FromEnvironment),
        None => Ok(()),
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io {
        path: path.to_owned(),
        source,
    }
}

fn random_key(file: &Path) -> Result<Vec<u8>, SecretError> {
    let mut bytes = vec![0u8; MIN_LEN];
    getrandom::fill(&mut bytes).map_err(|e| io_error(file)(std::io::Error::other(e)))?;
    Ok(bytes)
}

/// Writes a new key file at `path` (which must not exist): whole, mode 0600, fsynced.
fn write_key(path: &Path, bytes: &[u8]) -> Result<(), SecretError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    atomic::write_new(&tmp, bytes, None, Durability::Fsync).map_err(io_error(path))?;
    let placed = atomic::place_new(&tmp, path).map_err(io_error(path));
    let _ = std::fs::remove_file(&tmp);
    match placed? {
        Placed::Done => atomic::sync_dir(atomic::folder_of(path)).map_err(io_error(path)),
        _ => Err(io_error(path)(std::io::Error::from(
            std::io::ErrorKind::AlreadyExists,
        ))),
    }
}

/// The commands' lock, waited for at most [`LOCK_WAIT`].
fn lock(file: &Path) -> Result<std::fs::File, SecretError> {
    lock_within(file, LOCK_WAIT)
}

pub(super) fn lock_within(file: &Path, wait: Duration) -> Result<std::fs::File, SecretError> {
    let mut path = file.as_os_str().to_owned();
    path.push(".lock");
    let path = PathBuf::from(path);
    let started = Instant::now();
    loop {
        if let Some(held) = atomic::try_lock_exclusive(&path).map_err(io_error(&path))? {
            return Ok(held);
        }
        if started.elapsed() >= wait {
            return Err(SecretError::Busy { path, waited: wait });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
