//! `[log]` and `[metrics]`: how much the server logs and in which format (`RUST_LOG` overrides the
//! level), and the address of the Prometheus endpoint, off unless set.

use serde::Deserialize;

use super::check::Invalid;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// Validated `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `session_server=debug,actix_web=warn`, ...
    pub level: String,
    pub format: LogFormat,
}

/// `[log]` as written.
#[derive(Deserialize)]
#[serde(default)]
pub(super) struct RawLog {
    level: String,
    format: LogFormat,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl RawLog {
    pub(super) fn validate(self) -> Result<LogConfig, Invalid> {
        if tracing_subscriber::EnvFilter::builder()
            .parse(&self.level)
            .is_err()
        {
            return Err(Invalid::new(
                "log.level",
                format!("{:?}", self.level),
                "expected a level (error, warn, info, debug, trace) or a filter such as \
                 \"info,session_server=debug\"",
            ));
        }
        Ok(LogConfig {
            level: self.level,
            format: self.format,
        })
    }
}

/// Validated `[metrics]`.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served; `None`: no metrics endpoint.
    pub bind: Option<String>,
}

/// `[metrics]` as written.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawMetrics {
    bind: Option<String>,
}

impl RawMetrics {
    pub(super) fn validate(self, server_bind: &str) -> Result<MetricsConfig, Invalid> {
        if let Some(bind) = &self.bind {
            if bind.parse::<std::net::SocketAddr>().is_err() {
                return Err(Invalid::new(
                    "metrics.bind",
                    format!("{bind:?}"),
                    "expected an IP address and port such as \"127.0.0.1:9100\"",
                ));
            }
            if bind == server_bind {
                return Err(Invalid::new(
                    "metrics.bind",
                    format!("{bind:?}"),
                    "expected an address other than server.bind: metrics must never face the \
                     public port",
                ));
            }
        }
        Ok(MetricsConfig { bind: self.bind })
    }
}
