//! The effective configuration as `config check` prints it: every key the server uses, with
//! its value after defaults and path resolution, and the Flask / Flask-Session setting it
//! stands for. Only the table of the chosen store type is listed; passwords in URLs are masked.

use super::shown::{list, path, s, secs};
pub use super::shown::{Entry, Keys};
use super::Config;
use crate::engines::list::{for_each_engine, StoreType};

/// Every key of `config` in file order.
pub fn entries(config: &Config) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut add = |table, key, value: String, flask| {
        out.push(Entry {
            table,
            key,
            value,
            flask,
        });
    };
    let (sv, se, au) = (&config.server, &config.session, &config.auth);
    let optional = |p: &Option<std::path::PathBuf>| p.as_deref().map_or("(embedded)".into(), path);
    add("server", "bind", s(&sv.bind), Some("app.run(host=, port=)"));
    add("server", "workers", sv.workers.to_string(), None);
    add(
        "server",
        "shutdown_timeout",
        secs(sv.shutdown_timeout),
        None,
    );
    add(
        "server",
        "templates_dir",
        optional(&sv.templates_dir),
        Some("template_folder"),
    );
    add(
        "server",
        "static_dir",
        optional(&sv.static_dir),
        Some("static_folder"),
    );
    add(
        "server",
        "default_language",
        s(sv.default_language.code()),
        Some("BABEL_DEFAULT_LOCALE"),
    );
    add("server", "body_timeout", secs(sv.body_timeout), None);
    add("session", "type", s(se.store.name()), Some("SESSION_TYPE"));
    add(
        "session",
        "permanent",
        se.permanent.to_string(),
        Some("SESSION_PERMANENT"),
    );
    add(
        "session",
        "lifetime",
        secs(se.lifetime),
        Some("PERMANENT_SESSION_LIFETIME"),
    );
    add(
        "session",
        "absolute_lifetime",
        se.absolute_lifetime.map_or("\"none\"".into(), secs),
        None,
    );
    add(
        "session",
        "refresh_each_request",
        se.refresh_each_request.to_string(),
        Some("SESSION_REFRESH_EACH_REQUEST"),
    );
    add(
        "session",
        "max_session_bytes",
        se.max_session_bytes.to_string(),
        None,
    );
    add("session", "lock", se.lock.to_string(), None);
    add("session", "lock_timeout", secs(se.lock_timeout), None);
    add(
        "session",
        "cookie_name",
        s(&se.cookie_name),
        Some("SESSION_COOKIE_NAME"),
    );
    add(
        "session",
        "cookie_secure",
        se.cookie_secure.to_string(),
        Some("SESSION_COOKIE_SECURE"),
    );
    add(
        "session",
        "cookie_samesite",
        s(&format!("{:?}", se.cookie_samesite).to_lowercase()),
        Some("SESSION_COOKIE_SAMESITE"),
    );
    add(
        "session",
        "cookie_domain",
        se.cookie_domain.as_deref().map_or("(unset)".into(), s),
        Some("SESSION_COOKIE_DOMAIN"),
    );
    add(
        "session",
        "secret_key_file",
        path(&se.secret_key_file),
        Some("SECRET_KEY"),
    );
    let fallbacks: Vec<String> = se
        .secret_key_fallbacks
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    add(
        "session",
        "secret_key_fallbacks",
        list(&fallbacks, s),
        Some("SECRET_KEY_FALLBACKS"),
    );
    macro_rules! engine_table {
        ($($module:ident $Type:ident,)*) => {
            match se.store {
                $(StoreType::$Type => crate::engines::list::configs::$module::effective(
                    &se.$module,
                    &mut Keys::new(&mut out, concat!("session.", stringify!($module))),
                ),)*
            }
        };
    }
    for_each_engine!(engine_table);
    let mut add = |table, key, value: String, flask| {
        out.push(Entry {
            table,
            key,
            value,
            flask,
        });
    };
    add("auth", "users", s(au.users.name()), None);
    add("auth", "users_db", path(&au.users_db), None);
    add("auth", "users_file", path(&au.users_file), None);
    add("auth", "bcrypt_cost", au.bcrypt_cost.to_string(), None);
    add(
        "auth",
        "min_password_length",
        au.min_password_length.to_string(),
        None,
    );
    add(
        "auth",
        "max_failed_logins",
        au.max_failed_logins.to_string(),
        None,
    );
    add(
        "auth",
        "failed_login_window",
        secs(au.failed_login_window),
        None,
    );
    add("log", "level", s(&config.log.level), None);
    add(
        "log",
        "format",
        s(&format!("{:?}", config.log.format).to_lowercase()),
        None,
    );
    add(
        "metrics",
        "bind",
        config.metrics.bind.as_deref().map_or("(off)".into(), s),
        None,
    );
    out
}

/// The entries as a TOML-like text, one table after another, each key's Flask equivalent in a
/// comment.
pub fn render(config: &Config) -> String {
    let entries = entries(config);
    let width = entries
        .iter()
        .map(|e| e.key.len() + e.value.len() + 3)
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    let mut table = "";
    for e in &entries {
        if e.table != table {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("[{}]\n", e.table));
            table = e.table;
        }
        let line = format!("{} = {}", e.key, e.value);
        match e.flask {
            Some(f) => text.push_str(&format!("{line:<width$}  # Flask: {f}\n")),
            None => text.push_str(&format!("{line}\n")),
        }
    }
    text
}
