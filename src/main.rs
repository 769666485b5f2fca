//! The `session-server` binary: read the command line and the config, then serve. Exit codes: 0
//! after a clean stop, 2 for a configuration problem (nothing is started), 1 for any other
//! start-up failure.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use session_server::cli::Cli;
use session_server::config::Config;
use session_server::{secret, web};

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path),
        None if Path::new("config.toml").exists() => Config::load(Path::new("config.toml")),
        None => Config::defaults(),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let env_key = std::env::var(secret::ENV_VAR).ok();
    let key = match secret::load_or_create(&config.session.secret_key_file, env_key.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    match run(config, key) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(config: Config, key: actix_web::cookie::Key) -> anyhow::Result<()> {
    let state = web::AppState::new(config, key)?;
    actix_web::rt::System::new().block_on(web::serve(state))?;
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never in a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
