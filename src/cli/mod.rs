//! The command line of the one binary: `serve` (the default), and the operator's commands over
//! the configured store, user database and secret key: `sessions`, `users`, `config`, `secret`. This file holds the
//! grammar (clap derive), the exit codes and the dispatch; each command group has its own file.
//!
//! Exit codes: 0 ok, 1 the command failed (an engine down, no such session), 2 a usage or
//! configuration problem (nothing was done).

mod config_cmd;
mod gather;
mod output;
mod pager;
mod secret_cmd;
mod sessions;
mod show;
mod users;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::secret::SecretError;
use crate::store::StoreError;
use crate::users::UserError;
use crate::web::StartError;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "SESSION_SERVER_CONFIG";

const EXAMPLES: &str = "\
Examples:
  session-server                              serve (the same as `session-server serve`)
  session-server sessions list                one row per stored session
  session-server sessions show 3f2a9c1b       a session by the start of its file name
  session-server sessions purge --user alice  log alice out everywhere
  session-server users add alice              add an account (asks for the password)
  session-server config check                 the effective configuration
  session-server secret rotate                a new secret key, the old one still accepted
  session-server -c /etc/session-server.toml sessions stats";

/// A web server that keeps its users' sessions on the server, one JSON file per session.
#[derive(Debug, Parser)]
#[command(name = "session-server", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// The config file. Without it, ./config.toml is read when present, else the built-in
    /// defaults are used.
    #[arg(long, short, env = CONFIG_ENV, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,

    /// The same as `config check` (kept for scripts written before the subcommands).
    #[arg(long, hide = true)]
    pub check: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (the default when no command is given).
    #[command(after_help = "Example:\n  session-server serve -c config.toml")]
    Serve,
    /// Inspect and end stored sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Check or write the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Rotate the secret key that signs the cookies, logging nobody out.
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Make a new current key; the previous one is kept beside it (`secret.key.1`, ...) and its
    /// cookies are still accepted, and re-issued under the new key, after a restart.
    #[command(after_help = "Examples:\n  session-server secret rotate\n  \
        session-server secret rotate --prepare   (several instances: see docs/operations.md)")]
    Rotate {
        /// Only make the next key (`secret.key.next`), accepted but not yet signing: copy it to
        /// every instance and restart them, then run `secret rotate` to make it current.
        #[arg(long)]
        prepare: bool,
    },
    /// Delete the kept older keys: cookies under them are no longer accepted once the servers
    /// restart (their visitors become anonymous).
    #[command(after_help = "Examples:\n  session-server secret retire\n  \
        session-server secret retire --keep 1")]
    Retire {
        /// Keep the newest N kept keys.
        #[arg(long, value_name = "N", default_value_t = 0)]
        keep: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// One row per session: short hash, user, created, expires in, size.
    #[command(after_help = "Examples:\n  session-server sessions list\n  \
        session-server sessions list --user alice --json | jq '.[].hash'")]
    List {
        /// Only the sessions of this user id (any case).
        #[arg(long, value_name = "ID")]
        user: Option<String>,
        /// Also the sessions that have ended and no sweep has deleted yet.
        #[arg(long)]
        expired: bool,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One session's data and times, found by file name, hash prefix or cookie value.
    #[command(after_help = "Examples:\n  session-server sessions show 3f2a9c1b\n  \
        session-server sessions show 3f2a9c1b4d5e....json\n  \
        session-server sessions show 'Rk9v...'   (the cookie's value from the browser's developer tools)")]
    Show {
        /// A file name (`<hash>.json`), the start of a hash (at least 4 hex digits), or the
        /// session cookie's value as the browser holds it.
        target: String,
        /// The stored record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Live and expired counts, bytes, oldest and newest.
    #[command(after_help = "Example:\n  session-server sessions stats --by-user")]
    Stats {
        /// Also count the live sessions of each user.
        #[arg(long)]
        by_user: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete the expired sessions now (safe while the server runs).
    #[command(after_help = "Example:\n  session-server sessions gc")]
    Gc,
    /// Log users out: delete their sessions (safe while the server runs).
    #[command(
        after_help = "Examples:\n  session-server sessions purge --user alice\n  \
        session-server sessions purge --all --yes"
    )]
    Purge {
        /// Every session of this user id (any case).
        #[arg(
            long,
            value_name = "ID",
            conflicts_with = "all",
            required_unless_present = "all"
        )]
        user: Option<String>,
        /// Every session.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// A live view of the sessions: created, updated, expiring, deleted.
    #[command(after_help = "Examples:\n  session-server sessions watch\n  \
        session-server sessions watch --interval 250ms | tee events.log")]
    Watch {
        /// How often the store is looked at.
        #[arg(long, default_value = "1s", value_parser = parse_interval)]
        interval: Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add an account (the password is asked without echo, or read from stdin).
    #[command(
        after_help = "Examples:\n  session-server users add alice --name 'Alice Kim'\n  \
        printf 'correct horse battery\\n' | session-server users add bob --stdin"
    )]
    Add {
        id: String,
        /// The display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Every account: id, name, when it registered.
    #[command(after_help = "Example:\n  session-server users list --json")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete an account and end its sessions.
    #[command(after_help = "Example:\n  session-server users remove alice --yes")]
    Remove {
        id: String,
        #[arg(long, short)]
        yes: bool,
    },
    /// Set a new password.
    #[command(after_help = "Examples:\n  session-server users passwd alice\n  \
        printf 'new password 123\\n' | session-server users passwd alice --stdin")]
    Passwd {
        id: String,
        #[command(flatten)]
        password: PasswordSource,
    },
}

