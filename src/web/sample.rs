//! Values for every variable a page uses: what the start-up check renders each template with
//! (`render::Templates::load`), so that a template that parses but cannot render stops the
//! start instead of failing a visitor.

use tera::Context;

use super::flash::Flash;
use super::lang::insert;
use super::panel::Panel;
use crate::i18n::Lang;

/// Values for every variable a page uses: what the start-up check renders each template with.
pub fn context(lang: Lang) -> Context {
    let mut ctx = Context::new();
    insert(&mut ctx, lang, "/");
    ctx.insert("permanent", &false);
    ctx.insert("lifetime_seconds", &30);
    ctx.insert("min_password", &8);
    ctx.insert("panel", &Panel::sample());
    ctx.insert("user", "alice");
    ctx.insert("visits", &1);
    ctx.insert("flashes", &vec![Flash::info("sample")]);
    ctx.insert("csrf_token", "token");
    ctx.insert("form_user_id", "alice");
    ctx.insert("form_user_name", "Alice");
    ctx.insert("status", &400);
    ctx.insert("title", "Title");
    ctx.insert("message", "Message");
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::render::{Templates, TEMPLATES};
    use actix_web::http::StatusCode;

    #[test]
    fn all_templates_compile_and_escape() {
        let t = Templates::new(context).expect("templates compile");
        let hostile = "<i>\"x\"</i>";
        let mut ctx = t.context_with(Lang::Ko, context(Lang::Ko));
        ctx.insert("user", hostile);
        ctx.insert("visits", &1);
        ctx.insert("flashes", &vec![Flash::error(hostile)]);
        ctx.insert("csrf_token", hostile);
        ctx.insert("form_user_id", hostile);
        ctx.insert("form_user_name", hostile);
        ctx.insert("status", &400);
        ctx.insert("title", hostile);
        ctx.insert("message", hostile);
        for (name, _) in TEMPLATES {
            let r = t.page(StatusCode::OK, name, &ctx);
            assert_eq!(r.status(), StatusCode::OK, "{name} renders");
            let body = actix_web::body::MessageBody::try_into_bytes(r.into_body())
                .unwrap_or_else(|_| panic!("{name}: body in one piece"));
            let body = String::from_utf8_lossy(&body);
            assert!(!body.contains("<i>"), "{name} let markup through: {body}");
            assert!(
                body.contains("&lt;i&gt;&quot;x&quot;&lt;&#x2F;i&gt;"),
                "{name} shows the value escaped: {body}"
            );
        }
    }
}
