//! Real engine processes for tests: Debian's `redis-server`, standalone ([`RedisServer`]) and as
//! a 3-master Cluster ([`RedisCluster`]), PostgreSQL 15 ([`PostgresServer`]) and memcached
//! ([`MemcachedServer`]). Each instance lives on free loopback ports (and a unix
//! socket) in its own temporary folder, persists nothing, and is stopped by its pid: on `kill`,
//! and when dropped. Never the system's service, never another process.
//!
//! When an engine is not installed, `start` prints one `SKIPPED <test>: ...` line to the real
//! stderr (past libtest's capture, so plain `cargo test` shows it) and returns `None`; with
//! `SESSION_SERVER_REQUIRE_ENGINES=1` (what `scripts/test` and CI set) it panics instead, so
//! that a missing engine can never pass as a silent skip.
//!
//! [`EngineHarness`] is what the three standalone engines have in common for the fault suite
//! (`common::faults`): start, stop, kill, pause, resume, and the config lines that point the
//! server at the engine.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod cluster;
mod memcached;
mod postgres;
mod sentinel;
mod tls;
pub use cluster::RedisCluster;
pub use memcached::MemcachedServer;
pub use postgres::PostgresServer;
pub use sentinel::RedisSentinels;
pub use tls::TestCerts;

/// Set to `1` to turn every skip for a missing engine into a failure.
pub const REQUIRE_ENGINES: &str = "SESSION_SERVER_REQUIRE_ENGINES";

/// How long an engine may take to answer after it is started: it normally answers within
/// milliseconds; this only bounds a broken start on a machine busy compiling.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Fresh ports to try when a start fails, for the race between finding a free port and the
/// engine binding it.
const START_ATTEMPTS: usize = 5;

/// A program a test needs, and the Debian package that installs it.
pub struct Program {
    pub name: &'static str,
    pub package: &'static str,
}

pub const REDIS_SERVER: Program = Program {
    name: "redis-server",
    package: "redis-server",
};

/// Whether every program is on `PATH`. If not: one `SKIPPED` line naming `test` and `false`, or
/// a panic when [`REQUIRE_ENGINES`] is `1`.
pub fn installed_or_skip(test: &str, programs: &[Program]) -> bool {
    let missing: Vec<&Program> = programs.iter().filter(|p| !on_path(p.name)).collect();
    if missing.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    let mut packages: Vec<&str> = missing.iter().map(|p| p.package).collect();
    packages.dedup();
    let verb = if missing.len() == 1 { "is" } else { "are" };
    let reason = format!(
        "{} {verb} not installed (apt-get install -y {})",
        names.join(", "),
        packages.join(" ")
    );
    if std::env::var_os(REQUIRE_ENGINES).is_some_and(|v| v == "1") {
        panic!("{test}: {reason}, and {REQUIRE_ENGINES}=1 forbids skipping");
    }
    // Straight to file descriptor 2: libtest captures `eprintln!` and shows it only for failures.
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {reason}");
    false
}

/// The running test's name: libtest names each test's thread after it.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned()
}

/// Whether `program` (a name on `PATH`, or an absolute path) can be run.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.starts_with('/') {
        return runnable(Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| runnable(&dir.join(program))))
}

/// How the server under test reaches an engine: its loopback TCP port, or its unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Tcp,
    Unix,
}

/// An engine process a fault scenario can start, stop, kill, pause and resume, and the config
/// lines that point the server at it. Every method acts on this instance's own processes, by
/// their pids, and waits (with a deadline) until the change has happened.
pub trait EngineHarness: Sized {
    /// The `[session] type`, and the name of its `[session.<type>]` table.
    const TYPE: &'static str;
    /// Whether what the engine acknowledged (sessions, and accounts if it holds them) is still
    /// there after a kill and restart: PostgreSQL's data folder; a Redis without persistence and
    /// memcached come back empty.
    const KEEPS_DATA: bool;
    /// Whether the accounts and the login throttle live in the engine too (the session type's
    /// default `[auth] users`); else they are in SQLite beside the server.
    const HOLDS_ACCOUNTS: bool;

    /// Starts one for `test` (the name the skip line prints), reachable `via`, and waits until it
    /// answers; `None` after the skip line (see the module docs).
    fn start_via(test: &str, via: Via) -> Option<Self>;

    /// An orderly shutdown (what a service manager sends), then waits until it has exited.
    fn stop(&mut self);

    /// SIGKILL, then waits until it (and any process of its own) has exited.
    fn kill(&mut self);

    /// Stops it if it runs, starts it again on the same address and waits until it answers.
    fn restart(&mut self);

    /// SIGSTOP to every process of the engine: connections stay open, nothing answers.
    fn pause(&mut self);

    /// SIGCONT to what [`pause`](Self::pause) stopped.
    fn resume(&mut self);

    /// The lines of its `[session.<type>]` table that point the server at it (its address
    /// `via` what it was started with).
    fn session_table(&self) -> String;

    /// The pids of its processes now (none while it is stopped or killed): what the signals
    /// above go to.
    fn pids(&self) -> Vec<u32>;
}

