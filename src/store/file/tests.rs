//! Unit tests of the file store's internals: file names, the sweeper's judgement, temporary
//! folders, and the write that an unmoved expiry saves.

use std::fs::File;
use std::path::Path;
use std::time::SystemTime;

use time::OffsetDateTime;

use super::sweep::parse_file_name;
use super::*;

fn store(dir: &Path) -> FileSessionStore {
    FileSessionStore::open(FileStoreOptions::new(dir).cleanup_interval(None)).expect("open")
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
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
    let bad = dir.path().join(format!("{}.json", "ab".repeat(32)));
    std::fs::write(&bad, b"{ torn").expect("write");
    File::options()
        .write(true)
        .open(&bad)
        .and_then(|f| f.set_modified(SystemTime::UNIX_EPOCH))
        .expect("age it");
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
