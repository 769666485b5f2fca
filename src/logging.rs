//! The process's log output (`tracing`): `[log] level` and `format` from config.toml, with
//! `RUST_LOG` winning over the level; text for a person, JSON lines for a collector. Colours
//! only at a terminal, never in a file.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Logging for the server.
pub fn init(config: &LogConfig) {
    let level = std::env::var("RUST_LOG")
        .ok()
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| config.level.clone());
    // actix-session logs every forged or stale cookie on a line of its own; the server counts
    // them instead (`telemetry::IGNORED`), unless the filter names actix_session itself.
    let level = if level.contains("actix_session") {
        level
    } else {
        format!("{level},actix_session=error")
    };
    let filter = EnvFilter::builder()
        .parse(&level)
        .unwrap_or_else(|_| EnvFilter::new("info,actix_session=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests that start the app twice in one process) keeps the first.
    let _ = match config.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Logging for the operator's commands: warnings and errors only, unless `RUST_LOG` asks.
pub fn init_for_commands() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
