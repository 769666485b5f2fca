//! Debian's PostgreSQL 15 for tests: a throw-away cluster on a free loopback port and a socket
//! folder of its own (trust authentication; fsync off, which loses nothing when only the server
//! is killed), run as the `postgres` user when the tests run as root (PostgreSQL refuses root).
//! `initdb` runs once per machine into a cached template that each server copies, so a start
//! costs about as much as the postmaster's own. The copy goes to `/dev/shm` when it is a tmpfs
//! with room to spare: on a disk, creating the template's thousand small files takes a second.
//!
//! The postmaster is stopped by the pid it wrote (`runuser` is only its launcher): SIGKILL on
//! [`PostgresServer::kill`], a fast shutdown on [`EngineHarness::stop`], an immediate shutdown
//! on drop. A pause stops the postmaster and every process of its cluster (found by their
//! working directory, the data folder), since the backends answer the connections.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{
    continue_processes, current_test, installed_or_skip, is_stopped, log_tail, spawn_logged,
    stop_processes, temp_dir, try_signal, EngineHarness, Program, Via, START_ATTEMPTS,
    START_TIMEOUT,
};

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub const POSTGRES: Program = Program {
    name: "/usr/lib/postgresql/15/bin/postgres",
    package: "postgresql",
};

/// A PostgreSQL cluster of this test's own.
pub struct PostgresServer {
    dir: tempfile::TempDir,
    port: u16,
    pid: Option<i32>,
    /// `runuser`'s pid while it waits for the postmaster (as root); `None` otherwise.
    launcher: Option<u32>,
    /// What [`EngineHarness::session_table`] points at.
    via: Via,
    /// The processes [`EngineHarness::pause`] stopped, to be continued before any shutdown.
    paused: Vec<u32>,
    /// With `ssl = on`: the certificates (the server's is `server.pem`, for `localhost` and
    /// `127.0.0.1`).
    certs: Option<super::TestCerts>,
}

impl PostgresServer {
    /// Starts one for the current test (named from its thread), or skips (see `engines.rs`).
    pub fn start() -> Option<Self> {
        Self::start_for(&current_test())
    }

    pub fn start_for(test: &str) -> Option<Self> {
        Self::start_with(test, None)
    }

    /// One with `ssl = on`, its certificate signed by the CA of [`Self::certs`]; it still takes
    /// plain connections too.
    pub fn start_tls_for(test: &str) -> Option<Self> {
        Self::start_with(test, Some(super::TestCerts::new()))
    }

