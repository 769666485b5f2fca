//! `[server]`: where the server listens and with how many workers.

use serde::Deserialize;

use super::check::{Invalid, Positive};

/// Validated `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: String,
    pub workers: usize,
}

/// `[server]` as written; missing keys take [`Default`]'s values.
#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawServer {
    bind: String,
    /// Unset: one per CPU of the machine the server starts on.
    workers: Option<Positive>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:5000".into(),
            workers: None,
        }
    }
}

impl RawServer {
    pub(super) fn validate(self) -> Result<ServerConfig, Invalid> {
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(Invalid::new(
                "server.bind",
                format!("{:?}", self.bind),
                "expected an IP address and port such as \"127.0.0.1:5000\" or \"[::1]:8080\"",
            ));
        }
        let workers = match self.workers {
            Some(Positive(n)) => usize::try_from(n).unwrap_or(usize::MAX).min(1024),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(ServerConfig {
            bind: self.bind,
            workers,
        })
    }
}
