//! Accounts: sessions at login, ids and names, logs, the user database.

use super::*;

#[actix_web::test]
async fn a_login_starts_from_a_clean_session() {
    let site = Site::new("");
    let app = start(&site).await;
    Browser::new().register(&app, "bob").await;
    let mut b = Browser::new();
    b.register(&app, "alice").await;
    for _ in 0..5 {
        b.get(&app, "/").await;
    }
    assert_eq!(
        b.login(&app, "bob", "password123").await.status,
        StatusCode::SEE_OTHER
    );
    let page = b.get(&app, "/").await;
    assert_eq!(page.element_text("user").as_deref(), Some("bob"));
    assert_eq!(
        page.element_text("visits").as_deref(),
        Some("1"),
        "alice's visits carried over"
    );
    // A registration too.
    b.get(&app, "/").await;
    b.register(&app, "carol").await;
    let page = b.get(&app, "/").await;
    assert_eq!(page.element_text("user").as_deref(), Some("carol"));
    assert_eq!(
        page.element_text("visits").as_deref(),
        Some("1"),
        "bob's visits carried over"
    );
}

#[actix_web::test]
async fn ids_are_one_account_in_any_case_and_lookalikes_are_refused() {
    let site = Site::new("");
    let app = start(&site).await;
    assert_eq!(
        Browser::new().register(&app, "Alice").await.status,
        StatusCode::SEE_OTHER
    );
    for twin in ["alice", "ALICE", "aLIce"] {
        assert_eq!(
            Browser::new().register(&app, twin).await.status,
            StatusCode::CONFLICT,
            "{twin}"
        );
    }
    let mut b = Browser::new();
    assert_eq!(
        b.login(&app, "ALICE", "password123").await.status,
        StatusCode::SEE_OTHER
    );
    let page = b.get(&app, "/").await;
    assert_eq!(
        page.element_text("user").as_deref(),
        Some("Alice"),
        "the account's own spelling, however it was typed at login"
    );
    let api = b.get(&app, "/api/session").await;
    assert!(api.body.contains("\"user_id\":\"Alice\""), "{}", api.body);
    for only_punctuation in [".", "..", "-", "_.-"] {
        let page = Browser::new().register(&app, only_punctuation).await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{only_punctuation:?}"
        );
        assert!(page.body.contains("at least one letter or digit"));
    }
    for (i, name) in [
        "ad\u{202E}nimda",
        "Al\u{200B}ice",
        "\u{2066}Bob\u{2069}",
        "Eve\u{FEFF}",
    ]
    .into_iter()
    .enumerate()
    {
        let page = register_from(&mut Browser::new(), &app, addr(9), &format!("n{i}"), name).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(page.body.contains("invisible"), "{name:?}");
    }
    let ok = register_from(&mut Browser::new(), &app, addr(9), "zoe", "Zoë Ångström").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn a_newline_in_a_user_id_cannot_forge_a_log_line() {
    let _ = logs();
    let site = Site::new("");
    let app = start(&site).await;
    // Within the 64 characters the handler keeps.
    let forged = "m\n2026-01-01T00:00:00Z  INFO session_server: forged\x1b[2J";
    let page = Browser::new().login(&app, forged, "whatever1").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let log = log_text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("forged")).collect();
    assert!(!lines.is_empty(), "the attempt was logged: {log}");
    for line in lines {
        assert!(line.contains("failed login"), "a forged line: {line:?}");
        assert!(line.contains("m\\n2026"), "escaped: {line:?}");
    }
    assert!(!log.contains('\x1b'), "an escape sequence reached the log");
}

/// A site whose folder holds `files` before the app is built.
fn site_with_files(config: &str, files: &[(&str, &str)]) -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    std::fs::write(dir.path().join("config.toml"), config).expect("write config");
    Site::in_folder(dir).expect("state")
}

