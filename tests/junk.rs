//! Junk in the session folder, as the built binary meets it (issue 18, item 8): a FIFO, a
//! socket, a link to a FIFO, a 2 GiB sparse file. The server still starts, and `sessions list |
//! stats | show | gc` finish; each says on stderr what it skipped (the read-only commands) or
//! moved to `.corrupt/` (start-up, `gc`). Every run has a deadline and a data-size limit, so a
//! regression (an open that waits on a FIFO, a read of the whole 2 GiB) fails, never hangs.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use actix_session::storage::SessionStore;
use common::{server_config, ServerProcess, BIN};
use session_server::engines::filesystem::{FileSessionStore, FileStoreOptions};
use session_server::store::SessionState;

/// How long one command may take on a busy machine before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(30);

/// The sparse file's size: costs no disk, and far over any session size limit.
const HUGE: u64 = 2 << 30;

/// A deployment's folder, its config (the sweeper set to once a day, so only what is tested
/// moves anything), and its session folder with `.tmp/` and `.locks/` made.
struct Folder {
    dir: tempfile::TempDir,
    config: PathBuf,
    addr: std::net::SocketAddr,
    sessions: PathBuf,
}

impl Folder {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, addr) = server_config(
            dir.path(),
            "type = \"filesystem\"",
            "cleanup_interval = \"1d\"",
        );
        let sessions = dir.path().join("sessions");
        for sub in [".tmp", ".locks"] {
            std::fs::create_dir_all(sessions.join(sub)).expect("mkdir");
        }
        Self {
            dir,
            config,
            addr,
            sessions,
        }
    }

    /// Where a session with this stem (a byte, repeated) would be stored.
    fn session_path(&self, byte: &str) -> PathBuf {
        self.sessions.join(format!("{}.json", byte.repeat(32)))
    }

    /// A FIFO outside the session folder, for links to point at.
    fn outside_fifo(&self) -> PathBuf {
        let path = self.dir.path().join("outside.fifo");
        if !path.exists() {
            fifo(&path);
        }
        path
    }

    /// Runs `session-server --config <config> args...`, bounded (see [`bounded`]).
    fn cli(&self, args: &[&str]) -> Output {
        bounded(&self.config, args)
    }

    fn corrupt(&self) -> Vec<String> {
        names(&self.sessions.join(".corrupt"))
    }
}

fn fifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

fn socket(path: &Path) {
    drop(std::os::unix::net::UnixListener::bind(path).expect("bind a socket file"));
}

