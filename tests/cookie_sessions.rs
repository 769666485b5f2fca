//! The `cookie` type over HTTP, beyond the page suites: the cookie holds the session encrypted,
//! a session that outgrows what a browser keeps gets the 413 page and keeps its previous state,
//! and the server ends a copied cookie at its end whatever the browser does.

mod common;

use actix_session::{Session, SessionExt};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{test, web, App, HttpRequest, HttpResponse};
use common::{Browser, Site};
use session_server::web::errors::every_response;

/// The real session middleware and error pages around two routes that let a test grow the
/// session and read it.
async fn grow_app(
    site: &Site,
) -> impl actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    let state = site.state.clone();
    let session = state.session_middleware();
    test::init_service(
        App::new()
            .app_data(web::Data::new(state))
            .service(
                web::scope("")
                    .route(
                        "/grow/{bytes}",
                        web::get().to(|req: HttpRequest, path: web::Path<usize>| async move {
                            let session: Session = req.get_session();
                            session
                                .insert("pad", "x".repeat(path.into_inner()))
                                .map(|()| HttpResponse::Ok().body("grown"))
                        }),
                    )
                    .route(
                        "/pad",
                        web::get().to(|session: Session| async move {
                            let pad: Option<String> = session.get("pad").unwrap_or(None);
                            HttpResponse::Ok().body(pad.map_or(0, |p| p.len()).to_string())
                        }),
                    )
                    .wrap(session),
            )
            .wrap(from_fn(every_response)),
    )
    .await
}

fn cookie_site(lifetime: u64) -> Site {
    Site::with_config(&format!(
        "[session]\ntype = \"cookie\"\nlifetime = {lifetime}\n[auth]\nbcrypt_cost = 4\n"
    ))
}

#[actix_web::test]
async fn a_session_past_what_a_browser_keeps_gets_413_and_keeps_its_state() {
    let site = cookie_site(60);
    let app = grow_app(&site).await;
    let mut b = Browser::new();
    assert_eq!(b.get(&app, "/grow/2000").await.status, StatusCode::OK);
    let cookie = b
        .session_cookie()
        .expect("the session is the cookie")
        .clone();
    assert!(
        cookie.len() > 2000 && cookie.len() < 4096,
        "{}",
        cookie.len()
    );
    assert!(!cookie.contains("xxxx"), "the payload is encrypted");

    let too_big = b.get(&app, "/grow/3500").await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        too_big.body.contains("Session too large"),
        "{}",
        too_big.body
    );
    assert_eq!(b.session_cookie(), Some(&cookie), "the old cookie stays");
    assert_eq!(
        b.get(&app, "/pad").await.body,
        "2000",
        "and so does its session"
    );
}

#[actix_web::test]
async fn a_copied_cookie_is_refused_once_its_session_has_ended() {
    let site = cookie_site(1);
    let app = grow_app(&site).await;
    let mut b = Browser::new();
    b.get(&app, "/grow/10").await;
    assert_eq!(b.get(&app, "/pad").await.body, "10");
    let mut thief = b.clone();
    site.pass(std::time::Duration::from_millis(2100)).await;
    // The browser would have dropped it; a copy sent on after the end is no session.
    assert_eq!(thief.get(&app, "/pad").await.body, "0");
}
