//! What every page is rendered with, as methods of [`AppState`]: the language and the header's
//! switch link, the logged-in user, flash messages and the settings the pages explain; the
//! error pages in the request's language; and the CSRF token of pages with forms.

use actix_session::{Session, SessionExt};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::flash::Flash;
use super::render::PageContext;
use super::{lang, AppState};
use crate::i18n::Lang;

impl AppState {
    /// The language of the answer to `req` (see [`crate::i18n`]).
    pub fn lang(&self, req: &HttpRequest) -> Lang {
        lang::of(req, self.config.server.default_language)
    }

    /// The context every page starts from: the language and the switch link to the other one,
    /// flash messages, the logged-in user id (see [`super::auth::logged_in_user`]) and the settings the
    /// pages explain.
    pub fn context(
        &self,
        req: &HttpRequest,
        user: Option<&str>,
        flashes: Vec<Flash>,
    ) -> PageContext {
        self.context_in(self.lang(req), req.path(), user, flashes)
    }

    /// [`Self::context`] for a page in `lang` at `path`.
    pub fn context_in(
        &self,
        lang: Lang,
        path: &str,
        user: Option<&str>,
        flashes: Vec<Flash>,
    ) -> PageContext {
        let mut ctx = self.templates.context(lang);
        lang::insert(&mut ctx, lang, path);
        ctx.insert("flashes", &flashes);
        ctx.insert("user", &user);
        ctx.insert("permanent", &self.config.session.permanent);
        for (name, value) in fixed_values(&self.config) {
            ctx.insert(name, &value);
        }
        ctx
    }

    /// The error page for `status` in the language of `req`: the messages `<prefix>-title`
    /// and `<prefix>-text`.
    pub fn error_page(&self, req: &HttpRequest, status: StatusCode, prefix: &str) -> HttpResponse {
        let (title, text) = error_texts(self.lang(req), prefix);
        self.error_page_text(req, status, &title, &text)
    }

    /// [`Self::error_page`] in `lang`, for the page at `path`, without the user: for answers
    /// made outside the session layer.
    pub fn error_page_in(
        &self,
        lang: Lang,
        path: &str,
        status: StatusCode,
        prefix: &str,
    ) -> HttpResponse {
        let (title, text) = error_texts(lang, prefix);
        let ctx = self.context_in(lang, path, None, Vec::new());
        self.templates.error_page(ctx, status, &title, &text)
    }

    /// The answer of a middleware that refuses `req` before the handlers: the error page for
    /// `status`, in the request's language.
    pub fn refusal(
        &self,
        req: actix_web::dev::ServiceRequest,
        status: StatusCode,
        prefix: &str,
    ) -> actix_web::dev::ServiceResponse {
        let (http, _) = req.into_parts();
        let page = self.error_page_in(self.lang(&http), http.path(), status, prefix);
        actix_web::dev::ServiceResponse::new(http, page)
    }

    /// The error page with a title and a message already in the language of `req`.
    pub fn error_page_text(
        &self,
        req: &HttpRequest,
        status: StatusCode,
        title: &str,
        message: &str,
    ) -> HttpResponse {
        // A handler's refusal: the header still names the logged-in user.
        let user = super::auth::logged_in_user(&req.get_session());
        let ctx = self.context(req, user.as_deref(), Vec::new());
        self.templates.error_page(ctx, status, title, message)
    }

    /// A page with forms: adds the CSRF token, and its cookie when the visitor is new.
    pub fn form_page(
        &self,
        req: &HttpRequest,
        session: &Session,
        status: StatusCode,
        template: &str,
        mut ctx: PageContext,
    ) -> HttpResponse {
        let (token, cookie) = self.csrf.token_for_form(req, session);
        ctx.insert("csrf_token", &token);
        let res = self.templates.page(status, template, &ctx);
        match cookie {
            Some(cookie) => super::respond::with_cookie(res, &cookie),
            None => res,
        }
    }
}

/// The settings the pages explain that are numbers, by their template names: the same for every
/// request, so that the templates may work their sentences out once (see
/// [`super::render::Fixed`]).
pub fn fixed_values(config: &crate::config::Config) -> [(&'static str, u64); 2] {
    [
        ("lifetime_seconds", config.session.lifetime.as_secs()),
        (
            "min_password",
            u64::try_from(config.auth.min_password_length).unwrap_or(u64::MAX),
        ),
    ]
}

/// An error page's title and text: the messages `<prefix>-title` and `<prefix>-text`.
fn error_texts(lang: Lang, prefix: &str) -> (String, String) {
    (
        lang.t(&format!("{prefix}-title")),
        lang.t(&format!("{prefix}-text")),
    )
}
