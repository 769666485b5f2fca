//! Rotating the secret key logs nobody out, on every store type: a cookie under the previous key
//! (session, CSRF, flash, known device) is accepted after the rotation and comes back under the
//! new key alone; once the previous key is retired, a cookie under it is anonymous. The
//! in-process tests restart with `AppState::new` over the same config; the binary test runs the
//! real `secret rotate` and `secret retire` between real restarts.

use std::path::Path;

use actix_web::cookie::{CookieJar, Key};
use actix_web::http::StatusCode;
use session_server::secret::{self, EnvKeys, Keyring};
use session_server::web::{AppState, CookieKeys};

use crate::common::{self, start, Browser, Page, Site, StoreKind};

fn logged_in_as(page: &Page, user: &str) -> bool {
    page.status == StatusCode::OK && page.element_text("user").as_deref() == Some(user)
}

/// Whether `value`, the cookie `name`'s value, opens under `key` (signed, or for the cookie
/// type's session, encrypted).
fn opens(key: &Key, name: &str, value: &str, encrypted: bool) -> bool {
    // As a browser sends it back: percent-decoded.
    let Ok(cookie) = actix_web::cookie::Cookie::parse_encoded(format!("{name}={value}")) else {
        return false;
    };
    let mut jar = CookieJar::new();
    jar.add_original(cookie.into_owned());
    if encrypted {
        jar.private(key).get(name).is_some()
    } else {
        jar.signed(key).get(name).is_some()
    }
}

/// The keys a restart of `site` would read from its files.
fn keyring_of(site: &Site) -> Keyring {
    let s = &site.state.config.session;
    Keyring::load_or_create(
        &s.secret_key_file,
        &s.secret_key_fallbacks,
        &EnvKeys::default(),
    )
    .expect("keys")
}

/// `site` started again with the keys its files hold now (a memory store does not outlive its
/// process, so a restart keeps the same one: the rotation, not the restart, is under test).
fn restarted(site: &Site, kind: StoreKind) -> AppState {
    let config = (*site.state.config).clone();
    let mut state = AppState::new(config, keyring_of(site)).expect("state");
    if kind.name == "memory" {
        state.store = site.state.store.clone();
    }
    state
}

