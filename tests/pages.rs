//! The pages over HTTP: what anonymous and logged-in visitors see, registration, login, logout,
//! CSRF, error pages and headers; on every store type, and on the engines as production runs
//! them (TLS, a TLS Cluster, Sentinel, PostgreSQL with verify-full).

mod common;

use actix_web::http::{header, StatusCode};
use common::{start, Browser, Site, StoreKind};

for_every_setup!(
    anonymous_pages_show_the_way_in_and_write_nothing,
    register_logs_in_and_counts_visits_in_one_file,
    login_rotates_the_session_id_and_never_adopts_a_chosen_one,
    wrong_credentials_get_one_generic_message,
    registration_says_what_is_wrong,
    logout_deletes_the_session_and_the_old_cookie_is_worthless,
    every_form_refuses_a_bad_csrf_token,
    error_pages_health_and_headers,
    api_session_reads_without_changing
);

async fn anonymous_pages_show_the_way_in_and_write_nothing(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    let home = b.get(&app, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body
            .contains(r#"id="login-link" class="button" href="/login""#),
        "{}",
        home.body
    );
    assert!(home.body.contains(r#"href="/register""#));
    assert!(home.element_text("user").is_none());

    let login = b.get(&app, "/login").await;
    assert_eq!(login.status, StatusCode::OK);
    for field in [
        r#"name="user_id" type="text" autocomplete="username""#,
        r#"name="password" type="password" autocomplete="current-password""#,
        r#"type="hidden" name="csrf_token""#,
    ] {
        assert!(login.body.contains(field), "login form lacks {field}");
    }
    let register = b.get(&app, "/register").await;
    for field in [
        "user_id",
        "user_name",
        "password",
        "repassword",
        "csrf_token",
    ] {
        assert!(
            register.body.contains(&format!("name=\"{field}\"")),
            "register form lacks {field}"
        );
    }
    assert!(
        b.session_cookie().is_none(),
        "anonymous views get no session cookie"
    );
    assert_eq!(
        site.all_files(),
        Vec::<std::path::PathBuf>::new(),
        "anonymous views write no file"
    );
    site.expect_sessions(0, "nor any session").await;
}

async fn register_logs_in_and_counts_visits_in_one_file(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    let res = b.register(&app, "alice").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/"));
    let home = b.get(&app, "/").await;
    assert_eq!(home.element_text("user").as_deref(), Some("alice"));
    assert_eq!(home.element_text("visits").as_deref(), Some("1"));
    assert!(
        home.body.contains(r#"class="flash info""#),
        "welcome flash shown: {}",
        home.body
    );
    assert!(home.body.contains(r#"action="/logout""#));
    let again = b.get(&app, "/").await;
    assert_eq!(again.element_text("visits").as_deref(), Some("2"));
    assert!(
        !again.body.contains("class=\"flash"),
        "a flash is shown once"
    );

    if !site.keeps_sessions() {
        // A cookie session: the cookie is the session, encrypted; nothing is on the server.
        let cookie = b.session_cookie().expect("cookie").clone();
        assert!(
            !cookie.contains("alice") && !cookie.contains("visits"),
            "{cookie}"
        );
        return;
    }
    let stems = site.sessions().await;
    assert_eq!(stems.len(), 1, "one session, one record");
    // The session is stored under a hash of the id, never the id itself.
    let id = b.session_cookie().expect("cookie").clone();
    assert_eq!(stems[0].len(), 64);
    assert!(!stems[0].contains(&id) && !id.contains(&stems[0]));
    if let Some(records) = site.stored_records().await {
        assert_eq!(records.len(), 1);
        let text = &records[0];
        let doc: serde_json::Value = serde_json::from_str(text).expect("the record is JSON");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["data"]["user_id"], "alice");
        assert_eq!(doc["data"]["visits"], 2);
        assert_eq!(doc["ttl_seconds"], 60);
        assert!(doc["expires_at"].as_str().is_some_and(|s| s.ends_with('Z')));
        assert!(doc["created_at"].is_string());
        assert!(
            !text.contains("password123"),
            "the password is never in a session"
        );
        // Indented, one key per line (a file and redis-cli show two spaces, psql's
        // jsonb_pretty four).
        assert!(
            text.contains("\n  ") && text.contains("\"data\": {\n"),
            "pretty-printed: {text}"
        );
    }
    if kind.name != "filesystem" {
        return;
    }
    let files = site.session_files();
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_owned();
    assert_eq!(name, format!("{}.json", stems[0]));

    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&files[0]), 0o600);
    assert_eq!(mode(&site.sessions_dir()), 0o700);
    let users = std::fs::read(&site.state.config.auth.users_db).expect("users");
    assert!(!String::from_utf8_lossy(&users).contains("password123"));
    assert_eq!(mode(&site.state.config.auth.users_db), 0o600);
}

async fn login_rotates_the_session_id_and_never_adopts_a_chosen_one(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "bob").await;
    let first = b.session_cookie().expect("logged in").clone();
    let first_session = site.sessions().await;

    let res = b.login(&app, "bob", "password123").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let second = b.session_cookie().expect("still logged in").clone();
    assert_ne!(first, second, "login gives a new id");
    site.expect_sessions(1, "the old session is gone").await;
    if site.keeps_sessions() {
        assert_ne!(site.sessions().await, first_session);
    }

    // A client that brings its own (validly signed) id gets a fresh one at login instead.
    let chosen = "A".repeat(43);
    let mut c = Browser::new();
    c.cookies.insert(
        "session".into(),
        common::signed_cookie_value(&site.key(), "session", &chosen),
    );
    let res = c.login(&app, "bob", "password123").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let got = res.set_cookie("session").expect("new cookie");
    assert!(!got.value().ends_with(&chosen), "chosen id adopted");
    assert_eq!(
        site.state.store.expires_at(&chosen).await.expect("store"),
        None,
        "no session was stored under the chosen id"
    );
    assert_eq!(
        c.get(&app, "/").await.element_text("user").as_deref(),
        Some("bob")
    );
}

async fn wrong_credentials_get_one_generic_message(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    b.register(&app, "carol").await;
    let mut anon = Browser::new();
    let wrong_password = anon.login(&app, "carol", "nope-nope-nope").await;
    let no_such_user = anon.login(&app, "dave", "nope-nope-nope").await;
    for page in [&wrong_password, &no_such_user] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body
                .contains(r#"class="flash error" role="alert">Invalid user id or password."#),
            "{}",
            page.body
        );
        assert_eq!(page.body.matches("class=\"flash").count(), 1);
    }
    assert!(anon.session_cookie().is_none());
}

async fn registration_says_what_is_wrong(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    assert_eq!(b.register(&app, "erin").await.status, StatusCode::SEE_OTHER);
    let mut anon = Browser::new();
    let token = anon.get(&app, "/register").await.csrf_token();
    let attempt = |id: &'static str, pw: &'static str, re: &'static str| {
        let token = token.clone();
        let app = &app;
        let mut anon = anon.clone();
        async move {
            anon.post(
                app,
                "/register",
                &[
                    ("user_id", id),
                    ("user_name", "Someone"),
                    ("password", pw),
                    ("repassword", re),
                    ("csrf_token", &token),
                ],
            )
            .await
        }
    };
    let dup = attempt("erin", "password123", "password123").await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(dup.body.contains("already taken"));
    let mismatch = attempt("frank", "password123", "password124").await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("do not match"));
    assert!(
        mismatch.body.contains(r#"value="frank""#),
        "entered id kept"
    );
    let bad_id = attempt("no spaces!", "password123", "password123").await;
    assert_eq!(bad_id.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_id.body.contains("User id must be 1 to 64 characters"));
    let long_id: &'static str = Box::leak("x".repeat(65).into_boxed_str());
    assert_eq!(
        attempt(long_id, "password123", "password123").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let short = attempt("gina", "short", "short").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("at least 8 characters"));
    site.expect_sessions(1, "refused registrations make no session")
        .await;
}

