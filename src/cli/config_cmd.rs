//! `config check` and `config init`: the effective configuration, checked without changing
//! anything on disk (no secret key, no session folder, no database is created), and the
//! commented default file for a new installation.

use std::io::Write;
use std::path::Path;

use super::{output, CliError};
use crate::config::{effective, Config};

/// The shipped, commented configuration: what `config init` writes.
const SHIPPED: &str = include_str!("../../config.toml");

pub fn check(config: &Config) -> Result<(), CliError> {
    let s = &config.session;
    let key = match crate::secret::Keyring::configured(s)? {
        Some(keys) => keys.describe(),
        None => format!(
            "{} (created at the first start)",
            s.secret_key_file.display()
        ),
    };
    crate::web::render::Templates::load(
        config.server.templates_dir.as_deref(),
        crate::web::sample::context,
        &crate::web::context::fixed_values(config),
    )?;
    let source = config
        .source
        .as_deref()
        .map_or("the built-in defaults (no config.toml)".into(), |p| {
            p.display().to_string()
        });
    let text = format!(
        "# effective configuration of {source}\n# keys not in the file have their defaults\n\n{}\n\
         # secret key: {key}\nconfiguration OK\n",
        effective::render(config)
    );
    output::page(&text)
}

pub fn init(path: &Path, force: bool) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::Failed(format!(
                "{} exists: pass --force to replace it",
                path.display()
            )))
        }
        other => other.map_err(CliError::io(path.display().to_string()))?,
    };
    file.write_all(SHIPPED.as_bytes())
        .map_err(CliError::io(path.display().to_string()))?;
    // The written file must be one this build reads: the shipped file is checked by a test too.
    Config::load(path)?;
    println!("wrote {}", path.display());
    Ok(())
}
