//! Login and registration throttling.

use super::*;

#[actix_web::test]
async fn failed_logins_are_throttled_with_retry_after() {
    let _ = logs();
    let site = site(3, 4);
    let app = start(&site).await;
    let mut owner = Browser::new();
    owner.register(&app, "victim").await;
    let mut attacker = Browser::new();
    for i in 0..3 {
        let guess = format!("guess-number-{i}");
        assert_eq!(
            attacker.login(&app, "victim", &guess).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let blocked = attacker.login(&app, "victim", "password123").await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits, from a browser that is not a known device"
    );
    let retry = retry_after(&blocked);
    assert!((1..=600).contains(&retry), "{retry}");
    assert!(blocked.body.contains("Too many failed logins"));
    assert!(blocked
        .body
        .contains(&format!("Try again in {retry} second")));
    let log = log_text();
    assert!(log.contains("failed login"), "the failures were logged");
    assert!(
        !log.contains("guess-number-") && !log.contains("password123"),
        "a password reached the log"
    );
    // Another account is not blocked by this one's failures.
    let mut other = Browser::new();
    other.register(&app, "bystander").await;
    assert_eq!(
        other.login(&app, "bystander", "password123").await.status,
        StatusCode::SEE_OTHER
    );
}

#[actix_web::test]
async fn parallel_wrong_passwords_are_checked_at_most_the_limit() {
    let site = site(5, 4);
    let app = start(&site).await;
    Browser::new().register(&app, "target").await;
    let mut attacker = Browser::new();
    let token = attacker.get(&app, "/login").await.csrf_token();
    let answers = join_all((0..16).map(|i| {
        let mut b = attacker.clone();
        let (app, token) = (&app, token.clone());
        async move {
            b.post_login(app, "target", &format!("wrong-{i}"), &token)
                .await
                .status
        }
    }))
    .await;
    let checked = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {answers:?}"
    );
    assert_eq!(checked + refused, 16, "{answers:?}");
}

/// The site's throttle counters (SQLite, in the site's user database, as the site opens them),
/// telling how many attempts they have let through.
struct Observed {
    counters: session_server::engines::sqlite::SqliteCounters,
    let_through: tokio::sync::watch::Sender<usize>,
}

impl session_server::web::throttle::Counters for Observed {
    fn reserve(
        &self,
        plan: &session_server::web::throttle::Plan,
    ) -> Result<Option<Duration>, session_server::web::throttle::ThrottleError> {
        let wait = self.counters.reserve(plan);
        if matches!(wait, Ok(None)) {
            self.let_through.send_modify(|n| *n += 1);
        }
        wait
    }

    fn give_back(
        &self,
        keys: &[String],
        clear: &[String],
        member: &str,
    ) -> Result<(), session_server::web::throttle::ThrottleError> {
        self.counters.give_back(keys, clear, member)
    }
}