    fn start_with(test: &str, certs: Option<super::TestCerts>) -> Option<Self> {
        if !installed_or_skip(test, &[POSTGRES]) {
            return None;
        }
        let dir = data_parent();
        let data = dir.path().join("data");
        copy_dir(template(), &data);
        if let Some(certs) = &certs {
            // The server reads its key as its own user, and wants it mode 0600.
            let ssl = dir.path().join("ssl");
            std::fs::create_dir(&ssl).expect("ssl folder");
            for name in ["server.pem", "server.key", "ca.pem"] {
                std::fs::copy(certs.path(name), ssl.join(name)).expect("copy a certificate");
            }
        }
        give_to_postgres(dir.path());
        let mut server = Self {
            dir,
            port: 0,
            pid: None,
            launcher: None,
            via: Via::Tcp,
            paused: Vec::new(),
            certs,
        };
        for _ in 0..START_ATTEMPTS {
            server.port = super::super::free_port();
            if server.launch() {
                return Some(server);
            }
        }
        panic!(
            "postgres did not start on {START_ATTEMPTS} free ports; its log ends:\n{}",
            log_tail(&server.log_path())
        );
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `postgresql://postgres@localhost:PORT/postgres?sslmode=MODE&sslrootcert=<ca>`, the CA
    /// file `ca` of [`Self::certs`].
    pub fn tls_url(&self, mode: &str, ca: &str) -> String {
        format!(
            "postgresql://postgres@localhost:{}/postgres?sslmode={mode}&sslrootcert={}",
            self.port,
            self.certs().path(ca).display()
        )
    }

    /// The certificates of a server started with TLS; panics otherwise.
    pub fn certs(&self) -> &super::TestCerts {
        self.certs.as_ref().expect("a TLS server")
    }

    /// The same database through the unix socket in the server's own folder.
    pub fn unix_url(&self) -> String {
        format!(
            "postgresql:///postgres?host={}&port={}&user=postgres",
            self.dir.path().display(),
            self.port
        )
    }

    /// The postmaster's pid; `None` after [`kill`](Self::kill).
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// SIGKILL to the postmaster, then waits until it and its backends are gone.
    pub fn kill(&mut self) {
        self.shut_down("KILL");
    }

    /// Continues what a pause stopped, sends `sig` to the postmaster and waits until it and its
    /// backends are gone.
    fn shut_down(&mut self, sig: &str) {
        self.continue_paused();
        let launcher = self.launcher.take();
        if let Some(pid) = self.pid.take() {
            signal(pid, sig);
            wait_gone(pid);
            // Reaped by its thread once the postmaster has ended.
            if let Some(launcher) = launcher.and_then(|pid| i32::try_from(pid).ok()) {
                wait_gone(launcher);
            }
            // Its backends notice the postmaster's death and exit; a new postmaster refuses
            // to start while they hold the shared memory.
            let deadline = Instant::now() + START_TIMEOUT;
            while backends_alive(self.dir.path()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// SIGCONT to what a pause stopped; never a panic, since a drop calls it.
    fn continue_paused(&mut self) {
        let paused = std::mem::take(&mut self.paused);
        try_signal(&paused, "CONT");
    }

    /// Kills it if it runs, then starts it again on the same port, socket and data (crash
    /// recovery included) and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.launch() {
            assert!(
                Instant::now() < deadline,
                "postgres could not restart on port {}; its log ends:\n{}",
                self.port,
                log_tail(&self.log_path())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `sql` through `psql` on the socket; its output, or a panic with psql's error.
    pub fn psql(&self, sql: &str) -> String {
        let out = as_postgres(&format!("{BIN}/psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Starts the postmaster on `self.port`; false when it exited first (the port was taken).
    fn launch(&mut self) -> bool {
        let dir = self.dir.path();
        let _ = std::fs::remove_file(dir.join("data/postmaster.pid"));
        let mut command = as_postgres(&format!("{BIN}/postgres"));
        command
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"]);
        if self.certs.is_some() {
            let ssl = dir.join("ssl");
            command
                .args(["-c", "ssl=on"])
                .arg("-c")
                .arg(format!(
                    "ssl_cert_file={}",
                    ssl.join("server.pem").display()
                ))
                .arg("-c")
                .arg(format!("ssl_key_file={}", ssl.join("server.key").display()))
                .arg("-c")
                .arg(format!("ssl_ca_file={}", ssl.join("ca.pem").display()));
        }
        let mut launcher = spawn_logged(command, &self.log_path());
        let launcher_pid = launcher.id();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if launcher.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Some(pid) = self.ready_pid() {
                self.pid = Some(pid);
                self.launcher = u32::try_from(pid)
                    .is_ok_and(|pid| pid != launcher_pid)
                    .then_some(launcher_pid);
                // The launcher waits for the postmaster; it is reaped by a thread, not left a
                // zombie, when the postmaster ends.
                std::thread::spawn(move || {
                    let _ = launcher.wait();
                });
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not answer within {START_TIMEOUT:?}; its log ends:\n{}",
                log_tail(&self.log_path())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The postmaster's pid once it accepts connections on its socket.
    fn ready_pid(&self) -> Option<i32> {
        let pid_file = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).ok()?;
        let mut lines = pid_file.lines();
        let pid: i32 = lines.next()?.trim().parse().ok()?;
        // Line 8 is the status: "ready" once it accepts connections.
        (pid_file.lines().nth(7)?.trim() == "ready").then_some(pid)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.continue_paused();
        if let Some(pid) = self.pid.take() {
            // SIGQUIT: immediate shutdown, nothing to keep.
            signal(pid, "QUIT");
            wait_gone(pid);
        }
    }
}

impl EngineHarness for PostgresServer {
    const TYPE: &'static str = "postgres";
    const KEEPS_DATA: bool = true;
    const HOLDS_ACCOUNTS: bool = true;

    fn start_via(test: &str, via: Via) -> Option<Self> {
        let mut server = Self::start_for(test)?;
        server.via = via;
        Some(server)
    }

    /// A fast shutdown (SIGINT): clients are told, the data is checkpointed.
    fn stop(&mut self) {
        self.shut_down("INT");
    }

    fn kill(&mut self) {
        PostgresServer::kill(self);
    }

    fn restart(&mut self) {
        PostgresServer::restart(self);
    }

    /// The postmaster first, so that it forks no backend meanwhile, then every process of the
    /// cluster (a fork inherits the data folder as its working directory).
    fn pause(&mut self) {
        let postmaster = u32::try_from(self.pid.expect("postgres runs")).expect("pid");
        stop_processes(&[postmaster]);
        self.paused.push(postmaster);
        // `runuser` answers its child's stop by stopping itself (job control), and would stay
        // stopped, never reaping the postmaster: once it has, it is continued with the rest.
        if let Some(launcher) = self.launcher {
            wait_stopped(launcher);
            self.paused.push(launcher);
        }
        let others: Vec<u32> = cluster_pids(self.dir.path())
            .into_iter()
            .filter(|&pid| pid != postmaster)
            .collect();
        stop_processes(&others);
        self.paused.extend(others);
    }

    fn resume(&mut self) {
        let paused = std::mem::take(&mut self.paused);
        continue_processes(&paused);
    }

    fn session_table(&self) -> String {
        let url = match self.via {
            Via::Tcp => self.url(),
            Via::Unix => self.unix_url(),
        };
        format!("url = \"{url}\"\n")
    }

    /// `runuser` (as root), the postmaster and every process of its cluster.
    fn pids(&self) -> Vec<u32> {
        if self.pid.is_none() {
            return Vec::new();
        }
        let mut pids: Vec<u32> = self.launcher.into_iter().collect();
        pids.extend(cluster_pids(self.dir.path()));
        pids
    }
}

/// `program` as the `postgres` user when this process is root, else as ourselves; run from the
/// temporary folder, which that user may enter (a checkout under `/root` is not).
fn as_postgres(program: &str) -> Command {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    };
    command.current_dir(std::env::temp_dir());
    command
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Makes `dir` (recursively) the `postgres` user's, when running as root.
fn give_to_postgres(dir: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .expect("run chown");
        assert!(status.success(), "chown {} to postgres", dir.display());
    }
}

/// A data folder made by `initdb` once per machine and test build of PostgreSQL, copied by every
/// server: `initdb` takes a second, a copy a few milliseconds.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let cached = std::env::temp_dir().join("session-server-pg15-template");
        if cached.join("PG_VERSION").exists() {
            return cached;
        }
        let build = temp_dir("pg-initdb-");
        give_to_postgres(build.path());
        let data = build.path().join("data");
        let out = as_postgres(&format!("{BIN}/initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Another test process may have made it meanwhile: either copy is good.
        if std::fs::rename(&data, &cached).is_err() {
            assert!(
                cached.join("PG_VERSION").exists(),
                "template at {}",
                cached.display()
            );
        }
        cached
    })
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "copy {} to {}",
        from.display(),
        to.display()
    );
}

fn signal(pid: i32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + START_TIMEOUT;
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Where a server's folder goes: under `/dev/shm` when it is a tmpfs with at least 1 GiB free
/// (nothing is kept, and a tmpfs creates files far faster than a disk), else the usual
/// temporary folder.
fn data_parent() -> tempfile::TempDir {
    const ROOM: u64 = 1 << 30;
    let shm = Path::new("/dev/shm");
    let tmpfs = std::fs::read_to_string("/proc/mounts").is_ok_and(|mounts| {
        mounts.lines().any(|mount| {
            let fields: Vec<&str> = mount.split(' ').collect();
            fields.get(1) == Some(&"/dev/shm") && fields.get(2) == Some(&"tmpfs")
        })
    });
    let roomy = tmpfs
        && rustix::fs::statvfs(shm).is_ok_and(|fs| fs.f_bavail.saturating_mul(fs.f_frsize) >= ROOM);
    if roomy {
        if let Ok(dir) = tempfile::Builder::new().prefix("pg-").tempdir_in(shm) {
            return dir;
        }
    }
    temp_dir("pg-")
}

/// Waits until `pid` is stopped: as [`EngineHarness::pause`] has it, but for a stop it did not
/// send.
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + START_TIMEOUT;
    while !is_stopped(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} did not stop within {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether a process of this cluster (a backend of a killed postmaster) still runs.
fn backends_alive(dir: &Path) -> bool {
    !cluster_pids(dir).is_empty()
}

/// The processes of the cluster in `dir`: found by their working directory, the data folder.
fn cluster_pids(dir: &Path) -> Vec<u32> {
    let data = dir.join("data");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == data))
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}
