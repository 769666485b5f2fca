//! Small answers every handler shares: a cookie added to an answer, a cookie's removal, the
//! 303 that follows a form, and a layer's finished page carried as an error.

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

/// A layer below the outermost one has answered with a finished page, after the request had
/// gone on inward (so the request itself is no longer its to answer with): the page travels as
/// an error, which [`super::errors`] hands on as it is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Answered(pub String);

/// `page` as the request's answer, for a layer whose request has gone inward (see [`Answered`]).
pub fn answered(why: impl std::fmt::Display, page: HttpResponse) -> actix_web::Error {
    actix_web::error::InternalError::from_response(Answered(why.to_string()), page).into()
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