#[actix_web::test]
async fn the_right_password_behind_parallel_guesses_does_not_log_in() {
    // A cost that keeps the guesses hashing while the right password arrives.
    let mut site = site(5, 10);
    let (let_through, mut counted) = tokio::sync::watch::channel(0);
    let auth = &site.state.config.auth;
    let counters = session_server::engines::sqlite::SqliteCounters::open(&auth.users_db)
        .expect("the site's throttle counters");
    site.state.throttle = Arc::new(session_server::web::throttle::LoginThrottle::with_counters(
        auth.max_failed_logins,
        auth.failed_login_window,
        Box::new(Observed {
            counters,
            let_through,
        }),
    ));
    let app = start(&site).await;
    Browser::new().register(&app, "target").await;
    let registered = *counted.borrow_and_update();
    let mut attacker = Browser::new();
    let token = attacker.get(&app, "/login").await.csrf_token();
    let guesses = (0..15).map(|i| {
        let mut b = attacker.clone();
        let (app, token) = (&app, token.clone());
        Box::pin(async move {
            b.post_login(app, "target", &format!("wrong-{i}"), &token)
                .await
                .status
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = StatusCode>>>
    });
    let mut b = attacker.clone();
    let right = Box::pin(async {
        // Once the guesses have spent the limit (5 let through by the throttle, the others
        // waiting for their turn), not after a guess at how long that takes.
        tokio::time::timeout(
            Duration::from_secs(60),
            counted.wait_for(|n| *n >= registered + 5),
        )
        .await
        .expect("5 guesses counted within 60 s")
        .expect("the counters live as long as the site");
        b.post_login(&app, "target", "password123", &token)
            .await
            .status
    });
    type Answer<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = StatusCode> + 'a>>;
    let right: Answer<'_> = right;
    let answers = join_all(guesses.chain([right])).await;
    assert_eq!(
        answers[15],
        StatusCode::TOO_MANY_REQUESTS,
        "the limit was spent by the guesses in flight: {answers:?}"
    );
    assert!(!answers.contains(&StatusCode::SEE_OTHER), "{answers:?}");
}

#[actix_web::test]
async fn guesses_from_anywhere_never_slow_the_owner_on_a_known_device() {
    let site = site(3, 4);
    let app = start(&site).await;
    let mut owner = Browser::new();
    register_from(&mut owner, &app, addr(1), "owner", "Owner").await;
    owner.get(&app, "/logout").await;
    // Guesses from the owner's own address (one NAT), then from many others until the user id
    // as a whole is slowed.
    let mut attacker = Browser::new();
    for _ in 0..10 {
        login_from(&mut attacker, &app, addr(1), "owner", "guess").await;
    }
    let mut slowed = None;
    for i in 0..30u8 {
        // Each address guesses twice: its second guess meets the user-wide delay.
        for _ in 0..2 {
            let page = login_from(&mut attacker, &app, addr(100 + i), "owner", "guess").await;
            if page.status == StatusCode::TOO_MANY_REQUESTS {
                slowed = Some(i);
            }
        }
        if slowed.is_some() {
            break;
        }
    }
    assert!(
        slowed.is_some(),
        "an address that has guessed is slowed for this user id once it is under attack"
    );
    let known = login_from(&mut owner, &app, addr(1), "owner", "password123").await;
    assert_eq!(known.status, StatusCode::SEE_OTHER, "{}", known.body);
    // The owner on a new browser, from an address that has not guessed: in at once.
    let mut new_phone = Browser::new();
    let fresh = login_from(&mut new_phone, &app, addr(250), "owner", "password123").await;
    assert_eq!(fresh.status, StatusCode::SEE_OTHER, "{}", fresh.body);
}

#[actix_web::test]
async fn a_busy_address_does_not_lock_out_known_devices_behind_it() {
    let site = site(2, 4);
    let app = start(&site).await;
    let mut regular = Browser::new();
    register_from(&mut regular, &app, addr(7), "regular", "Regular").await;
    regular.get(&app, "/logout").await;
    let mut sprayer = Browser::new();
    for i in 0..12 {
        login_from(&mut sprayer, &app, addr(7), &format!("user{i}"), "guess").await;
    }
    let sprayed = login_from(&mut Browser::new(), &app, addr(7), "someone", "x").await;
    assert_eq!(sprayed.status, StatusCode::TOO_MANY_REQUESTS);
    let back = login_from(&mut regular, &app, addr(7), "regular", "password123").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn delays_double_and_then_let_the_attempt_through() {
    let site = site(1, 4);
    let app = start(&site).await;
    Browser::new().register(&app, "slow").await;
    let mut b = Browser::new();
    let first = login_from(&mut b, &app, addr(3), "slow", "wrong").await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    let waits = login_from(&mut b, &app, addr(3), "slow", "wrong").await;
    assert_eq!(waits.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&waits), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = login_from(&mut b, &app, addr(3), "slow", "wrong").await;
    assert_eq!(
        second.status,
        StatusCode::UNAUTHORIZED,
        "a delay, not a wall"
    );
    let waits = login_from(&mut b, &app, addr(3), "slow", "password123").await;
    assert_eq!(waits.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&waits), 2, "the delay doubled");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let ok = login_from(&mut b, &app, addr(3), "slow", "password123").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn registration_is_throttled_per_address() {
    let site = site(1, 4);
    let app = start(&site).await;
    for i in 0..4 {
        let page = register_from(&mut Browser::new(), &app, addr(5), &format!("r{i}"), "R").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "registration {i}");
    }
    let fifth = register_from(&mut Browser::new(), &app, addr(5), "r4", "R").await;
    assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&fifth) >= 1);
    let elsewhere = register_from(&mut Browser::new(), &app, addr(6), "r5", "R").await;
    assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn registration_waits_while_the_address_waits_for_login() {
    let site = site(1, 4);
    let app = start(&site).await;
    let mut sprayer = Browser::new();
    for i in 0..4 {
        login_from(&mut sprayer, &app, addr(8), &format!("nobody{i}"), "guess").await;
    }
    let page = register_from(&mut Browser::new(), &app, addr(8), "newcomer", "N").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}
