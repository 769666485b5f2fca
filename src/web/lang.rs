//! Which language a page is in, and the switch link: the request's [`Lang`] (see
//! [`crate::i18n`] for the order of preference), the values every page's header needs to offer
//! the other language, and `GET /lang/{code}`, which remembers the choice in the `lang` cookie
//! (a preference kept in the browser, not in the session, so that it outlives a logout) and
//! goes back to the page the link was on.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;

use super::AppState;
use crate::i18n::{self, Lang};

/// How long the language cookie is kept: a preference, so a year.
const COOKIE_DAYS: i64 = 365;

/// The language of the answer to `req`.
pub fn of(req: &HttpRequest, default: Lang) -> Lang {
    if let Some(chosen) = req
        .cookie(i18n::COOKIE)
        .and_then(|c| Lang::parse(c.value()))
    {
        return chosen;
    }
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or(default)
}

/// Adds what the layout needs: `lang`, and the switch link to the other language, which comes
/// back to `path`.
pub fn insert(ctx: &mut Context, lang: Lang, path: &str) {
    let other = lang.other();
    ctx.insert("lang", lang.tag());
    ctx.insert("switch_lang", other.code());
    ctx.insert("switch_name", other.own_name());
    let query = serde_urlencoded::to_string([("next", local_path(path))]).unwrap_or_default();
    ctx.insert("switch_href", &format!("/lang/{}?{query}", other.code()));
}

/// `path` if it is a path on this site, else `/`: the switch link must not become a way to
/// send people elsewhere (`//evil.example`, `/\evil.example` and schemes are all refused).
fn local_path(path: &str) -> &str {
    let on_this_site = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        // Also what a Location header can carry as is (a request's own path is still encoded).
        && path.bytes().all(|b| b.is_ascii_graphic());
    if on_this_site {
        path
    } else {
        "/"
    }
}

#[derive(Deserialize)]
pub struct Switch {
    #[serde(default)]
    next: String,
}

/// `GET /lang/{code}`: remembers the language and goes back to `next` (a local path only).
/// A language there are no messages for is a 404.
pub async fn switch(
    req: HttpRequest,
    code: web::Path<String>,
    query: web::Query<Switch>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(lang) = Lang::parse(&code) else {
        return super::pages::not_found_page(&req, &state, None);
    };
    let cookie = Cookie::build(i18n::COOKIE, lang.code())
        .path("/")
        .http_only(true)
        .secure(state.config.session.cookie_secure)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::days(COOKIE_DAYS))
        .finish();
    let to = local_path(&query.next);
    let res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish();
    super::respond::with_cookie(res, &cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/login"), "/login");
        assert_eq!(local_path("/a?b=c"), "/a?b=c");
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "",
            "/\nx",
            "/ü",
            "/a b",
        ] {
            assert_eq!(local_path(hostile), "/", "{hostile:?}");
        }
    }
}
