//! The templates' `fluent(key="...", lang=lang, name=value, ...)`: what fluent-templates'
//! own tera function does (the same messages, the argument names in kebab case, a language
//! fluent-templates would accept), without parsing the language tag and copying every argument
//! at each call, and with the last few sentences each worker formatted kept: the pages of one
//! second share their clock times and most of their counts.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};
use heck::ToKebabCase;
use tera::Value;

use crate::i18n::{Lang, LOCALES};

/// Sentences kept per worker thread (each worker renders on its own thread).
const KEPT: usize = 64;

thread_local! {
    /// The last sentences formatted on this thread, newest last: (call, text).
    static RECENT: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// The `fluent` function registered with every language's templates.
pub(super) struct Fluent;

impl tera::Function for Fluent {
    fn call(&self, args: &HashMap<String, Value>) -> tera::Result<Value> {
        let tag = args
            .get("lang")
            .and_then(Value::as_str)
            .ok_or_else(|| tera::Error::msg("fluent(): no `lang` argument"))?;
        let key = args
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| tera::Error::msg("fluent(): no `key` argument"))?;
        let mut named: Vec<(&String, &Value)> = args
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "lang" | "key" | "__tera_one_off"))
            .collect();
        named.sort_by_key(|(name, _)| *name);
        let call = call_text(tag, key, &named);
        let kept = RECENT.with(|recent| {
            let recent = recent.borrow();
            recent
                .iter()
                .rev()
                .find(|(c, _)| *c == call)
                .map(|(_, text)| text.clone())
        });
        if let Some(text) = kept {
            return Ok(Value::String(text));
        }
        let text = format(tag, key, &named)?;
        RECENT.with(|recent| {
            let mut recent = recent.borrow_mut();
            if recent.len() == KEPT {
                recent.remove(0);
            }
            recent.push((call, text.clone()));
        });
        Ok(Value::String(text))
    }

    fn is_safe(&self) -> bool {
        // The output is escaped like any other value.
        false
    }
}

/// The call as one string: language, key and the arguments in name order.
fn call_text(tag: &str, key: &str, named: &[(&String, &Value)]) -> String {
    let mut call = format!("{tag}\u{0}{key}");
    for (name, value) in named {
        call.push('\u{0}');
        call.push_str(name);
        call.push('=');
        call.push_str(&value.to_string());
    }
    call
}

/// The sentence, formatted by Fluent.
fn format(tag: &str, key: &str, named: &[(&String, &Value)]) -> tera::Result<String> {
    let id: LanguageIdentifier = match Lang::ALL.into_iter().find(|l| l.tag() == tag) {
        Some(lang) => lang.id(),
        None => tag
            .parse()
            .map_err(|_| tera::Error::msg(format!("fluent(): `{tag}` is not a language")))?,
    };
    let mut args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::new();
    for (name, value) in named {
        let value = match value {
            Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (Some(n), _) => FluentValue::from(n),
                (None, Some(f)) => FluentValue::from(f),
                (None, None) => return Err(not_an_argument(name)),
            },
            Value::String(s) => FluentValue::String(Cow::Borrowed(s.as_str())),
            _ => return Err(not_an_argument(name)),
        };
        args.insert(Cow::Owned(name.to_kebab_case()), value);
    }
    Ok(LOCALES.lookup_with_args(&id, key, &args))
}

fn not_an_argument(name: &str) -> tera::Error {
    tera::Error::msg(format!("fluent(): `{name}` must be a number or a string"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tera::Function;

    fn call(pairs: &[(&str, Value)]) -> tera::Result<Value> {
        let args = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Fluent.call(&args)
    }

    /// The same sentences as fluent-templates' function, for both languages, numbers and
    /// strings, and from the kept sentences the second time.
    #[test]
    fn says_what_fluent_templates_says() {
        let theirs = fluent_templates::FluentLoader::new(&*LOCALES);
        for tag in ["en-US", "ko-KR", "en", "fr"] {
            for count in [0u64, 1, 2, 17] {
                for _ in 0..2 {
                    let args = [
                        ("key", Value::from("home-visits-after")),
                        ("lang", Value::from(tag)),
                        ("count", Value::from(count)),
                    ];
                    let map = args
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.clone()))
                        .collect();
                    assert_eq!(call(&args).ok(), theirs.call(&map).ok(), "{tag} {count}");
                }
            }
            let args = [
                ("key", Value::from("panel-countdown-static")),
                ("lang", Value::from(tag)),
                ("time", Value::from("12:00:00 UTC")),
            ];
            let map = args
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            assert_eq!(call(&args).ok(), theirs.call(&map).ok(), "{tag}");
        }
        assert!(call(&[("key", Value::from("x"))]).is_err(), "no language");
        assert!(call(&[
            ("key", Value::from("home-visits-after")),
            ("lang", Value::from("en-US")),
            ("count", Value::Bool(true)),
        ])
        .is_err());
    }

    /// Many threads formatting at once each keep their own sentences, and each gets its own.
    #[test]
    fn threads_keep_their_own_sentences() {
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..(KEPT as u64 * 3) {
                        let count = t * 1000 + i % (KEPT as u64 + 5);
                        let got = call(&[
                            ("key", Value::from("panel-countdown-static")),
                            ("lang", Value::from("en-US")),
                            ("time", Value::from(count.to_string())),
                        ])
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                        assert!(got.contains(&format!("at {count}.")), "{got}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
    }
}
