//! Templates translated once per language at start-up: every `{{ t["key"] }}` becomes the
//! message itself, and every `{{ fluent(...) }}` whose arguments never change while the process
//! runs (the language, a literal, a [`Fixed`] setting such as the lifetime) becomes its text,
//! escaped as tera would have escaped it at each request. A page's fixed text then costs nothing
//! per request (looking dozens of messages up through a nested context value, and formatting
//! Fluent messages, were the largest part of rendering a page). The output is byte for byte
//! what the lookups gave; a test renders every page both ways.
//!
//! What is not plainly one of these (a filter on it, `t.key`, a lookup inside a tag, an argument
//! that varies per request, any template with a `raw` block, a message with a brace in it) is
//! left to the lookup, and the language's context then carries the messages as before. A set of
//! templates that binds one of the names itself (`{% set lang = ... %}`) is not translated at all.

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::Loader;

use crate::i18n::{Lang, LOCALES};

/// Template variables whose value never changes while the process runs (the settings the pages
/// explain), by name: a Fluent call that takes only these and literals is worked out once.
pub type Fixed<'a> = &'a [(&'a str, u64)];

/// Whether `sources` can be translated: none of them binds `t`, `lang` or a fixed name itself,
/// which would make the value at render time another than the one translated with.
pub(super) fn translatable<'a>(mut sources: impl Iterator<Item = &'a str>, fixed: Fixed) -> bool {
    sources.all(|source| {
        tags(source).all(|tag| {
            let bound = bound_names(tag);
            !bound
                .iter()
                .any(|name| *name == "t" || *name == "lang" || fixed.iter().any(|f| f.0 == *name))
        })
    })
}

/// The inside of every `{% ... %}` of `source`, without whitespace control.
fn tags(source: &str) -> impl Iterator<Item = &str> {
    source.split("{%").skip(1).filter_map(|rest| {
        let inside = rest.split("%}").next()?;
        Some(inside.trim_matches('-').trim())
    })
}

/// The names a tag binds: `set NAME =`, `set_global NAME =`, `for A[, B] in`, a macro's
/// parameters (all of them, conservatively: every word of the tag).
fn bound_names(tag: &str) -> Vec<&str> {
    let mut words = tag.split(|c: char| !(c.is_alphanumeric() || c == '_'));
    match words.next() {
        Some("set" | "set_global") => words.find(|w| !w.is_empty()).into_iter().collect(),
        Some("for") => tag
            .split(|c: char| c.is_whitespace() || c == ',')
            .skip(1)
            .filter(|w| !w.is_empty())
            .take_while(|w| *w != "in")
            .collect(),
        Some("macro") => words.filter(|w| !w.is_empty()).collect(),
        _ => Vec::new(),
    }
}

/// `source` in `lang`: each plain `{{ t["key"] }}` and each fixed `{{ fluent(...) }}` replaced
/// by its text, HTML-escaped when `escaped` (the template is autoescaped). A template with a
/// `raw` block is left whole: its text must come out as written.
pub(super) fn translate(source: &str, lang: Lang, escaped: bool, fixed: Fixed) -> String {
    if has_raw_block(source) {
        return source.to_owned();
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let Some(end) = from.find("}}") else {
            rest = from;
            break;
        };
        let (tag, after) = from.split_at(end + 2);
        let expression = &tag[2..end];
        let text = match message_key(expression) {
            Some(key) => Some(lang.t(key)),
            None => fluent_call(expression, lang, fixed),
        };
        match text.and_then(|text| literal(text, escaped)) {
            Some(text) => out.push_str(&text),
            None => out.push_str(tag),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Whether `source` still reads the messages anywhere in a tag (`t["key"]`, `t.key`, `t` passed
/// or looped over, tested, filtered): then its language's context must carry them. Any
/// standalone name `t` counts; a false alarm only costs speed.
pub(super) fn reads_messages(source: &str) -> bool {
    let insides = [("{{", "}}"), ("{%", "%}")]
        .into_iter()
        .flat_map(|(open, close)| {
            source
                .split(open)
                .skip(1)
                .map(move |rest| rest.split(close).next().unwrap_or_default())
        });
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    insides.into_iter().any(|inside| {
        let bytes = inside.as_bytes();
        bytes.iter().enumerate().any(|(at, &b)| {
            b == b't'
                && (at == 0 || !(is_name(bytes[at - 1]) || bytes[at - 1] == b'.'))
                && bytes.get(at + 1).is_none_or(|&next| !is_name(next))
        })
    })
}

/// `key` of an expression that is exactly `t["key"]` (spaces around it allowed).
fn message_key(expression: &str) -> Option<&str> {
    let key = expression
        .trim()
        .strip_prefix("t[\"")?
        .strip_suffix("\"]")?;
    (!key.is_empty() && !key.contains(['"', '\\'])).then_some(key)
}

/// The text of an expression that is exactly `fluent(key="...", lang=lang, name=value, ...)`
/// where each value is a literal or a [`Fixed`] name, worked out as the `fluent` function would
/// at render time (its arguments in kebab case: names here must already be).
fn fluent_call(expression: &str, lang: Lang, fixed: Fixed) -> Option<String> {
    let inside = expression
        .trim()
        .strip_prefix("fluent(")?
        .strip_suffix(')')?;
    let (mut key, mut lang_given) = (None, false);
    let mut args: HashMap<Cow<'static, str>, FluentValue<'static>> = HashMap::new();
    for arg in inside.split(',') {
        let (name, value) = arg.split_once('=')?;
        let (name, value) = (name.trim(), value.trim());
        match name {
            "key" => key = Some(string_literal(value)?),
            "lang" if value == "lang" => lang_given = true,
            _ if name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) =>
            {
                let value = match string_literal(value) {
                    Some(text) => FluentValue::from(text.to_owned()),
                    None => match value.parse::<u64>() {
                        Ok(n) => FluentValue::from(n),
                        Err(_) => FluentValue::from(fixed.iter().find(|f| f.0 == value)?.1),
                    },
                };
                args.insert(Cow::Owned(name.to_owned()), value);
            }
            _ => return None,
        }
    }
    if !lang_given {
        return None;
    }
    Some(LOCALES.lookup_with_args(&lang.id(), key?, &args))
}

/// The text of a `"..."` literal without escapes.
fn string_literal(value: &str) -> Option<&str> {
    let text = value.strip_prefix('"')?.strip_suffix('"')?;
    (!text.contains(['"', '\\'])).then_some(text)
}

/// `message` as it stands in the template's source, if it can be written there as plain text:
/// a brace could open a tag, so a message with one keeps its lookup.
fn literal(message: String, escaped: bool) -> Option<String> {
    let text = if escaped {
        tera::escape_html(&message)
    } else {
        message
    };
    // Whitespace at an end could be trimmed by a neighbour's `-%}` once it is plain text.
    (!text.contains(['{', '}']) && text.trim() == text).then_some(text)
}

/// `{% raw %}` (with or without whitespace control): tera's verbatim block.
fn has_raw_block(source: &str) -> bool {
    source.match_indices("{%").any(|(at, _)| {
        source[at + 2..]
            .trim_start_matches('-')
            .trim_start()
            .starts_with("raw")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lookups_become_the_escaped_message() {
        let en = Lang::En.t("nav-login");
        assert_eq!(
            translate("<a>{{ t[\"nav-login\"] }}</a>", Lang::En, true, &[]),
            format!("<a>{}</a>", tera::escape_html(&en))
        );
        assert_eq!(
            translate("{{t[\"nav-login\"]}}", Lang::Ko, false, &[]),
            Lang::Ko.t("nav-login")
        );
        let fixed: Fixed = &[("lifetime_seconds", 1234)];
        let call = "{{ fluent(key=\"learn-step-wait\", lang=lang, seconds=lifetime_seconds) }}";
        for lang in Lang::ALL {
            let text = translate(call, lang, true, fixed);
            assert!(!text.contains("fluent(") && text.contains("1234"), "{text}");
        }
        let varying = "{{ fluent(key=\"home-visits-after\", lang=lang, count=visits) }}";
        assert_eq!(translate(varying, Lang::En, true, fixed), varying);
    }

    #[test]
    fn anything_else_is_left_to_the_lookup() {
        for kept in [
            "{{ t[\"nav-login\"] | upper }}",
            "{{ t.nav }}",
            "{{- t[\"nav-login\"] }}",
            "{{ user }}",
            "{{ t[\"a\\\"b\"] }}",
            "{{ unclosed",
        ] {
            assert_eq!(translate(kept, Lang::En, true, &[]), kept);
        }
        let raw = "{% raw %}{{ t[\"nav-login\"] }}{% endraw %}";
        assert_eq!(translate(raw, Lang::En, true, &[]), raw);
        assert!(has_raw_block("{%- raw -%}"));
    }

    #[test]
    fn messages_still_read_are_found() {
        assert!(reads_messages("{{ t.nav }}"));
        assert!(reads_messages("{% if t[\"x\"] %}"));
        assert!(!reads_messages("{{ flash.text }} {{ panel.started_at }}"));
        assert!(!reads_messages("don't. t[ {{ format[0] }}"));
        for uses in [
            "{{ t | length }}",
            "{% for k, v in t %}{% endfor %}",
            "{% if t %}{% endif %}",
            "{{ \"100%\" ~ t[\"x\"] }}",
        ] {
            assert!(reads_messages(uses), "{uses}");
        }
        assert_eq!(bound_names("for k,\tt\nin x"), ["k", "t"]);
    }

    /// Every page, in both languages, logged in and not, with hostile values: the translated
    /// templates give what the lookups give, byte for byte.
    #[test]
    fn translated_pages_are_the_pages_the_lookups_render() {
        use crate::web::render::Templates;
        use crate::web::sample::context;
        let fixed: Fixed = &[("lifetime_seconds", 30), ("min_password", 8)];
        assert_same_pages(None, fixed);
        let translated = Templates::compile(None, context, Some(fixed)).expect("compile");
        assert!(
            translated.languages.iter().all(|l| l.messages.is_none()),
            "the shipped templates need no message table at render time"
        );
    }

    /// Templates that rebind a name, read a message another way or hold a raw block render as
    /// written.
    #[test]
    fn operator_templates_that_rebind_or_filter_still_render_the_same() {
        use crate::web::render::TEMPLATES;
        let layout = TEMPLATES[0].1;
        let variants = [
            layout.replace("<body>", "<body>{% set lang = \"ko-KR\" %}"),
            layout.replace(
                "{{ t[\"footer-text\"] }}",
                "{{ t[\"footer-text\"] | upper }}",
            ),
            layout.replace(
                "<body>",
                "<body>{% raw %}{{ t[\"footer-text\"] }}{% endraw %}",
            ),
            layout.replace("<body>", "<body>{% for t in [1] %}{{ t }}{% endfor %}"),
        ];
        for variant in variants {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("layout.html"), &variant).expect("write");
            assert_same_pages(
                Some(dir.path()),
                &[("lifetime_seconds", 30), ("min_password", 8)],
            );
        }
    }

    fn assert_same_pages(dir: Option<&std::path::Path>, fixed: Fixed) {
        use crate::web::flash::Flash;
        use crate::web::render::{Templates, TEMPLATES};
        use crate::web::sample::context;
        use actix_web::http::StatusCode;
        let translated = Templates::compile(dir, context, Some(fixed)).expect("compile");
        let looked_up = Templates::compile(dir, context, None).expect("compile");
        let body = |t: &Templates, lang: Lang, logged_in: bool, permanent: bool, name: &str| {
            let mut ctx = t.context_with(lang, context(lang));
            let hostile = "<i>\"x\" & {{ t }}</i>";
            ctx.insert("permanent", &permanent);
            ctx.insert("flashes", &vec![Flash::error(hostile)]);
            ctx.insert("title", hostile);
            if logged_in {
                ctx.insert("user", hostile);
            } else {
                ctx.remove("user");
                ctx.remove("panel");
            }
            let res = t.page(StatusCode::OK, name, &ctx);
            if res.status() != StatusCode::OK {
                // A page that needs a user (the password form): said by both, compared below.
                return format!("status {}", res.status());
            }
            let bytes = actix_web::body::MessageBody::try_into_bytes(res.into_body())
                .unwrap_or_else(|_| panic!("{name}: body in one piece"));
            String::from_utf8_lossy(&bytes).into_owned()
        };
        for lang in Lang::ALL {
            for (name, _) in TEMPLATES {
                for logged_in in [false, true] {
                    for permanent in [false, true] {
                        let (a, b) = (
                            body(&translated, lang, logged_in, permanent, name),
                            body(&looked_up, lang, logged_in, permanent, name),
                        );
                        assert!(
                            a.len() > 200 || (!logged_in && a.starts_with("status")),
                            "{name} rendered: {a}"
                        );
                        assert_eq!(a, b, "{lang} {name} logged in {logged_in}");
                    }
                }
            }
        }
    }
}
