//! The configuration keys, three ways: the shipped `config.toml` (its set keys and its
//! commented-out ones, `# key = value`), the table of `docs/configuration.md` (rows
//! `` | `[table] key` | ``, or `` | `[table] a`, `b` | `` for several keys of one table), and what
//! the server itself prints with `config check` for each store type. A key in one and not in
//! another fails, naming it as `table.key`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use session_server::config::StoreType;

const BIN: &str = env!("CARGO_BIN_EXE_session-server");

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Whether `name` is a bare TOML key as ours are spelled.
fn is_key(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Every key of a `config.toml`, as `table.key`: the keys it sets, and the keys it documents
/// commented out. A commented-out key is a comment line that, without its `# `, is one TOML
/// `key = value` (prose never parses as one); it belongs to the table whose header precedes it.
fn config_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let set: toml::Table = toml::from_str(text).expect("config.toml is TOML");
    collect_set_keys("", &set, &mut keys);

    let mut table = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = header.trim().to_owned();
            continue;
        }
        let Some(commented) = line.strip_prefix("# ") else {
            continue;
        };
        let Ok(parsed) = toml::from_str::<toml::Table>(commented) else {
            continue;
        };
        let mut entries = parsed.iter();
        if let (Some((key, value)), None) = (entries.next(), entries.next()) {
            if !value.is_table() {
                assert!(
                    !table.is_empty(),
                    "config.toml line {}: `{commented}` before any table",
                    n + 1
                );
                keys.insert(format!("{table}.{key}"));
            }
        }
    }
    keys
}

fn collect_set_keys(prefix: &str, table: &toml::Table, keys: &mut BTreeSet<String>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => collect_set_keys(&name, inner, keys),
            _ => {
                assert!(!prefix.is_empty(), "config.toml: `{key}` outside any table");
                keys.insert(name);
            }
        }
    }
}

/// Every key the reference table of `docs/configuration.md` documents, as `table.key`. A row's
/// first cell is `` `[table] key` ``, or `` `[table] key`, `other` `` for several keys of one
/// table; a first cell naming a table in another form fails, rather than being skipped.
fn documented_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let Some(first) = line
            .strip_prefix("| `[")
            .and_then(|rest| rest.split('|').next())
        else {
            continue;
        };
        let where_ = || format!("docs/configuration.md line {}: {line}", n + 1);
        let (table, rest) = first
            .split_once("] ")
            .unwrap_or_else(|| panic!("no `[table] key`: {}", where_()));
        let names: Vec<&str> = rest
            .trim()
            .split(',')
            .map(|name| name.trim().trim_matches('`'))
            .collect();
        for name in names {
            assert!(
                is_key(name) && table.split('.').all(is_key),
                "not a `[table] key` cell: {}",
                where_()
            );
            assert!(
                keys.insert(format!("{table}.{name}")),
                "{table}.{name} documented twice: {}",
                where_()
            );
        }
    }
    keys
}

/// The keys `session-server config check` prints for the shipped config with `type` set to
/// `store_type` (the check lists the chosen type's table only).
fn checked_keys(shipped: &str, store_type: &str) -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = "type = \"filesystem\"";
    assert_eq!(
        shipped.lines().filter(|l| *l == line).count(),
        1,
        "the shipped config sets {line}"
    );
    let text: String = shipped
        .lines()
        .map(|l| {
            if l == line {
                format!("type = \"{store_type}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, text).expect("write config");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["config", "check"])
        .env_remove("SESSION_SERVER_SECRET_KEY")
        .output()
        .expect("run config check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "config check with type = {store_type:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut keys = BTreeSet::new();
    let mut table = None;
    for line in stdout.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line == "configuration OK" {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = Some(header.to_owned());
            continue;
        }
        let key = line
            .split_once(" = ")
            .map(|(k, _)| k)
            .filter(|k| is_key(k))
            .unwrap_or_else(|| panic!("config check printed an unknown line: {line}\n{stdout}"));
        let table = table
            .as_deref()
            .unwrap_or_else(|| panic!("config check printed {key} before any table"));
        keys.insert(format!("{table}.{key}"));
    }
    keys
}

fn assert_same(left: (&str, &BTreeSet<String>), right: (&str, &BTreeSet<String>)) {
    let missing: Vec<&String> = left.1.difference(right.1).collect();
    let extra: Vec<&String> = right.1.difference(left.1).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "in {} but not in {}: {missing:?}\nin {} but not in {}: {extra:?}",
        left.0,
        right.0,
        right.0,
        left.0
    );
}

#[test]
fn every_key_of_config_toml_is_documented_and_every_documented_key_exists() {
    let shipped = config_keys(&read("config.toml"));
    let documented = documented_keys(&read("docs/configuration.md"));
    // The parsers found the keys, set and commented out, not an empty agreement.
    for key in ["session.redis.pool_size", "server.workers", "metrics.bind"] {
        assert!(shipped.contains(key), "{key} not found in config.toml");
    }
    assert!(documented.len() > 40, "{documented:?}");
    assert_same(
        ("config.toml", &shipped),
        ("docs/configuration.md", &documented),
    );
}

/// The server itself: every key it prints with `config check`, across the store types, is a key
/// of `config.toml`, and every key there is one it uses.
#[test]
fn config_check_prints_exactly_the_keys_of_config_toml() {
    let text = read("config.toml");
    let shipped = config_keys(&text);
    let mut checked = BTreeSet::new();
    for store_type in StoreType::ALL {
        checked.extend(checked_keys(&text, store_type.name()));
    }
    assert_same(("config.toml", &shipped), ("config check", &checked));
}

/// The parsers on the forms they must take and refuse.
#[test]
fn the_key_parsers_follow_the_files_conventions() {
    let config = "[server]\nbind = \"x\"\n# Worker threads. Default: one per core.\n# workers = 2\n\
                  # true: the cookie also gets Max-Age = lifetime.\n\
                  # [session] type = \"redis\", else \"sqlite\"\n[session.redis]\n# pool_size = 4\n";
    assert_eq!(
        config_keys(config),
        ["server.bind", "server.workers", "session.redis.pool_size"]
            .map(String::from)
            .into()
    );
    let docs = "| key | default |\n|---|---|\n| `[server] bind` | `\"x\"` |\n\
                | `[session.postgres] connect_timeout`, `command_timeout` | `2`, `2` |\n\
                A line about `[server] workers` outside the table.\n";
    assert_eq!(
        documented_keys(docs),
        [
            "server.bind",
            "session.postgres.connect_timeout",
            "session.postgres.command_timeout"
        ]
        .map(String::from)
        .into()
    );
    let malformed = std::panic::catch_unwind(|| documented_keys("| `[server]bind` | x |\n"));
    assert!(malformed.is_err(), "a cell in another form is refused");
}
