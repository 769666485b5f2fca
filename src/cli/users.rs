//! `users add | list | remove | passwd`: the accounts the login pages use, in whichever storage
//! the config gives them (`[auth] users`), under the rules registration
//! follows (the same id, name and password checks, the same bcrypt cost).

use serde_json::json;

use super::output::{self, shown, table};
use super::{CliError, UsersCommand};
use crate::config::Config;
use crate::users::{password_problem, valid_display_name, valid_id, UserDb, UserError};

pub fn run(config: &Config, cmd: &UsersCommand) -> Result<(), CliError> {
    let users = crate::engines::open_accounts(config)?;
    match cmd {
        UsersCommand::Add { id, name, password } => add(
            config,
            &users,
            id,
            name.as_deref().unwrap_or(id),
            password.stdin,
        ),
        UsersCommand::List { json } => list(&users, *json),
        UsersCommand::Remove { id, yes } => remove(config, &users, id, *yes),
        UsersCommand::Passwd { id, password } => passwd(config, &users, id, password.stdin),
    }
}

fn add(config: &Config, users: &UserDb, id: &str, name: &str, stdin: bool) -> Result<(), CliError> {
    if !valid_id(id) {
        return Err(CliError::Usage(format!(
            "user id {id:?}: 1 to 64 characters: letters, digits, '.', '_' or '-', with at least \
             one letter or digit"
        )));
    }
    if !valid_display_name(name) {
        return Err(CliError::Usage(format!(
            "name {name:?}: 1 to 64 characters, with no invisible or direction-changing characters"
        )));
    }
    let password = checked_password(config, stdin)?;
    match users.register(id, name, &password) {
        Ok(user) => {
            println!("added {} ({})", shown(&user.spelling), shown(&user.name));
            Ok(())
        }
        Err(UserError::Taken(_)) => Err(CliError::Failed(format!("user id {id:?} is taken"))),
        Err(e) => Err(e.into()),
    }
}

fn checked_password(config: &Config, stdin: bool) -> Result<String, CliError> {
    let password = output::password(stdin)?;
    match password_problem(&password, config.auth.min_password_length) {
        Some(problem) => Err(CliError::Usage(problem.to_string())),
        None => Ok(password),
    }
}

fn list(users: &UserDb, as_json: bool) -> Result<(), CliError> {
    let accounts = users.list()?;
    if as_json {
        let rows: Vec<_> = accounts
            .iter()
            .map(|a| {
                json!({
                    "id": a.user.spelling,
                    "key": a.user.id,
                    "name": a.user.name,
                    "created_at": a.created_at,
                })
            })
            .collect();
        return output::page(&format!("{}\n", output::json(&rows, false)?));
    }
    if accounts.is_empty() {
        eprintln!("no users");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            vec![
                shown(&a.user.spelling).into_owned(),
                shown(&a.user.name).into_owned(),
                shown(&a.created_at).into_owned(),
            ]
        })
        .collect();
    output::page(&table(&["ID", "NAME", "REGISTERED"], &rows))
}

/// Deletes the account, then ends its sessions where the store can list them: a removed user
/// must not stay logged in.
fn remove(config: &Config, users: &UserDb, id: &str, yes: bool) -> Result<(), CliError> {
    // The id as typed is echoed escaped too: it may have been pasted from stored text.
    let shown_id = shown(id);
    if !output::confirm(
        &format!("Remove the account {shown_id} and end its sessions?"),
        yes,
    )? {
        return Err(CliError::Failed("nothing removed".into()));
    }
    if !users.remove(id)? {
        return Err(CliError::Failed(format!("no user {id:?}")));
    }
    println!("removed {shown_id}; every session of {shown_id} ends at its next request");
    end_listed_sessions(config, id)
}

fn passwd(config: &Config, users: &UserDb, id: &str, stdin: bool) -> Result<(), CliError> {
    let password = checked_password(config, stdin)?;
    if users.set_password(id, &password)?.is_none() {
        return Err(CliError::Failed(format!("no user {id:?}")));
    }
    let shown_id = shown(id);
    println!(
        "password of {shown_id} changed; every session of {shown_id} ends at its next request"
    );
    end_listed_sessions(config, id)
}

/// Deletes the sessions of `id` where the store can list them, so that they are gone from the
/// store now; elsewhere they end at their next request, which finds the account changed (see
/// `web::account`).
fn end_listed_sessions(config: &Config, id: &str) -> Result<(), CliError> {
    let s = &config.session;
    // Sessions this process cannot see (inside the server) or cannot find by account.
    let can = s.store.capabilities();
    if !can.shared || !can.can_list {
        return Ok(());
    }
    let runtime = super::runtime()?;
    let ended = runtime.block_on(async {
        let store = crate::store::open(s)?;
        super::sessions::end_sessions(&store, Some(id), true).await
    })?;
    println!("deleted {ended} stored sessions of {}", shown(id));
    Ok(())
}
