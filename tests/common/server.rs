//! The built server binary as a child process, raw HTTP to it, and its config.

use std::path::{Path, PathBuf};

/// The built server binary, run as a child process that is killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    pub stderr_path: PathBuf,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_session-server");

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl ServerProcess {
    /// Starts the binary with `config` (whose `bind` must be `addr`) and waits until /healthz
    /// answers.
    pub fn start(config: &Path, addr: std::net::SocketAddr) -> Self {
        let stderr_path = config.with_file_name(format!("server-{}.log", addr.port()));
        let log = std::fs::File::create(&stderr_path).expect("log file");
        let child = std::process::Command::new(BIN)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn server");
        let server = Self {
            child,
            addr,
            stderr_path,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if raw_http(
                addr,
                "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .is_some_and(|(status, _)| status == 200)
            {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "server did not start: {}",
            std::fs::read_to_string(&server.stderr_path).unwrap_or_default()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` as is and returns the status and the whole response text, or `None` when
/// nothing answered.
pub fn raw_http(addr: std::net::SocketAddr, request: impl AsRef<[u8]>) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_ref()).ok()?;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text))
}

/// Writes a config for a real server on a free loopback port in `dir`; returns its path and
/// address. `session` and `filesystem` are extra lines for those tables.
pub fn server_config(
    dir: &Path,
    session: &str,
    filesystem: &str,
) -> (PathBuf, std::net::SocketAddr) {
    let port = free_port();
    let text = format!(
        "[server]\nbind = \"127.0.0.1:{port}\"\nworkers = 2\n[session]\nlifetime = 600\n{session}\n\
         [session.filesystem]\n{filesystem}\n[auth]\nbcrypt_cost = 4\nmax_failed_logins = 1000\n"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    (path, format!("127.0.0.1:{port}").parse().expect("addr"))
}

/// Runs `session-server --config <config> --check`: its exit code and what it wrote to stderr.
pub fn check_config(config: &Path) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--check")
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
