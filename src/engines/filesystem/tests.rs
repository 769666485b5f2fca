//! Unit tests of the file store's internals: file names, the sweeper's judgement, temporary
//! folders, the write that an unmoved expiry saves, and junk (FIFOs, sockets, links, huge
//! files) in the folder, which is never waited on nor read whole.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

fn socket(path: &Path) {
    drop(std::os::unix::net::UnixListener::bind(path).expect("bind a socket file"));
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs `work` on a thread for at most 10 s. Past that, each of `fifos` is opened from both
/// ends without blocking, which wakes an `open()` stuck on it, and the test fails: a regression
/// fails instead of hanging.
fn bounded<T: Send + 'static>(
    what: &str,
    fifos: &[PathBuf],
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(done) => done,
        Err(_) => {
            use std::os::unix::fs::OpenOptionsExt;
            for fifo in fifos {
                let nonblocking = 0o4000;
                let _reader = File::options()
                    .read(true)
                    .custom_flags(nonblocking)
                    .open(fifo);
                let _writer = File::options()
                    .write(true)
                    .custom_flags(nonblocking)
                    .open(fifo);
            }
            panic!("{what} was still blocked after 10 s");
        }
    }
}

/// A FIFO, a link to a FIFO, a socket and a plain file in `.tmp/`, where only the processes'
/// folders belong: opening the store used to wait on the FIFO forever. They are moved aside
/// to `.corrupt/`, the link's target untouched, and a dead process's folder is still removed.
#[test]
fn junk_in_the_temporary_folder_is_moved_aside_at_open() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("sessions");
    let tmp = dir.join(".tmp");
    std::fs::create_dir_all(tmp.join("1-dead")).expect("mkdir");
    let outside = root.path().join("outside.fifo");
    mkfifo(&outside);
    mkfifo(&tmp.join("fifo"));
    std::os::unix::fs::symlink(&outside, tmp.join("link")).expect("symlink");
    socket(&tmp.join("socket"));
    std::fs::write(tmp.join("file"), b"x").expect("write");
    let opening = dir.clone();
    let s = bounded(
        "opening the store",
        &[tmp.join("fifo"), outside.clone()],
        move || store(&opening),
    );
    let own = s.inner.tmp_dir();
    let own = own.file_name().expect("name").to_string_lossy();
    assert_eq!(names(&tmp), [own.as_ref()]);
    let aside = names(&dir.join(".corrupt"));
    assert_eq!(aside.len(), 4, "{aside:?}");
    for name in ["fifo", "link", "socket", "file"] {
        assert!(
            aside.iter().any(|a| a.contains(name)),
            "{name} not in {aside:?}"
        );
    }
    assert!(outside.exists(), "a link's target is not touched");
}

/// A FIFO in `.locks/` stopped the sweeper (and `sessions gc`) in `open()`; a socket or a link
/// there stayed forever. They are moved aside, and the sweep goes on to its expired sessions.
#[test]
fn junk_in_the_locks_folder_is_moved_aside_and_the_sweep_goes_on() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("sessions");
    let s = store(&dir);
    let now = OffsetDateTime::now_utc();
    let short = SessionRecord::new(&state(&[("a", "1")]), now, now, &time::Duration::seconds(1))
        .expect("record");
    let gone = s.inner.save(&short).expect("save");
    let locks = dir.join(".locks");
    std::fs::create_dir_all(&locks).expect("mkdir");
    let outside = root.path().join("outside.fifo");
    mkfifo(&outside);
    let fifo = locks.join("aa".repeat(32));
    mkfifo(&fifo);
    socket(&locks.join("bb".repeat(32)));
    std::os::unix::fs::symlink(&outside, locks.join("cc".repeat(32))).expect("symlink");
    // A lock file of an ended session that nobody holds: removed, as always.
    std::fs::write(locks.join("dd".repeat(32)), b"").expect("write");
    let sweeping = s.clone();
    let report = bounded("the sweep", &[fifo, outside.clone()], move || {
        sweeping.inner.sweep(now + time::Duration::seconds(5))
    });
    assert_eq!(report.expired, 1, "{report:?}");
    assert!(!s.path_of(gone.as_ref()).exists());
    assert_eq!(names(&locks), Vec::<String>::new());
    assert_eq!(names(&dir.join(".corrupt")).len(), 3);
    assert_eq!(report.quarantined, 3, "{report:?}");
    assert!(outside.exists(), "a link's target is not touched");
}

/// A FIFO, a socket, a link and a 2 GiB sparse file named like sessions, whose time says they
/// have not ended: the sweep used to pass them by forever. It now moves them aside (reading
/// nothing of the large one), and the listing never showed them.
#[test]
fn junk_named_like_a_session_is_listed_never_and_moved_aside_by_the_sweep() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("sessions");
    let s = store(&dir);
    let then = OffsetDateTime::now_utc();
    let live = SessionRecord::new(&state(&[("a", "1")]), then, then, &time::Duration::hours(1))
        .expect("record");
    let key = s.inner.save(&live).expect("save");
    // A second ago: the junk made below is not due by its time at this instant.
    let now = then - time::Duration::seconds(1);
    let at = |byte: &str| dir.join(format!("{}.json", byte.repeat(32)));
    let outside = root.path().join("outside.fifo");
    mkfifo(&outside);
    mkfifo(&at("aa"));
    socket(&at("bb"));
    std::os::unix::fs::symlink(&outside, at("cc")).expect("symlink");
    let huge = File::create(at("dd")).expect("create");
    huge.set_len(2 << 30).expect("sparse 2 GiB");
    huge.set_modified(SystemTime::now() + Duration::from_secs(86_400))
        .expect("ends tomorrow");
    drop(huge);

    let mut listed = Vec::new();
    s.inner
        .list_each(|batch| {
            listed.extend(batch);
            true
        })
        .expect("list");
    let stems: Vec<&str> = listed.iter().map(|l| l.stem.as_str()).collect();
    assert_eq!(stems, [id::stem(&id::digest(key.as_ref()))]);
    let reading = s.clone();
    let inspected = bounded("inspect", &[at("aa"), outside.clone()], move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        ["aa", "dd"].map(|b| {
            let digest: [u8; 32] = hex::decode(b.repeat(32))
                .expect("hex")
                .try_into()
                .expect("32 bytes");
            rt.block_on(reading.inspect(&digest))
                .map_err(|e| e.to_string())
        })
    });
    assert!(
        matches!(&inspected[0], Err(e) if e.contains("FIFO")),
        "{:?}",
        inspected[0]
    );
    assert!(
        matches!(&inspected[1], Err(e) if e.contains("over the")),
        "{:?}",
        inspected[1]
    );
    assert!(at("aa").exists(), "inspecting moves nothing");

    let sweeping = s.clone();
    let report = bounded("the sweep", &[at("aa"), outside.clone()], move || {
        sweeping.inner.sweep(now)
    });
    assert_eq!(report.quarantined, 4, "{report:?}");
    for b in ["aa", "bb", "cc", "dd"] {
        assert!(std::fs::symlink_metadata(at(b)).is_err(), "{b} left");
    }
    assert!(s.path_of(key.as_ref()).exists(), "the live session stays");
    assert!(outside.exists(), "a link's target is not touched");
}