/// Where a password comes from.
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of stdin instead of asking.
    #[arg(long)]
    pub stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults filled in, each key's Flask-Session
    /// equivalent); changes nothing on disk.
    #[command(after_help = "Example:\n  session-server config check -c /etc/session-server.toml")]
    Check,
    /// Write the commented default config.toml.
    #[command(after_help = "Example:\n  session-server config init ./config.toml")]
    Init {
        /// Where to write it.
        #[arg(default_value = "config.toml")]
        path: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(50) {
        return Err("expected at least 50ms".into());
    }
    Ok(d)
}

/// Why a command failed. [`CliError::exit_code`] maps each to the documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Secret(#[from] SecretError),
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Users(#[from] UserError),
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("{0}")]
    Engine(#[from] crate::engines::EngineError),
    #[error("template {0}")]
    Templates(#[from] crate::web::render::TemplateError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The command ran and found nothing to act on, or was refused (no such session).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// 2 for what the person must fix in the command or the config; 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Usage(_) | Self::Secret(_) | Self::Templates(_) => 2,
            _ => 1,
        }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// The configuration the command line names: `--config` (or its environment variable), else
/// `./config.toml` when present, else the built-in defaults.
pub fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None if Path::new("config.toml").exists() => Config::load(Path::new("config.toml")),
        None => Config::defaults(),
    }
}

/// Runs an operator command (anything but `serve`), printing its error on one line.
pub fn run_operator(cli: &Cli) -> ExitCode {
    match operate(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors can quote stored text (a session file's unknown field, a listed key).
            eprintln!("error: {}", output::shown(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn operate(cli: &Cli) -> Result<(), CliError> {
    let command = match (&cli.command, cli.check) {
        (Some(Command::Config(ConfigCommand::Init { path, force })), _) => {
            // Needs no config: it writes one.
            return config_cmd::init(path, *force);
        }
        (Some(command), _) => command,
        (None, true) => &Command::Config(ConfigCommand::Check),
        (None, false) => &Command::Serve,
    };
    let config = load_config(cli.config.as_deref())?;
    match command {
        Command::Serve => Err(CliError::Usage("serve is not an operator command".into())),
        Command::Config(ConfigCommand::Check) => config_cmd::check(&config),
        Command::Config(ConfigCommand::Init { .. }) => Ok(()),
        Command::Sessions(cmd) => runtime()?.block_on(sessions::run(&config, cmd)),
        Command::Users(cmd) => users::run(&config, cmd),
        Command::Secret(cmd) => secret_cmd::run(&config, cmd),
    }
}

/// Whether the command line asks for the server (no command, or `serve`).
pub fn wants_server(cli: &Cli) -> bool {
    matches!(cli.command, None | Some(Command::Serve)) && !cli.check
}

/// The runtime the store calls run on: one thread, timers and I/O.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("cannot start the runtime"))
}
