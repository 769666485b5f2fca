//! Unit tests of the file store's internals: file names, the sweeper's judgement, temporary
//! folders, the write that an unmoved expiry saves, and junk (FIFOs, sockets, links, huge
//! files) in the folder, which is never waited on nor read whole.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use time::OffsetDateTime;

use super::sweep::parse_file_name;
use super::*;

fn store(dir: &Path) -> FileSessionStore {
    FileSessionStore::open(FileStoreOptions::new(dir)).expect("open")
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A torn session file named after the digest `pair` repeated, its time in 1970 (due).
fn torn_file(dir: &Path, pair: &str) -> PathBuf {
    let bad = dir.join(format!("{}.json", pair.repeat(32)));
    std::fs::write(&bad, b"{ torn").expect("write");
    File::options()
        .write(true)
        .open(&bad)
        .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH))
        .expect("age it");
    bad
}

fn inode(p: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).expect("stat"))
}

#[test]
fn file_names_round_trip() {
    let d = id::digest("x");
    assert_eq!(
        parse_file_name(&format!("{}.json", hex::encode(d))),
        Some(d)
    );
    assert_eq!(parse_file_name("notes.json"), None);
    assert_eq!(parse_file_name(&format!("{}.json", "G".repeat(64))), None);
    assert_eq!(
        parse_file_name(&format!("{}.json", hex::encode_upper(d))),
        None
    );
}

/// What is set aside ages by the system's time, as its name says it was moved: a sweep judging
/// sessions by a clock moved days ahead (a test's) deletes none of it early.
#[test]
fn set_aside_files_age_by_the_system_time_whatever_the_sessions_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path());
    torn_file(dir.path(), "cd");
    let ahead = OffsetDateTime::now_utc() + time::Duration::days(QUARANTINE_DAYS as i64 + 1);
    assert_eq!(s.inner.sweep(ahead).quarantined, 1);
    s.inner.sweep(ahead);
    let aside = std::fs::read_dir(dir.path().join(".corrupt")).map_or(0, Iterator::count);
    assert_eq!(aside, 1, "kept for {QUARANTINE_DAYS} days of real time");
}

#[test]
fn expired_files_are_swept_by_their_content_and_corrupt_ones_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path());
    let now = OffsetDateTime::now_utc();
    let short = SessionRecord::new(&state(&[("a", "1")]), now, now, &time::Duration::seconds(1))
        .expect("record");
    let long = SessionRecord::new(&state(&[("a", "2")]), now, now, &time::Duration::hours(1))
        .expect("record");
    let gone = s.inner.save(&short).expect("save");
    let kept = s.inner.save(&long).expect("save");
    let bad = torn_file(dir.path(), "ab");
    let report = s.inner.sweep(now + time::Duration::seconds(5));
    assert_eq!(report.expired, 1);
    assert_eq!(report.quarantined, 1);
    assert!(!s.path_of(gone.as_ref()).exists());
    assert!(s.path_of(kept.as_ref()).exists());
    assert!(!bad.exists());
    let corrupt: Vec<_> = std::fs::read_dir(dir.path().join(".corrupt"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(corrupt.len(), 1);
    assert!(corrupt[0].starts_with(&"ab".repeat(32)), "{corrupt:?}");
    assert_eq!(
        std::fs::read_dir(s.inner.tmp_dir()).expect("ls").count(),
        0,
        "nothing left in the temporary folder"
    );
}

/// The sweep trusts a time the store wrote and reads no such file: an expired session whose
/// content was garbled in place (its time put back) is deleted, not read and moved aside.
#[test]
fn a_file_the_store_timed_is_swept_by_its_time_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path());
    let now = OffsetDateTime::now_utc();
    let short = SessionRecord::new(&state(&[("a", "1")]), now, now, &time::Duration::seconds(1))
        .expect("record");
    let key = s.inner.save(&short).expect("save");
    let path = s.path_of(key.as_ref());
    let written = std::fs::metadata(&path).expect("stat").modified().expect("mtime");
    assert!(version::written_as_expiry(written), "the store marks its times");
    let garbled = File::options().write(true).open(&path).expect("open");
    std::io::Write::write_all(&mut &garbled, b"{ torn").expect("garble");
    garbled.set_modified(written).expect("time put back");
    drop(garbled);
    let report = s.inner.sweep(now + time::Duration::seconds(5));
    assert_eq!((report.expired, report.quarantined), (1, 0), "{report:?}");
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join(".corrupt")).map_or(0, Iterator::count),
        0,
        "nothing was read, so nothing moved aside"
    );
}

#[test]
fn a_file_due_by_its_time_but_live_by_its_content_stays_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path());
    let now = OffsetDateTime::now_utc();
    let live = SessionRecord::new(&state(&[("a", "1")]), now, now, &time::Duration::hours(1))
        .expect("record");
    let key = s.inner.save(&live).expect("save");
    let path = s.path_of(key.as_ref());
    File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH))
        .expect("make it look due");
    let changed = |p: &Path| {
        let m = std::fs::metadata(p).expect("stat");
        use std::os::unix::fs::MetadataExt;
        (m.ctime(), m.ctime_nsec())
    };
    let before = changed(&path);
    let report = s.inner.sweep(now);
    assert_eq!(report.expired, 0);
    // A rename would change the change time: the file was never moved, so never absent.
    assert_eq!(changed(&path), before);
    let text = std::fs::read_to_string(&path).expect("still in place");
    assert!(text.contains("\"a\": 1"), "{text}");
}

#[test]
fn dead_processes_temp_folders_are_removed_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stale = dir.path().join(".tmp/1-dead");
    std::fs::create_dir_all(&stale).expect("mkdir");
    std::fs::write(stale.join("7"), b"half").expect("write");
    let s = store(dir.path());
    assert!(!stale.exists());
    // A live store's folder survives another store opening the same folder.
    let _other = store(dir.path());
    assert!(s.inner.tmp_dir().exists());
}

#[test]
fn unchanged_expiry_costs_no_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path());
    let now = OffsetDateTime::now_utc();
    let ttl = time::Duration::hours(1);
    let key = s
        .inner
        .save(&SessionRecord::new(&state(&[("a", "1")]), now, now, &ttl).expect("r"))
        .expect("save");
    let path = s.path_of(key.as_ref());
    let before = inode(&path);
    s.inner.update_ttl(&key, &ttl, now).expect("ttl");
    assert_eq!(inode(&path), before, "same second: no rewrite");
    s.inner
        .update_ttl(&key, &ttl, now + time::Duration::seconds(2))
        .expect("ttl");
    assert_ne!(inode(&path), before, "later second: rewritten");
}

#[test]
fn an_update_keeps_when_the_session_began_even_once_forgotten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path());
    let then = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let ttl = time::Duration::hours(3);
    let key = s
        .inner
        .save(&SessionRecord::new(&state(&[("a", "1")]), then, then, &ttl).expect("r"))
        .expect("save");
    let digest = id::digest(key.as_ref());
    s.inner.memo.forget(&digest);
    let now = OffsetDateTime::now_utc();
    let next = SessionRecord::new(&state(&[("a", "2")]), now, now, &ttl).expect("r");
    let same = s.inner.update(key, next, now).expect("update");
    let on_disk = s.inner.load(&same, now).expect("load").expect("live");
    assert_eq!(on_disk.created_at, whole(then));
}

fn whole(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).expect("valid")
}

mod junk;