async fn logout_deletes_the_session_and_the_old_cookie_is_worthless(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    for method in ["GET", "POST"] {
        let mut b = Browser::new();
        b.register(&app, &format!("henry-{method}")).await;
        let before = b.clone();
        let home = b.get(&app, "/").await;
        site.expect_sessions(1, "logged in").await;
        let res = if method == "GET" {
            b.get(&app, "/logout").await
        } else {
            b.post(&app, "/logout", &[("csrf_token", &home.csrf_token())])
                .await
        };
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{method}");
        assert_eq!(res.location(), Some("/login"));
        let removal = res.set_cookie("session").expect("cookie removed");
        assert_eq!(
            removal.max_age(),
            Some(actix_web::cookie::time::Duration::ZERO)
        );
        site.expect_sessions(0, "server-side session deleted").await;
        assert!(b
            .get(&app, "/login")
            .await
            .body
            .contains("You have been logged out."));
        // Replaying the old cookie: anonymous, and nothing comes back to life.
        let mut replay = before;
        let page = replay.get(&app, "/").await;
        assert_eq!(page.status, StatusCode::OK);
        if site.keeps_sessions() {
            assert!(page.element_text("user").is_none());
        } else {
            // Flask's cookie sessions have the same flaw: nothing on the server can end a copy
            // of the cookie before its end (the README says so).
            assert_eq!(
                page.element_text("user").as_deref(),
                Some(&*format!("henry-{method}"))
            );
        }
        site.expect_sessions(0, "nothing comes back").await;
    }
}

