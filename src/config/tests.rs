//! Unit tests of config.toml's reading: defaults, paths, durations and their bounds, and the
//! one-line errors. Each engine's table is tested in its folder.

use std::time::Duration;

use super::*;

pub(crate) fn err(text: &str) -> String {
    match Config::from_toml(text, Path::new("/etc/app/config.toml")) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

pub(crate) fn ok(text: &str) -> Config {
    match Config::from_toml(text, Path::new("/etc/app/config.toml")) {
        Ok(c) => c,
        Err(e) => panic!("expected {text:?} to be valid: {e}"),
    }
}

#[test]
fn defaults_are_flasks() {
    let c = Config::defaults().expect("defaults are valid");
    assert!(c.session.permanent);
    assert_eq!(c.session.lifetime, Duration::from_secs(31 * 86400));
    assert_eq!(c.session.store, StoreType::DEFAULT);
    assert_eq!(c.session.cookie_name, "session");
    assert_eq!(c.auth.bcrypt_cost, 12);
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let c = Config::from_toml(
        "[auth]\nusers_db = \"data/u.db\"\nusers_file = \"/abs/u.json\"\n",
        Path::new("/etc/app/config.toml"),
    )
    .expect("valid");
    assert_eq!(c.auth.users_db, Path::new("/etc/app/data/u.db"));
    assert_eq!(c.auth.users_file, Path::new("/abs/u.json"));
    assert_eq!(c.session.secret_key_file, Path::new("/etc/app/secret.key"));
}

#[test]
fn lifetimes_accept_integers_and_units() {
    for (text, secs) in [
        ("30", 30),
        ("\"30s\"", 30),
        ("\"12h\"", 43200),
        ("\"31d\"", 2_678_400),
    ] {
        let c = Config::from_toml(
            &format!("[session]\nlifetime = {text}\n"),
            Path::new("c.toml"),
        )
        .expect("valid");
        assert_eq!(c.session.lifetime.as_secs(), secs, "{text}");
    }
}

#[test]
fn duration_keys_are_bounded() {
    assert_eq!(
        err("[session]\nlifetime = \"100000000d\"\n"),
        "/etc/app/config.toml: session.lifetime = \"100000000d\": expected a positive whole \
         number of seconds, or a string such as \"30s\", \"15m\", \"12h\", \"31d\"; at most \
         \"400d\" (34560000)"
    );
    let e = err("[session]\nlifetime = 34560001\n");
    assert!(e.contains("session.lifetime = 34560001: "), "{e}");
    let e = err("[auth]\nfailed_login_window = \"2d\"\n");
    assert!(
        e.contains("auth.failed_login_window = \"2d\": ") && e.ends_with("at most \"1d\" (86400)"),
        "{e}"
    );
    let c = Config::from_toml(
        "[session]\nlifetime = \"400d\"\n[auth]\nfailed_login_window = 86400\n",
        Path::new("c.toml"),
    )
    .expect("the maxima themselves are allowed");
    assert_eq!(c.session.lifetime, Duration::from_secs(400 * 86400));
    assert_eq!(c.session.ttl(), time::Duration::days(400));
}

#[test]
fn ttl_is_capped_even_for_a_lifetime_set_in_code() {
    let mut c = Config::defaults().expect("defaults are valid").session;
    assert_eq!(c.ttl(), time::Duration::days(31));
    c.lifetime = Duration::from_secs(u64::MAX);
    assert_eq!(c.ttl(), time::Duration::days(400));
}

#[test]
fn unknown_keys_are_named_once_with_their_value_and_the_allowed_keys() {
    assert_eq!(
        err("[session.mongodb]\nurl = \"x\"\n"),
        format!("/etc/app/config.toml: session.mongodb = {{ url = \"x\" }}: unknown key; expected one of \
         `type`, `permanent`, `lifetime`, `absolute_lifetime`, `refresh_each_request`, `max_session_bytes`, \
         `lock`, `lock_timeout`, \
         `cookie_name`, `cookie_secure`, `cookie_samesite`, `cookie_domain`, `secret_key_file`, \
         `secret_key_fallbacks`, \
         {}",
        StoreType::ALL
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
        )
    );
    assert_eq!(
        err("verbose = true\n"),
        "/etc/app/config.toml: verbose = true: unknown key; expected one of `server`, \
         `session`, `auth`, `log`, `metrics`"
    );
    let e = err("[server]\nmirrors = [\"http://one.example\", \"http://two.example\", \"http://three.example\"]\n");
    assert!(
        e.starts_with("/etc/app/config.toml: server.mirrors = [\"http://one.example\", \"http://two.example\", \"http://thre...: unknown key; "),
        "{e}"
    );
    let e = err("[server]\nport = \"line one\\nline two\"\n");
    assert!(
        e.starts_with("/etc/app/config.toml: server.port = \"line one\\nline two\": "),
        "{e}"
    );
}

#[test]
fn errors_name_file_key_value_and_what_is_allowed() {
    let e = err("[session]\nlifetime = -5\n");
    assert!(
        e.starts_with("/etc/app/config.toml: session.lifetime = -5: expected a positive"),
        "{e}"
    );
    let e = err("[session]\nlifetime = \"soon\"\n");
    assert!(e.contains("session.lifetime = \"soon\""), "{e}");
    let e = err("[session]\ntype = \"dynamodb\"\n");
    assert!(
        e.contains("session.type = \"dynamodb\"") && e.contains("cannot run here"),
        "{e}"
    );
    let e = err("[session]\ntype = \"floppy\"\n");
    assert!(
        e.contains(&format!("allowed: \"{}\", ", StoreType::ALL[0])),
        "{e}"
    );
    let e = err("[session]\npermanent = \"yes\"\n");
    assert!(
        e.contains("session.permanent = \"yes\"") && e.contains("bool"),
        "{e}"
    );
    let e = err("[session]\ncookie_nmae = \"x\"\n");
    assert!(
        e.contains("session.cookie_nmae") && e.contains("expected one of"),
        "{e}"
    );
    let e = err("[auth]\nbcrypt_cost = 2\n");
    assert!(
        e.contains("auth.bcrypt_cost = 2: expected an integer from 4 to 31"),
        "{e}"
    );
    assert!(!e.contains('\n'));
    let e = err("[session]\nlifetime = 1\nlifetime = 2\n");
    assert!(
        e.contains("line 3") && e.contains("duplicate key") && e.contains("`lifetime`"),
        "{e}"
    );
}

#[test]
fn the_shipped_config_is_the_defaults_but_for_the_tutorials_cookie_and_lifetime() {
    let file = Path::new("/etc/app/config.toml");
    let mut shipped = Config::from_toml(include_str!("../../config.toml"), file)
        .expect("the shipped config.toml is valid");
    let defaults = Config::from_toml("", file).expect("defaults are valid");
    // The tutorial's choices: a browser-session cookie, ended 30 seconds after the last request.
    assert!(!shipped.session.permanent);
    assert_eq!(shipped.session.lifetime, Duration::from_secs(30));
    shipped.session.permanent = defaults.session.permanent;
    shipped.session.lifetime = defaults.session.lifetime;
    assert_eq!(format!("{shipped:?}"), format!("{defaults:?}"));
}

#[test]
fn default_language_is_english_and_takes_a_tag_of_either_language() {
    use crate::i18n::Lang;
    assert_eq!(
        Config::defaults()
            .expect("defaults")
            .server
            .default_language,
        Lang::En
    );
    for (text, lang) in [("ko", Lang::Ko), ("ko-KR", Lang::Ko), ("en-GB", Lang::En)] {
        let c = ok(&format!("[server]\ndefault_language = \"{text}\"\n"));
        assert_eq!(c.server.default_language, lang, "{text}");
    }
    let e = err("[server]\ndefault_language = \"ja\"\n");
    assert!(e.contains("server.default_language"), "{e}");
    assert!(e.contains("\"ja\""), "{e}");
    assert!(e.contains("\"en\"") && e.contains("\"ko\""), "{e}");
}
