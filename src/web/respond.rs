//! Small answers every handler shares: a cookie added to an answer, a cookie's removal, the
//! 303 that follows a form, and an error's page changed on its way out.

use actix_web::http::header;
use actix_web::HttpResponse;

/// `res` with `cookie` added; a cookie that cannot be set is logged, never an error page.
pub fn with_cookie(mut res: HttpResponse, cookie: &actix_web::cookie::Cookie<'_>) -> HttpResponse {
    if let Err(e) = res.add_cookie(cookie) {
        tracing::error!(error = %e, cookie = cookie.name(), "could not set a cookie");
    }
    res
}

/// A cookie that deletes the cookie `name` (at path `/`) from the browser.
pub fn removal(name: &str, secure: bool) -> actix_web::cookie::Cookie<'static> {
    let mut cookie = actix_web::cookie::Cookie::build(name.to_owned(), "")
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Lax)
        .finish();
    cookie.make_removal();
    cookie
}

/// A 303 to `location`: the answer to every successful form.
pub fn see_other(location: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// An error's answer, changed by `edit` (headers every answer gets), as the error that now
/// carries it: an outer layer sees an error where an inner one failed, and its page is still
/// what reaches the client.
pub fn edit_error_page(
    err: &actix_web::Error,
    edit: impl FnOnce(&mut HttpResponse),
) -> actix_web::Error {
    let mut page = err.error_response();
    edit(&mut page);
    actix_web::error::InternalError::from_response(err.to_string(), page).into()
}