/// SIGSTOP to `pids`, then waits until each is stopped (or gone: a process may end meanwhile).
pub fn stop_processes(pids: &[u32]) {
    try_signal(pids, "STOP");
    wait_for_state(pids, "stopped", |pid| is_stopped(pid) || !exists(pid));
}

/// SIGCONT to `pids`, then waits until none of them is stopped.
pub fn continue_processes(pids: &[u32]) {
    try_signal(pids, "CONT");
    wait_for_state(pids, "continued", |pid| !is_stopped(pid));
}

fn wait_for_state(pids: &[u32], what: &str, reached: impl Fn(u32) -> bool) {
    let deadline = Instant::now() + START_TIMEOUT;
    while !pids.iter().all(|&pid| reached(pid)) {
        assert!(
            Instant::now() < deadline,
            "processes {pids:?} not {what} within {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `pid` is stopped (state `T` in `/proc/<pid>/stat`).
pub fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('T'))
    })
}

/// Sends `sig` (`STOP`, `CONT`, `TERM`, ...) to exactly `pids`; panics unless each got it.
pub fn signal(pids: &[u32], sig: &str) {
    assert!(try_signal(pids, sig), "kill -{sig} {pids:?}");
}

/// Sends `sig` to exactly `pids`; whether each got it (false when one has gone meanwhile).
pub fn try_signal(pids: &[u32], sig: &str) -> bool {
    if pids.is_empty() {
        return true;
    }
    Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A standalone `redis-server` on a free loopback port and a unix socket in its own folder.
pub struct RedisServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// What [`EngineHarness::session_table`] points at.
    via: Via,
    /// With TLS: its port (beside the plain one, which the tests' own queries use), the
    /// certificates, the server's named `<cert>.pem`, and whether a client must show one.
    tls: Option<Tls>,
}

struct Tls {
    port: u16,
    certs: TestCerts,
    cert: &'static str,
    require_client: bool,
}

impl RedisServer {
    /// Starts one for the current test (named from its thread), or skips: see the module docs.
    pub fn start() -> Option<Self> {
        Self::start_for(&current_test())
    }

    /// Starts one for `test` (the name the skip line prints), or skips: see the module docs.
    pub fn start_for(test: &str) -> Option<Self> {
        if !installed_or_skip(test, &[REDIS_SERVER]) {
            return None;
        }
        Some(Self::launch_new(None))
    }

    /// One that also listens with TLS, its certificate `cert` (`"server"`: for `localhost` and
    /// `127.0.0.1`; `"elsewhere"`: for another host) signed by the CA of [`Self::certs`]; it asks
    /// clients for a certificate but does not require one.
    pub fn start_tls_for(test: &str, cert: &'static str) -> Option<Self> {
        Self::start_tls(test, cert, false)
    }

    /// As [`Self::start_tls_for`], refusing a client without a certificate (mutual TLS).
    pub fn start_mutual_tls_for(test: &str) -> Option<Self> {
        Self::start_tls(test, "server", true)
    }

    fn start_tls(test: &str, cert: &'static str, require_client: bool) -> Option<Self> {
        if !installed_or_skip(test, &[REDIS_SERVER]) {
            return None;
        }
        Some(Self::launch_new(Some(Tls {
            port: 0,
            certs: TestCerts::new(),
            cert,
            require_client,
        })))
    }