#[actix_web::test]
async fn a_legacy_users_json_is_imported_at_first_start() {
    let hash = bcrypt::hash("legacy password", 4).expect("hash");
    let legacy = format!(
        r#"{{"version": 1, "users": {{"OldTimer": {{"name": "Old Timer", "password_hash": "{hash}", "created_at": "2024-05-01T10:00:00Z"}}}}}}"#
    );
    let site = site_with_files(
        "[session]\nlifetime = 60\n[auth]\nbcrypt_cost = 4\n",
        &[("users.json", &legacy)],
    );
    let dir = site.dir.path();
    assert!(dir.join("users.db").exists());
    assert!(!dir.join("users.json").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("users.json.imported")).expect("kept"),
        legacy
    );
    let app = start(&site).await;
    let mut b = Browser::new();
    assert_eq!(
        b.login(&app, "oldtimer", "legacy password").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        Browser::new().register(&app, "OLDTIMER").await.status,
        StatusCode::CONFLICT
    );
}

#[actix_web::test]
async fn a_login_rehashes_a_password_stored_at_another_cost() {
    let site = site(5, 5);
    let app = start(&site).await;
    Browser::new().register(&app, "dana").await;
    assert_eq!(site.state.users.stored_cost("dana").expect("db"), Some(5));
    // The same folder served with a lower configured cost, as after an edit and a restart.
    let config = site.dir.path().join("config-cost4.toml");
    std::fs::write(
        &config,
        "[session]\nlifetime = 60\n[auth]\nbcrypt_cost = 4\n",
    )
    .expect("write");
    let config = Config::load(&config).expect("valid");
    let master = session_server::secret::load_or_create(&site.dir.path().join("secret.key"), None)
        .expect("key");
    let state = AppState::new(config, master).expect("state");
    let app4 = actix_web::test::init_service(session_server::web::app(state)).await;
    let mut b = Browser::new();
    assert_eq!(
        b.login(&app4, "dana", "wrong password").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(site.state.users.stored_cost("dana").expect("db"), Some(5));
    assert_eq!(
        b.login(&app4, "dana", "password123").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(site.state.users.stored_cost("dana").expect("db"), Some(4));
    assert_eq!(
        Browser::new()
            .login(&app, "dana", "password123")
            .await
            .status,
        StatusCode::SEE_OTHER,
        "the new hash works everywhere"
    );
}

#[test]
fn two_processes_share_the_user_database() {
    use common::{block_on, server_config, ServerProcess, Tcp};
    let dir = tempfile::tempdir().expect("tempdir");
    let (config_a, addr_a) = server_config(dir.path(), "", "");
    let config_b = dir.path().join("config-b.toml");
    let port_b = common::free_port();
    let text_b = std::fs::read_to_string(&config_a)
        .expect("config")
        .replace(&addr_a.port().to_string(), &port_b.to_string());
    std::fs::write(&config_b, text_b).expect("write");
    let addr_b: SocketAddr = format!("127.0.0.1:{port_b}").parse().expect("addr");
    let a = ServerProcess::start(&config_a, addr_a);
    let b = ServerProcess::start(&config_b, addr_b);
    // Registrations on both at once, then each user logs in on the other process.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (here, name) = if i % 2 == 0 {
                (a.addr, "on-a")
            } else {
                (b.addr, "on-b")
            };
            std::thread::spawn(move || {
                block_on(Browser::new().register(&Tcp(here), &format!("{name}-{i}"))).status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("thread"), StatusCode::SEE_OTHER);
    }
    for i in 0..8 {
        let (there, name) = if i % 2 == 0 {
            (b.addr, "on-a")
        } else {
            (a.addr, "on-b")
        };
        let page =
            block_on(Browser::new().login(&Tcp(there), &format!("{name}-{i}"), "password123"));
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{name}-{i}");
    }
    assert!(
        !a.log().contains("ERROR") && !b.log().contains("ERROR"),
        "{}{}",
        a.log(),
        b.log()
    );
}

/// Ids longer than any valid one are cut for logs and counts, never for the password check: a
/// 64-character id with anything after it is nobody, not the 64-character user.
#[actix_web::test]
async fn an_overlong_id_is_nobody_not_its_first_64_characters() {
    let site = site(5, 4);
    let app = start(&site).await;
    let long = "a".repeat(64);
    let mut owner = Browser::new();
    register_from(&mut owner, &app, addr(1), &long, "Long").await;
    assert!(owner.get(&app, "/api/session").await.status.is_success());
    let mut other = Browser::new();
    let page = login_from(
        &mut other,
        &app,
        addr(2),
        &format!("{long}anything"),
        "password123",
    )
    .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    let page = login_from(&mut other, &app, addr(2), &long, "password123").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}