async fn every_form_refuses_a_bad_csrf_token(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let mut victim = Browser::new();
    victim.register(&app, "ivy").await;
    let victim_token = victim.get(&app, "/").await.csrf_token();
    let mut other = Browser::new();
    other.register(&app, "jack").await;
    let other_token = other.get(&app, "/").await.csrf_token();
    let mut anon = Browser::new();
    let anon_token = anon.get(&app, "/login").await.csrf_token();
    let mut stranger = Browser::new();
    let stranger_token = stranger.get(&app, "/login").await.csrf_token();

    let forged = "A".repeat(43);
    for token in [
        None,
        Some(""),
        Some(forged.as_str()),
        Some(other_token.as_str()),
    ] {
        let mut form = vec![];
        if let Some(t) = token {
            form.push(("csrf_token", t));
        }
        let res = victim.post(&app, "/logout", &form).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "logout with {token:?}");
        assert!(res
            .body
            .contains("This form has expired or did not come from this site"));
    }
    assert_eq!(
        victim.get(&app, "/").await.element_text("user").as_deref(),
        Some("ivy"),
        "still logged in"
    );
    // The victim's own token works: the refusals above were about the token, nothing else.
    let own = victim
        .post(&app, "/logout", &[("csrf_token", &victim_token)])
        .await;
    assert_eq!(own.status, StatusCode::SEE_OTHER, "{}", own.body);
    assert!(victim.get(&app, "/").await.element_text("user").is_none());

    for token in ["", forged.as_str(), stranger_token.as_str()] {
        let login = anon.post_login(&app, "ivy", "password123", token).await;
        assert_eq!(
            login.status,
            StatusCode::BAD_REQUEST,
            "login with {token:?}"
        );
        let reg = anon
            .post(
                &app,
                "/register",
                &[
                    ("user_id", "kim"),
                    ("user_name", "K"),
                    ("password", "password123"),
                    ("repassword", "password123"),
                    ("csrf_token", token),
                ],
            )
            .await;
        assert_eq!(
            reg.status,
            StatusCode::BAD_REQUEST,
            "register with {token:?}"
        );
    }
    // A token without its cookie (a cross-site form) is refused too.
    let mut cross_site = Browser::new();
    let res = cross_site
        .post_login(&app, "ivy", "password123", &anon_token)
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    // The right one works.
    let ok = anon
        .post_login(&app, "ivy", "password123", &anon_token)
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

async fn error_pages_health_and_headers(kind: StoreKind) {
    let Some(site) = Site::of(kind, "") else {
        return;
    };
    let app = start(&site).await;
    let mut b = Browser::new();
    let missing = b.get(&app, "/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("Page not found"));
    let wrong_method = b
        .send(&app, actix_web::test::TestRequest::delete().uri("/login"))
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.body.contains("<h1>Method not allowed</h1>"));
    let not_a_form = b
        .send(
            &app,
            actix_web::test::TestRequest::post()
                .uri("/login")
                .set_payload("{}")
                .insert_header((header::CONTENT_TYPE, "application/json")),
        )
        .await;
    assert_eq!(not_a_form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(not_a_form.body.contains("<h1>Unsupported form</h1>"));
    let huge = "x".repeat(64 * 1024);
    let too_big = b.post(&app, "/login", &[("user_id", &huge)]).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(b.get(&app, "/healthz").await.status, StatusCode::OK);
    let css = b.get(&app, "/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/css")));

    b.register(&app, "lee").await;
    let home = b.get(&app, "/").await;
    let h = |name: &str| {
        home.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(h("cache-control"), "no-store, private");
    assert!(h("vary").contains("Cookie"));
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(!h("content-security-policy").contains("unsafe-inline"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "same-origin");
    assert!(missing.headers.contains_key("content-security-policy"));
}

async fn api_session_reads_without_changing(kind: StoreKind) {
    for refresh in [true, false] {
        let Some(site) = Site::of(kind, &format!("refresh_each_request = {refresh}\n")) else {
            return;
        };
        let app = start(&site).await;
        let mut b = Browser::new();
        let anon = b.get(&app, "/api/session").await;
        assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = serde_json::from_str(&anon.body).expect("json");
        assert_eq!(body["error"], "not logged in");
        site.expect_sessions(0, "anonymous").await;

        b.register(&app, "api-user").await;
        b.get(&app, "/").await;
        for _ in 0..3 {
            let res = b.get(&app, "/api/session").await;
            assert_eq!(res.status, StatusCode::OK);
            let v: serde_json::Value = serde_json::from_str(&res.body).expect("json");
            assert_eq!(v["user_id"], "api-user");
            assert_eq!(v["visits"], 1, "reading does not count");
            let expires = v["expires_at"].as_str().expect("expires_at");
            let Some(records) = site.stored_records().await else {
                continue;
            };
            let file: serde_json::Value = serde_json::from_str(&records[0]).expect("json");
            assert!(
                file["data"].get("$expires_at").is_none(),
                "reserved key never stored"
            );
            if !refresh {
                assert_eq!(
                    file["expires_at"].as_str(),
                    Some(expires),
                    "the stored expiry"
                );
            }
        }
    }
}
