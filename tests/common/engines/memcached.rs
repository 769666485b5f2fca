//! Debian's `memcached` for tests, on a free loopback port or a unix socket in its own folder
//! (memcached listens on one or the other). As root it must be told a user to run as (`-u root`).
//! Stopped by its pid on [`MemcachedServer::kill`] and when dropped.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{
    continue_processes, current_test, installed_or_skip, log_tail, spawn_logged, stop,
    stop_in_order, stop_processes, temp_dir, wait_ready, EngineHarness, Program, Via,
    START_ATTEMPTS, START_TIMEOUT,
};

pub const MEMCACHED: Program = Program {
    name: "memcached",
    package: "memcached",
};

/// A memcached of this test's own.
pub struct MemcachedServer {
    dir: tempfile::TempDir,
    /// 0 when it listens on its unix socket.
    port: u16,
    child: Option<Child>,
}

impl MemcachedServer {
    /// On a free loopback port, for the current test; or skips (see `engines.rs`).
    pub fn start() -> Option<Self> {
        Self::start_for(&current_test())
    }

    pub fn start_for(test: &str) -> Option<Self> {
        Self::started(test, false)
    }

    /// On a unix socket in its own folder.
    pub fn start_unix() -> Option<Self> {
        Self::started(&current_test(), true)
    }

    fn started(test: &str, unix: bool) -> Option<Self> {
        if !installed_or_skip(test, &[MEMCACHED]) {
            return None;
        }
        let mut server = Self {
            dir: temp_dir("mc-"),
            port: 0,
            child: None,
        };
        for _ in 0..START_ATTEMPTS {
            if !unix {
                server.port = super::super::free_port();
            }
            if server.launch() {
                return Some(server);
            }
        }
        panic!(
            "memcached did not start; its log ends:\n{}",
            log_tail(&server.log_path())
        );
    }

    /// The entry for `[session.memcached] servers`: `127.0.0.1:PORT` or `unix:/path`.
    pub fn server(&self) -> String {
        if self.port == 0 {
            format!("unix:{}", self.socket_path().display())
        } else {
            format!("127.0.0.1:{}", self.port)
        }
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("memcached.sock")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, then waits for the process to exit.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child);
        }
    }

    /// Kills it if it runs, then starts it again, empty, on the same port or socket.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.launch() {
            assert!(
                Instant::now() < deadline,
                "memcached could not restart; its log ends:\n{}",
                log_tail(&self.log_path())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One text-protocol command and its whole reply (up to `END` after values, else one line).
    pub fn command(&self, line: &str) -> String {
        let reply = if self.port == 0 {
            std::os::unix::net::UnixStream::connect(self.socket_path())
                .and_then(|mut s| exchange(&mut s, line))
        } else {
            std::net::TcpStream::connect(("127.0.0.1", self.port))
                .and_then(|mut s| exchange(&mut s, line))
        };
        reply.expect("talk to the test's memcached")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("memcached.log")
    }

    /// Starts the process and waits until it answers; false when it exited first.
    fn launch(&mut self) -> bool {
        let mut command = Command::new(MEMCACHED.name);
        command.args(["-u", "root", "-m", "64", "-U", "0"]);
        if self.port == 0 {
            let _ = std::fs::remove_file(self.socket_path());
            command
                .arg("-s")
                .arg(self.socket_path())
                .args(["-a", "700"]);
        } else {
            command.args(["-l", "127.0.0.1", "-p", &self.port.to_string()]);
        }
        let child = spawn_logged(command, &self.log_path());
        let (port, socket, pid) = (self.port, self.socket_path(), child.id());
        let ready = wait_ready(child, &self.log_path(), || {
            if port == 0 {
                std::os::unix::net::UnixStream::connect(&socket).is_ok()
            } else {
                // Ours, not another test's memcached that took the same free port first (ours
                // then fails to bind and exits, maybe only after this check).
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .is_ok_and(|stream| reports_pid(stream, pid))
            }
        });
        match ready {
            Ok(child) => {
                self.child = Some(child);
                true
            }
            Err(_) => false,
        }
    }
}

impl Drop for MemcachedServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl EngineHarness for MemcachedServer {
    const TYPE: &'static str = "memcached";
    const KEEPS_DATA: bool = false;
    const HOLDS_ACCOUNTS: bool = false;

    fn start_via(test: &str, via: Via) -> Option<Self> {
        Self::started(test, via == Via::Unix)
    }

    fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_in_order(child, "TERM", &self.log_path());
        }
    }

    fn kill(&mut self) {
        MemcachedServer::kill(self);
    }

    fn restart(&mut self) {
        MemcachedServer::restart(self);
    }

    fn pause(&mut self) {
        stop_processes(&[self.pid().expect("memcached runs")]);
    }

    fn resume(&mut self) {
        continue_processes(&[self.pid().expect("memcached runs")]);
    }

    /// Its one address: the port or the socket it was started on.
    fn session_table(&self) -> String {
        format!("servers = [\"{}\"]\n", self.server())
    }

    fn pids(&self) -> Vec<u32> {
        self.pid().into_iter().collect()
    }
}

fn exchange(stream: &mut (impl Read + Write), line: &str) -> std::io::Result<String> {
    stream.write_all(format!("{line}\r\n").as_bytes())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        reply.extend_from_slice(&buf[..n]);
        let whole = if reply.starts_with(b"VALUE") || reply.starts_with(b"VA ") {
            reply.ends_with(b"END\r\n") || (reply.starts_with(b"VA ") && lines(&reply) >= 2)
        } else {
            reply.ends_with(b"\r\n")
        };
        if n == 0 || whole {
            return Ok(String::from_utf8_lossy(&reply).into_owned());
        }
    }
}

fn lines(bytes: &[u8]) -> usize {
    bytes.windows(2).filter(|w| w == b"\r\n").count()
}

/// Whether the memcached on `stream` says (`stats`) that it is the process `pid`.
fn reports_pid(mut stream: std::net::TcpStream, pid: u32) -> bool {
    use std::io::{Read, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"stats\r\n").is_err() {
        return false;
    }
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !text.ends_with(b"END\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&text)
        .lines()
        .any(|l| l.trim_end() == format!("STAT pid {pid}"))
}