/// A 2 GiB file of nothing (sparse) whose modification time (a session's expiry) is a day
/// ahead, so that no sweep takes it for expired.
fn huge(path: &Path) {
    let file = std::fs::File::create(path).expect("create");
    file.set_len(HUGE).expect("sparse length");
    file.set_modified(SystemTime::now() + Duration::from_secs(86_400))
        .expect("a future expiry");
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether anything (a dangling link too) is at `path`.
fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Runs the binary with `args` under [`DEADLINE`], killing it past that, and with its data
/// (heap) limited to 1 GiB, so that reading the 2 GiB file whole fails rather than passes
/// slowly.
fn bounded(config: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -d 1048576 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the cli");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout");
    let stderr = stderr.join().expect("stderr");
    let Some(status) = status else {
        panic!(
            "`{}` still running after {DEADLINE:?}: killed\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A FIFO in `.tmp/` used to hold the server's start in `open()` forever, without a log line;
/// a link to a FIFO there did the same. Now they and a socket are moved aside, each with a
/// warning, and the server serves.
#[test]
fn the_server_starts_past_junk_in_the_temporary_folder() {
    let f = Folder::new();
    let tmp = f.sessions.join(".tmp");
    fifo(&tmp.join("a-fifo"));
    socket(&tmp.join("a-socket"));
    std::os::unix::fs::symlink(f.outside_fifo(), tmp.join("a-link")).expect("symlink");
    // Bounded: `start` gives up (and kills the server) when /healthz does not answer in 20 s.
    let server = ServerProcess::start(&f.config, f.addr);
    let log = server.log();
    for name in ["a-fifo", "a-socket", "a-link"] {
        assert!(!present(&tmp.join(name)), "{name} left in .tmp: {log}");
        assert!(
            log.lines().any(|l| l.contains("WARN") && l.contains(name)),
            "no warning names {name}: {log}"
        );
    }
    assert_eq!(names(&tmp).len(), 1, "only the server's own folder");
    assert_eq!(f.corrupt().len(), 3, "{:?}", f.corrupt());
    assert!(present(&f.outside_fifo()), "a link's target is not touched");
}

/// `list` waited forever on a FIFO named like a session, and `list`/`stats` read a 2 GiB file
/// whole. The read-only commands now skip such files, saying so, and leave them in place.
#[actix_web::test]
async fn list_stats_and_show_skip_junk_session_files_and_leave_them_in_place() {
    let f = Folder::new();
    let store = FileSessionStore::open(FileStoreOptions::new(&f.sessions)).expect("open");
    let state: SessionState = [("visits".to_owned(), "1".to_owned())].into();
    let kept = store
        .save(state, &time::Duration::seconds(600))
        .await
        .expect("save");
    let kept = session_server::store::id::stem(&session_server::store::id::digest(kept.as_ref()));
    drop(store);
    let junk = [
        ("aa", "FIFO"),
        ("bb", "socket"),
        ("cc", "link"),
        ("dd", "over the"),
    ];
    fifo(&f.session_path("aa"));
    socket(&f.session_path("bb"));
    std::os::unix::fs::symlink(f.outside_fifo(), f.session_path("cc")).expect("symlink");
    huge(&f.session_path("dd"));

    let out = f.cli(&["sessions", "list", "--expired", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let hashes: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["hash"].as_str())
        .collect();
    assert_eq!(hashes, [kept.as_str()], "{}", text(&out));
    for (byte, what) in junk {
        let stem = byte.repeat(32);
        assert!(
            stderr(&out)
                .lines()
                .any(|l| l.contains(&stem) && l.contains(what)),
            "list says nothing of {what} {stem}: {}",
            text(&out)
        );
    }

    let out = f.cli(&["sessions", "stats", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(stats["live"], 1, "{stats}");
    assert_eq!(stats["expired"], 0, "{stats}");
    assert!(stats["bytes"].as_u64().expect("bytes") < 65_536, "{stats}");
    assert!(stderr(&out).contains(&"dd".repeat(32)), "{}", text(&out));

    for (byte, what) in junk {
        let out = f.cli(&["sessions", "show", &byte.repeat(32)]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(stderr(&out).contains(what), "show {byte}: {}", text(&out));
    }
    for (byte, _) in junk {
        assert!(
            present(&f.session_path(byte)),
            "{byte}: read-only, left in place"
        );
    }
    assert!(f.corrupt().is_empty(), "{:?}", f.corrupt());
}

/// `gc` waited forever on a FIFO in `.locks/` (and any command on one in `.tmp/`); a file
/// named like a session whose time is ahead was never looked at, however large. `gc` now moves
/// all of them aside, saying so, and finishes.
#[test]
fn gc_moves_junk_aside_and_finishes() {
    let f = Folder::new();
    let moved = [
        f.sessions.join(".tmp/a-fifo"),
        f.sessions.join(".locks").join("ee".repeat(32)),
        f.sessions.join(".locks").join("ff".repeat(32)),
        f.session_path("aa"),
        f.session_path("dd"),
    ];
    fifo(&moved[0]);
    fifo(&moved[1]);
    socket(&moved[2]);
    fifo(&moved[3]);
    huge(&moved[4]);
    // A FIFO made now has a modification time (an expiry) of now: push it a day ahead, so that
    // only being junk can make the sweep look at it.
    let ahead = SystemTime::now() + Duration::from_secs(86_400);
    let touched = Command::new("touch")
        .arg("-m")
        .arg("-d")
        .arg(format!(
            "@{}",
            ahead
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
        ))
        .arg(&moved[3])
        .status()
        .expect("touch");
    assert!(touched.success());

    let out = f.cli(&["sessions", "gc"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("deleted 0 "),
        "{}",
        text(&out)
    );
    for path in &moved {
        assert!(!present(path), "{} left in place", path.display());
        let name = path.file_name().expect("name").to_string_lossy();
        assert!(
            stderr(&out).lines().any(|l| l.contains(name.as_ref())),
            "gc says nothing of {name}: {}",
            text(&out)
        );
    }
    assert_eq!(f.corrupt().len(), moved.len(), "{:?}", f.corrupt());
}
