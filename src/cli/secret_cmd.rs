//! `secret rotate` and `secret retire`: the key files beside `secret_key_file` (the files are
//! [`crate::secret`]'s), and what the operator must do next on every instance.

use super::{output, CliError, SecretCommand};
use crate::config::Config;
use crate::secret::{self, EnvKeys};

pub fn run(config: &Config, command: &SecretCommand) -> Result<(), CliError> {
    let file = &config.session.secret_key_file;
    let env = EnvKeys::from_process();
    let text = match command {
        SecretCommand::Rotate { prepare: true } => {
            let (prepared, made) = secret::prepare(file, &env)?;
            let what = if made {
                "made the next key"
            } else {
                "the next key was already made"
            };
            format!(
                "{what}: {prepared}\n\
                 Servers accept cookies under it from their next start, and sign nothing with it.\n\
                 Next: copy {prepared} (mode 0600) beside the key of every instance and restart \
                 them one by one; then run `session-server secret rotate` to make it current.\n",
                prepared = prepared.display()
            )
        }
        SecretCommand::Rotate { prepare: false } => {
            let rotated = secret::rotate(file, &env)?;
            let new = if rotated.from_prepared {
                "the prepared key is now the current key"
            } else {
                "a new current key"
            };
            format!(
                "{new}: {file}\n\
                 the previous key is kept as {kept}: cookies under it are still accepted and \
                 re-issued under the new key.\n\
                 Next: restart this server. On every other instance, copy {file} and {kept} \
                 (mode 0600) and restart it. {gap}\n\
                 Once every visitor has been back (or after `lifetime`), `session-server secret \
                 retire` deletes the kept keys.\n",
                file = file.display(),
                kept = rotated.kept.display(),
                gap = if rotated.from_prepared {
                    "Every instance already accepts the new key: nobody is logged out while they \
                     restart."
                } else {
                    "Until an instance restarts it does not know the new key; for no gap on \
                     several instances, use `secret rotate --prepare` first next time."
                },
            )
        }
        SecretCommand::Retire { keep } => {
            let removed = secret::retire(file, &env, *keep)?;
            if removed.is_empty() {
                "no kept key to delete\n".to_owned()
            } else {
                let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
                format!(
                    "deleted {}\nAfter a restart, cookies under those keys are no longer \
                     accepted (their visitors become anonymous). Delete the same files on every \
                     other instance.\n",
                    names.join(", ")
                )
            }
        }
    };
    output::page(&text)
}
