//! The file store at its edges, from a hostile review: what sits at a session's path is not
//! always a session file, another process writes faster than the file system's clock ticks, and
//! every error path must leave no temporary file behind.

use std::time::{Duration, SystemTime};

use actix_session::storage::{SessionKey, SessionStore};
use session_server::engines::filesystem::CACHE_BYTES;
use session_server::engines::filesystem::{FileSessionStore, FileStoreOptions};
use session_server::store::{CachingStore, SessionState, Store};

fn state(visits: u64) -> SessionState {
    [("visits".to_owned(), visits.to_string())].into()
}

fn key(s: &str) -> SessionKey {
    SessionKey::try_from(s.to_owned()).expect("key")
}

fn open(dir: &std::path::Path) -> FileSessionStore {
    FileSessionStore::open(FileStoreOptions::new(dir)).expect("open")
}

fn tmp_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join(".tmp"))
        .expect("ls")
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|f| f.path())
        .collect()
}

/// A FIFO at a session's path (a person's mistake) used to block the I/O thread in `open`
/// forever, and every session behind it. It is now moved aside, and the store goes on.
#[actix_web::test]
async fn a_fifo_at_a_session_path_is_moved_aside_not_waited_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let ttl = time::Duration::seconds(600);
    let other = store.save(state(1), &ttl).await.expect("save");
    let victim = session_server::store::id::generate().expect("id");
    let fifo = store.path_of(victim.as_ref());
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let loaded = tokio::time::timeout(Duration::from_secs(5), store.load(&victim)).await;
    let updated = tokio::time::timeout(
        Duration::from_secs(5),
        store.update(key(other.as_ref()), state(2), &ttl),
    )
    .await;
    // Unblocks a thread stuck in open(), should there be one, so that the test ends either way.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags_nonblocking()
        .open(&fifo);
    assert!(
        matches!(loaded, Ok(Ok(None))),
        "the FIFO's load: {loaded:?}"
    );
    assert!(matches!(&updated, Ok(Ok(k)) if k.as_ref() == other.as_ref()));
    assert!(!fifo.exists(), "moved aside");
    assert_eq!(
        std::fs::read_dir(dir.path().join(".corrupt"))
            .expect("ls")
            .count(),
        1
    );
}

trait NonBlocking {
    fn custom_flags_nonblocking(&mut self) -> &mut Self;
}

impl NonBlocking for std::fs::OpenOptions {
    fn custom_flags_nonblocking(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, 0o4000)
    }
}

/// Another process writes a session twice at once, both versions the same size (ext4 hands the
/// freed inode number straight back): the read cache of this process must still see the last.
#[actix_web::test]
async fn two_quick_writes_by_another_process_are_never_read_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Store::new(CachingStore::new(open(dir.path()), CACHE_BYTES));
    let b = Store::new(CachingStore::new(open(dir.path()), CACHE_BYTES));
    let ttl = time::Duration::seconds(600);
    for _ in 0..300 {
        let k = a.save(state(10), &ttl).await.expect("save");
        assert_eq!(a.load(&k).await.expect("load"), Some(state(10)));
        for visits in [11, 12] {
            b.update(key(k.as_ref()), state(visits), &ttl)
                .await
                .expect("update");
        }
        assert_eq!(a.load(&k).await.expect("load"), Some(state(12)));
    }
}

/// Writes, logouts, refused writes and sweeps (expired files, and live files whose time says
/// due) leave nothing in this process's temporary folder.
#[actix_web::test]
async fn no_temporary_file_outlives_its_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = session_server::store::Clock::adjustable();
    let store = FileSessionStore::open(
        FileStoreOptions::new(dir.path())
            .max_session_bytes(512)
            .clock(clock.clone()),
    )
    .expect("open");
    let (short, long) = (time::Duration::seconds(1), time::Duration::seconds(600));
    let big: SessionState = [("k".to_owned(), format!("\"{}\"", "x".repeat(600)))].into();
    let mut keys = Vec::new();
    for i in 0..50 {
        let k = store.save(state(i), &short).await.expect("save");
        let k = store
            .update(key(k.as_ref()), state(i + 1), &short)
            .await
            .expect("update");
        assert!(store
            .update(key(k.as_ref()), big.clone(), &short)
            .await
            .is_err());
        keys.push(k);
    }
    for k in keys.iter().take(25) {
        store
            .update(key(k.as_ref()), state(0), &long)
            .await
            .expect("update");
        std::fs::File::options()
            .write(true)
            .open(store.path_of(k.as_ref()))
            .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(60)))
            .expect("touch into the past");
    }
    for k in keys.iter().skip(40) {
        store.delete(k).await.expect("logout");
    }
    clock
        .advance(Duration::from_millis(2100))
        .expect("adjustable");
    let st = store.clone();
    let report = std::thread::spawn(move || st.sweep())
        .join()
        .expect("sweep");
    assert_eq!(report.expired, 15, "{report:?}");
    assert_eq!(tmp_files(dir.path()), Vec::<std::path::PathBuf>::new());
    for k in keys.iter().take(25) {
        assert_eq!(store.load(k).await.expect("load"), Some(state(0)), "kept");
    }
}
