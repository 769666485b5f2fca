//! The command line: which config file to read.

use std::path::PathBuf;

use clap::Parser;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "SESSION_SERVER_CONFIG";

/// A web server that keeps its users' sessions on the server, one JSON file per session.
#[derive(Debug, Parser)]
#[command(name = "session-server", version, about)]
pub struct Cli {
    /// The config file. Without it, ./config.toml is read when present, else the built-in
    /// defaults are used.
    #[arg(long, short, env = CONFIG_ENV, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Check the configuration and exit without starting the server.
    #[arg(long)]
    pub check: bool,
}
