//! The pages' two languages: the message files in `locales/` (Fluent, compiled into the binary),
//! the [`Lang`] a request is answered in, and looking a message up from Rust and from templates
//! (`{{ fluent(key="…", lang=lang) }}`).
//!
//! A request's language is, in order: the `lang` cookie the switch link sets (a preference, not
//! the session), the first language of `Accept-Language` that there are messages for, and
//! `[server] default_language`. A client that names none (curl) gets the default, English unless
//! the config says otherwise.

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::LanguageIdentifier;
use fluent_templates::{static_loader, Loader};

static_loader! {
    pub static LOCALES = {
        locales: "./locales",
        fallback_language: "en-US",
        // Fluent wraps arguments in invisible direction marks by default; in a page title, an
        // attribute or a copied user id they are noise, and both languages run left to right.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// Name of the cookie that remembers the language a visitor chose.
pub const COOKIE: &str = "lang";

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Ko,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ko];

    /// The code in `<html lang>`, the cookie and the switch link.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ko => "ko",
        }
    }

    /// The language's own name for itself, as the switch link shows it.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ko => "한국어",
        }
    }

    /// The other language: where the switch link leads.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Ko,
            Lang::Ko => Lang::En,
        }
    }

    /// `en`, `ko`, or a tag of either with a region or script (`ko-KR`, `en_GB`), any case.
    pub fn parse(tag: &str) -> Option<Lang> {
        let id: LanguageIdentifier = tag.trim().replace('_', "-").parse().ok()?;
        match id.language.as_str() {
            "en" => Some(Lang::En),
            "ko" => Some(Lang::Ko),
            _ => None,
        }
    }

    /// The message files' identifier.
    pub fn id(self) -> LanguageIdentifier {
        match self {
            Lang::En => fluent_templates::langid!("en-US"),
            Lang::Ko => fluent_templates::langid!("ko-KR"),
        }
    }

    /// The first language of an `Accept-Language` value that there are messages for, by the
    /// weights it gives (a language with `q=0` is refused, not wanted).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut wanted: Vec<(f32, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(order, item)| {
                let mut parts = item.split(';');
                let lang = Lang::parse(parts.next()?)?;
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, order, lang))
            })
            .collect();
        // Highest weight first; equal weights keep the header's order.
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        wanted.first().map(|w| w.2)
    }

    /// The message `key`; a missing message shows its key (and is caught by the tests).
    pub fn t(self, key: &str) -> String {
        LOCALES.lookup(&self.id(), key)
    }

    /// The message `key` with its `{ $name }` arguments filled in.
    pub fn t_with(self, key: &str, args: &[(&'static str, FluentValue<'_>)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue<'_>> = args
            .iter()
            .map(|(name, value)| (Cow::Borrowed(*name), value.clone()))
            .collect();
        LOCALES.lookup_with_args(&self.id(), key, &args)
    }

    /// What templates pass as `lang=`: the message files' identifier, also a valid
    /// `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en-US",
            Lang::Ko => "ko-KR",
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests;