async fn rotating_the_key_logs_nobody_out(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let encrypted = !site.keeps_sessions();
    let file = site.state.config.session.secret_key_file.clone();
    let old = secret::load_or_create(&file, None).expect("old key");
    let old_keys = CookieKeys::derive(&old);

    // Before: alice is logged in (session and device cookies), bob holds an anonymous CSRF
    // token and its form, carol has just logged out (a flash message waits in her cookie).
    let before = start(&site).await;
    let mut alice = Browser::new();
    alice.register(&before, "alice").await;
    assert!(logged_in_as(&alice.get(&before, "/").await, "alice"));
    Browser::new().register(&before, "bob").await;
    let mut bob = Browser::new();
    let form = bob.get(&before, "/login").await.csrf_token();
    assert!(bob.cookies.contains_key("session_csrf"));
    let mut carol = Browser::new();
    carol.register(&before, "carol").await;
    let token = carol.get(&before, "/").await.csrf_token();
    let out = carol
        .post(&before, "/logout", &[("csrf_token", &token)])
        .await;
    let after_logout = out.location().expect("logout redirects").to_owned();
    assert!(carol.cookies.contains_key("session_flash"), "{out:?}");
    let alice_before = alice.clone();

    // The rotation, then a restart.
    let rotated = secret::rotate(&file, &EnvKeys::default()).expect("rotate");
    assert_eq!(rotated.kept, file.with_file_name("secret.key.1"));
    let new = secret::load_or_create(&file, None).expect("new key");
    assert_ne!(new.master(), old.master());
    let new_keys = CookieKeys::derive(&new);
    let after = common::start_state(restarted(&site, kind)).await;

    // A cookie of another app on the domain, not ASCII, in the same header: alice's own old
    // cookies beside it are still re-sealed (the header is read as actix-web reads it).
    let mut line: Vec<u8> = alice
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}; "))
        .collect::<String>()
        .into_bytes();
    line.extend_from_slice("theme=Zoë".as_bytes());
    let req = actix_web::test::TestRequest::get().uri("/").insert_header((
        actix_web::http::header::COOKIE,
        actix_web::http::header::HeaderValue::from_bytes(&line).expect("header"),
    ));
    let page = alice.clone().send(&after, req).await;
    assert!(logged_in_as(&page, "alice"), "{}: {page:?}", kind.name);

    // alice is still logged in, and the answer carries her session and device cookies under
    // the new key alone (never re-signed with the old one: CVE-2025-47278).
    let page = alice.get(&after, "/").await;
    assert!(logged_in_as(&page, "alice"), "{}: {page:?}", kind.name);
    let session = page
        .set_cookie("session")
        .expect("the session cookie is re-issued");
    assert!(opens(
        &new_keys.session,
        "session",
        session.value(),
        encrypted
    ));
    assert!(!opens(
        &old_keys.session,
        "session",
        session.value(),
        encrypted
    ));
    let device = page
        .set_cookie("session_device")
        .expect("the device cookie is re-issued");
    assert!(opens(
        &new_keys.device,
        "session_device",
        device.value(),
        false
    ));
    assert!(!opens(
        &old_keys.device,
        "session_device",
        device.value(),
        false
    ));
    let page = alice.get(&after, "/").await;
    assert!(logged_in_as(&page, "alice"));

    // bob's form, made before the rotation, still logs him in: his CSRF cookie was accepted.
    let login = bob.post_login(&after, "bob", "password123", &form).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{login:?}");
    assert!(logged_in_as(&bob.get(&after, "/").await, "bob"));

    // carol's flash message, signed before the rotation, is shown after it.
    let page = carol.get(&after, &after_logout).await;
    assert!(page.body.contains(r#"class="flash info""#), "{page:?}");

    // The previous key retired: a cookie under it is anonymous; alice's re-issued one is not.
    let removed = secret::retire(&file, &EnvKeys::default(), 0).expect("retire");
    assert_eq!(removed, vec![rotated.kept.clone()]);
    let retired = common::start_state(restarted(&site, kind)).await;
    assert!(logged_in_as(&alice.get(&retired, "/").await, "alice"));
    let mut stale = alice_before;
    let page = stale.get(&retired, "/").await;
    assert!(!logged_in_as(&page, "alice"), "{page:?}");
}

crate::for_every_store_type!(rotating_the_key_logs_nobody_out);

/// The same over the built binary: `secret rotate` between two real starts, `secret retire`
/// before a third. The files are mode 0600, and the command says what to do next.
#[test]
fn secret_rotate_and_retire_between_real_restarts() {
    use common::{block_on, server_config, ServerProcess, Tcp, BIN};
    let dir = tempfile::tempdir().expect("tempdir");
    let sessions = dir.path().join("sessions");
    let (config, addr) = server_config(
        dir.path(),
        "",
        &format!("dir = {:?}", sessions.display().to_string()),
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove(secret::ENV_VAR)
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let server = ServerProcess::start(&config, addr);
    let via = Tcp(addr);
    let mut alice = Browser::new();
    block_on(alice.register(&via, "alice"));
    assert!(logged_in_as(&block_on(alice.get(&via, "/")), "alice"));
    let before = alice.clone();
    drop(server);

    let said = run(&["secret", "rotate"]);
    let key = dir.path().join("secret.key");
    let kept = dir.path().join("secret.key.1");
    assert!(
        said.contains("secret.key.1") && said.contains("restart"),
        "{said}"
    );
    for file in [&key, &kept] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(file).expect("key file").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    let check = run(&["config", "check"]);
    assert!(
        check.contains("secret.key (signs); also accepted:") && check.contains("secret.key.1"),
        "{check}"
    );
    assert_no_key_bytes(&check, &key);

    let server = ServerProcess::start(&config, addr);
    let page = block_on(alice.get(&via, "/"));
    assert!(logged_in_as(&page, "alice"), "{page:?}");
    let new = secret::load_or_create(&key, None).expect("key");
    let reissued = page.set_cookie("session").expect("re-issued");
    assert!(opens(
        &CookieKeys::derive(&new).session,
        "session",
        reissued.value(),
        false
    ));
    drop(server);

    let said = run(&["secret", "retire"]);
    assert!(said.contains("secret.key.1") && !kept.exists(), "{said}");
    let _server = ServerProcess::start(&config, addr);
    assert!(logged_in_as(&block_on(alice.get(&via, "/")), "alice"));
    let mut stale = before;
    assert!(!logged_in_as(&block_on(stale.get(&via, "/")), "alice"));
}

fn assert_no_key_bytes(text: &str, key: &Path) {
    use base64::Engine;
    let bytes = std::fs::read(key).expect("key");
    for shown in [
        hex::encode(&bytes),
        base64::engine::general_purpose::STANDARD.encode(&bytes),
    ] {
        assert!(!text.contains(&shown[..16]), "the key's bytes are printed");
    }
}
