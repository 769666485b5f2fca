//! Junk in the session folder (FIFOs, sockets, links, huge files): never waited on, never read
//! whole, moved aside.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;

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