    fn launch_new(tls: Option<Tls>) -> Self {
        let dir = temp_dir("redis-");
        let mut server = Self {
            dir,
            port: 0,
            child: None,
            via: Via::Tcp,
            tls,
        };
        for _ in 0..START_ATTEMPTS {
            server.port = super::free_port();
            if let Some(tls) = &mut server.tls {
                tls.port = super::free_port();
            }
            if server.launch().is_ok() {
                return server;
            }
        }
        panic!(
            "redis-server did not start on {START_ATTEMPTS} free ports; its log ends:\n{}",
            log_tail(&server.log_path())
        );
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://localhost:TLS_PORT`; panics without TLS.
    pub fn tls_url(&self) -> String {
        format!("rediss://localhost:{}", self.tls_port())
    }

    pub fn tls_port(&self) -> u16 {
        self.tls.as_ref().map(|t| t.port).expect("a TLS server")
    }

    /// The certificates of a TLS server; panics without TLS.
    pub fn certs(&self) -> &TestCerts {
        self.tls.as_ref().map(|t| &t.certs).expect("a TLS server")
    }

    /// `unix:///.../redis.sock`, the form the server's `url` setting and the redis crate take.
    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.socket_path().display())
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running process's pid; `None` after [`kill`](Self::kill).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The engine's own log (stdout and stderr), across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGKILL, then waits for the process to exit. Does nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child);
        }
    }

    /// Kills it if it runs, then starts it again on the same port and socket (with an empty
    /// database: nothing is persisted) and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        // The port is ours in practice, but another test may have taken it in between: keep
        // trying for a while rather than moving, since the server under test knows this port.
        while self.launch().is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server could not restart on port {}; its log ends:\n{}",
                self.port,
                log_tail(&self.log_path())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where [`log`](Self::log) reads from: for a thread that must watch it while another
    /// holds the server.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Starts the process on `self.port` and waits until it answers on both addresses;
    /// `Err` when it exited first (the port was taken).
    fn launch(&mut self) -> Result<(), Exited> {
        let dir = self.dir.path();
        let mut command = Command::new(REDIS_SERVER.name);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--unixsocket")
            .arg(self.socket_path())
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir);
        if let Some(tls) = &self.tls {
            command
                .args(["--tls-port", &tls.port.to_string()])
                .arg("--tls-cert-file")
                .arg(tls.certs.path(&format!("{}.pem", tls.cert)))
                .arg("--tls-key-file")
                .arg(tls.certs.path(&format!("{}.key", tls.cert)))
                .arg("--tls-ca-cert-file")
                .arg(tls.certs.path("ca.pem"))
                .args([
                    "--tls-auth-clients",
                    if tls.require_client {
                        "yes"
                    } else {
                        "optional"
                    },
                ]);
        }
        let tls_port = self.tls.as_ref().map(|t| t.port);
        let child = spawn_logged(command, &self.log_path());
        let (pid, url, unix_url) = (child.id(), self.url(), self.unix_url());
        let child = wait_ready(child, &self.log_path(), || {
            // The private socket first: it answers only once our process has its TCP port.
            ping(&unix_url)
                && answers_as(&url, pid)
                && tls_port.is_none_or(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())
        })?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl EngineHarness for RedisServer {
    const TYPE: &'static str = "redis";
    const KEEPS_DATA: bool = false;
    const HOLDS_ACCOUNTS: bool = true;

    fn start_via(test: &str, via: Via) -> Option<Self> {
        let mut server = Self::start_for(test)?;
        server.via = via;
        Some(server)
    }

    fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_in_order(child, "TERM", &self.log_path());
        }
    }

    fn kill(&mut self) {
        RedisServer::kill(self);
    }

    fn restart(&mut self) {
        RedisServer::restart(self);
    }

    fn pause(&mut self) {
        stop_processes(&[self.pid().expect("redis runs")]);
    }

    fn resume(&mut self) {
        continue_processes(&[self.pid().expect("redis runs")]);
    }

    fn session_table(&self) -> String {
        let url = match self.via {
            Via::Tcp => self.url(),
            Via::Unix => self.unix_url(),
        };
        format!("url = \"{url}\"\n")
    }

    fn pids(&self) -> Vec<u32> {
        self.pid().into_iter().collect()
    }
}

/// The engine exited before it answered.
#[derive(Debug)]
struct Exited;

/// A temporary folder with a short path: unix socket paths are limited to 107 bytes.
fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temporary folder for an engine")
}

/// Starts `command` with stdout and stderr appended to `log`.
fn spawn_logged(mut command: Command, log: &Path) -> Child {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("engine log file");
    let err = out.try_clone().expect("engine log file");
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()))
}

/// Polls `ready` until it holds; `Err` if the process exits first; panics with the log's tail
/// after [`START_TIMEOUT`].
fn wait_ready(
    mut child: Child,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<Child, Exited> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            return Err(Exited);
        }
        if ready() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let pid = child.id();
            stop(child);
            panic!(
                "engine (pid {pid}) did not answer within {START_TIMEOUT:?}; {} ends:\n{}",
                log.display(),
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILL (to this child's pid only) and reap it.
fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends `sig` (the engine's orderly shutdown) to this child's pid and waits until it has exited;
/// after [`START_TIMEOUT`], SIGKILL and a panic with the log's tail.
fn stop_in_order(mut child: Child, sig: &str, log: &Path) {
    signal(&[child.id()], sig);
    let deadline = Instant::now() + START_TIMEOUT;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let pid = child.id();
            stop(child);
            panic!(
                "engine (pid {pid}) did not exit within {START_TIMEOUT:?} of SIG{sig}; {} ends:\n{}",
                log.display(),
                log_tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last lines of a log, for panic messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// One command to the engine at `url` on a fresh connection, with short time-outs; `None` when
/// it does not answer (or answers with an error).
pub fn query<T: redis::FromRedisValue>(url: &str, args: &[&str]) -> Option<T> {
    query_client(&redis::Client::open(url).ok()?, args)
}

/// As [`query`], through `client` (one made with certificates, say).
pub fn query_client<T: redis::FromRedisValue>(client: &redis::Client, args: &[&str]) -> Option<T> {
    let mut con = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    con.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut cmd = redis::cmd(args.first()?);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut con).ok()
}

/// Whether the process `pid` is the one answering at `url`: in the race for a free port,
/// another test's engine may have bound it first (and ours exited).
fn answers_as(url: &str, pid: u32) -> bool {
    redis::Client::open(url).is_ok_and(|client| answers_as_client(&client, pid))
}

fn answers_as_client(client: &redis::Client, pid: u32) -> bool {
    let line = format!("process_id:{pid}");
    query_client::<String>(client, &["INFO", "server"])
        .is_some_and(|info| info.lines().any(|l| l.trim_end() == line))
}

/// Whether the engine at `url` answers PING.
pub fn ping(url: &str) -> bool {
    query::<String>(url, &["PING"]).is_some_and(|reply| reply == "PONG")
}
