//! How `config check` shows a key and its value: the entry of one key, the keys of one table as
//! each table (an engine's among them) adds them, and the values as TOML writes them, passwords
//! in URLs masked.

use std::path::Path;
use std::time::Duration;

/// One key as the server uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The table, e.g. `session` or `server`.
    pub table: &'static str,
    pub key: &'static str,
    /// As TOML would write it (strings quoted), or `(unset)` / `(embedded)`.
    pub value: String,
    /// The Flask or Flask-Session setting with the same job, if there is one.
    pub flask: Option<&'static str>,
}

/// The keys of one table, as an engine adds its own.
pub struct Keys<'a> {
    out: &'a mut Vec<Entry>,
    table: &'static str,
}

impl<'a> Keys<'a> {
    pub(crate) fn new(out: &'a mut Vec<Entry>, table: &'static str) -> Self {
        Self { out, table }
    }

    /// One key: its value as TOML writes it, and the Flask setting with the same job.
    pub fn add(&mut self, key: &'static str, value: String, flask: Option<&'static str>) {
        self.out.push(Entry {
            table: self.table,
            key,
            value,
            flask,
        });
    }
}

/// A string as TOML writes it.
pub fn s(text: &str) -> String {
    format!("{text:?}")
}

pub fn path(p: &Path) -> String {
    s(&p.display().to_string())
}

/// A list of strings as TOML writes it, each through `show`.
pub fn list(items: &[String], show: impl Fn(&str) -> String) -> String {
    let shown: Vec<String> = items.iter().map(|x| show(x)).collect();
    format!("[{}]", shown.join(", "))
}

/// A URL with its password masked (`user:***@host`, `password=***`), quoted.
pub fn url(url: &str) -> String {
    format!("{:?}", masked(url))
}

/// A URL with its password masked, as a log or error line names an engine.
pub fn masked(url: &str) -> String {
    let mut text = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                text = format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    if let Some(at) = text.find("password=") {
        let end = text[at..].find('&').map_or(text.len(), |n| at + n);
        text.replace_range(at + "password=".len()..end, "***");
    }
    text
}

/// A duration in the largest unit that divides it, as config.toml takes it: `"31d"`, `"15m"`.
pub fn secs(d: Duration) -> String {
    let n = d.as_secs();
    if d.subsec_nanos() != 0 {
        return s(&humantime::format_duration(d).to_string());
    }
    let (count, unit) = [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|&(u, _)| n > 0 && n.is_multiple_of(u))
        .map_or((n, "s"), |(u, name)| (n / u, name));
    s(&format!("{count}{unit}"))
}
