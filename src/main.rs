//! The `session-server` binary: read the command line; serve (the default) or run one operator
//! command (`sessions`, `users`, `config`). Exit codes: 0 after a clean stop or a command that
//! succeeded, 2 for a usage or configuration problem (nothing is started), 1 for any other
//! failure.

use std::process::ExitCode;

use clap::Parser;
use session_server::cli::{self, Cli};
use session_server::config::Config;
use session_server::{logging, secret, web};

/// mimalloc rather than glibc's malloc: rendering a page allocates and frees dozens of small
/// strings and maps, which glibc's arenas made about a sixth of a request's CPU time
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli::wants_server(&cli) {
        // A command's own output is what the person reads: only warnings and errors are logged.
        logging::init_for_commands();
        return cli::run_operator(&cli);
    }
    let config = match cli::load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config.log);
    let s = &config.session;
    let env = secret::EnvKeys::from_process();
    let keys =
        match secret::Keyring::load_or_create(&s.secret_key_file, &s.secret_key_fallbacks, &env) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    match run(config, keys) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            // A broken template is the operator's file to fix, like a config error.
            let code = if matches!(e, web::StartError::Templates(_)) {
                2
            } else {
                1
            };
            ExitCode::from(code)
        }
    }
}

fn run(config: Config, keys: secret::Keyring) -> Result<(), web::StartError> {
    let state = web::AppState::new(config, keys)?;
    actix_web::rt::System::new().block_on(web::serve(state))
}
