//! Unknown keys: collected by type while the file is read (the keys no field takes), then
//! reported with their whole path, their value and the keys their table takes.

use std::path::Path;

use serde::{Deserialize, Deserializer};

use super::auth::RawAuth;
use super::log::{RawLog, RawMetrics};
use super::server::RawServer;
use super::session::RawSession;
use super::{ConfigError, RawConfig};

/// A key's place in the file, table by table: `["session", "cookie_name"]`.
pub(super) type KeyPath = Vec<String>;

/// Deserializes `de` into `T`; the keys that no field took are returned beside it, each as its
/// key path, instead of failing.
pub(super) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    de: D,
) -> Result<(T, Vec<KeyPath>), serde_path_to_error::Error<D::Error>> {
    let mut unknown = Vec::new();
    let mut collect = |path: serde_ignored::Path| unknown.push(key_path(&path));
    let value =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut collect))?;
    Ok((value, unknown))
}

/// The error for the unknown key at `keys` of the file `file` holding `text`.
pub(super) fn error(text: &str, file: &Path, keys: &[String]) -> ConfigError {
    let value = text
        .parse::<toml::Table>()
        .ok()
        .and_then(|table| {
            let (last, parents) = keys.split_last()?;
            let mut here = &table;
            for key in parents {
                here = here.get(key)?.as_table()?;
            }
            here.get(last).map(one_line)
        })
        .map(|v| format!(" = {v}"))
        .unwrap_or_default();
    let allowed = keys_of(keys.split_last().map_or(&[][..], |(_, table)| table))
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    ConfigError::Invalid {
        file: file.to_owned(),
        key: keys.join("."),
        value,
        allowed: if allowed.is_empty() {
            "unknown key".to_owned()
        } else {
            format!("unknown key; expected one of {allowed}")
        },
    }
}

/// The dotted key path of a key serde skipped, e.g. `["server", "bind"]`.
fn key_path(path: &serde_ignored::Path) -> KeyPath {
    use serde_ignored::Path as P;
    match path {
        P::Root => Vec::new(),
        P::Map { parent, key } => {
            let mut keys = key_path(parent);
            keys.push(key.clone());
            keys
        }
        P::Seq { parent, index } => {
            let mut keys = key_path(parent);
            keys.push(index.to_string());
            keys
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            key_path(parent)
        }
    }
}

/// The keys the table at `table` (empty for the top level) takes. A new table in the file's
/// types needs its line here; the engines' tables come from the registry.
fn keys_of(table: &[String]) -> &'static [&'static str] {
    use serde_aux::serde_introspection::serde_introspect;
    match table
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => serde_introspect::<RawConfig>(),
        ["server"] => serde_introspect::<RawServer>(),
        ["session"] => serde_introspect::<RawSession>(),
        ["session", engine] => engine_table_keys(engine),
        ["auth"] => serde_introspect::<RawAuth>(),
        ["log"] => serde_introspect::<RawLog>(),
        ["metrics"] => serde_introspect::<RawMetrics>(),
        _ => &[],
    }
}

/// The keys `[session.<engine>]` takes, for each engine of the list.
fn engine_table_keys(engine: &str) -> &'static [&'static str] {
    use serde_aux::serde_introspection::serde_introspect;
    macro_rules! tables {
        ($($module:ident $Type:ident,)*) => {
            $(
                if engine == stringify!($module) {
                    return serde_introspect::<crate::engines::list::configs::$module::Raw>();
                }
            )*
        };
    }
    crate::engines::list::for_each_engine!(tables);
    &[]
}

/// A value as TOML on one line, shortened past 60 characters: for naming it in an error.
fn one_line(value: &toml::Value) -> String {
    // A string shown escaped, as written (`toml` would print a multi-line one over lines).
    let text = match value {
        toml::Value::String(s) => format!("{s:?}"),
        other => other.to_string().replace('\n', " "),
    };
    if text.chars().count() <= 60 {
        return text;
    }
    let mut short: String = text.chars().take(57).collect();
    short.push_str("...");
    short
}
