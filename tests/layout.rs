//! The shape of the source tree, so that it cannot drift back: each engine has exactly one folder
//! (`src/engines/<type>/`), and outside it the engine is named only by the registry's list
//! (`src/engines/list.rs`) and the registry's tests (`src/engines/tests.rs`); every source file
//! over 400 lines says in its module doc why it is one file.

use std::path::{Path, PathBuf};

use session_server::config::StoreType;

/// The only files outside an engine's folder that may name it.
const MAY_NAME_ENGINES: &[&str] = &["src/engines/list.rs", "src/engines/tests.rs"];

/// Past this many lines a file must say why it is not split.
const LONG_FILE: usize = 400;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn tree() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a source file");
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            (relative, text)
        })
        .collect()
}

/// Whether `text` names the engine `name`: as a word, in any case, for the engines whose name
/// is their own word; as code (its variant, its module, its quoted name) for `memory` and
/// `cookie`, which are also ordinary words of a session server's prose.
fn names(text: &str, name: &str) -> bool {
    let words = |text: &str| -> bool {
        let lower = text.to_ascii_lowercase();
        lower.match_indices(name).any(|(at, _)| {
            let before = lower[..at].chars().next_back();
            let after = lower[at + name.len()..].chars().next();
            let edge = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            edge(before) && edge(after)
        })
    };
    match name {
        "memory" | "cookie" => {
            let variant = format!("StoreType::{}{}", name[..1].to_uppercase(), &name[1..]);
            [
                variant,
                format!("engines::{name}"),
                format!("\"{name}\""),
                format!("\\\"{name}\\\""),
            ]
            .iter()
            .any(|code| text.contains(code.as_str()))
        }
        "postgres" => words(text) || text.to_ascii_lowercase().contains("postgresql"),
        _ => words(text),
    }
}

#[test]
fn each_engine_has_one_folder_and_is_named_only_by_the_registry_outside_it() {
    let tree = tree();
    let mut wrong = Vec::new();
    for engine in StoreType::ALL {
        let name = engine.name();
        let folder = format!("src/engines/{name}/");
        assert!(
            tree.iter()
                .any(|(path, _)| path == &format!("{folder}mod.rs")),
            "{name} has its folder {folder} with a mod.rs"
        );
        let elsewhere: Vec<&str> = tree
            .iter()
            .filter(|(path, text)| !path.starts_with(&folder) && names(text, name))
            .map(|(path, _)| path.as_str())
            .collect();
        for path in &elsewhere {
            if !MAY_NAME_ENGINES.contains(path) {
                wrong.push(format!("{path} names {name}"));
            }
        }
        assert!(
            elsewhere.len() <= MAY_NAME_ENGINES.len(),
            "{name} named outside its folder in {elsewhere:?}"
        );
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_name_rule_sees_what_it_must() {
    assert!(names("use crate::engines::redis::RedisBlocking;", "redis"));
    assert!(names("// Redis keys expire", "redis"));
    assert!(!names("use rusqlite::Connection;", "sqlite"));
    assert!(names("a SQLite file", "sqlite"));
    assert!(names("PostgreSQL rows", "postgres"));
    assert!(!names("this process's memory", "memory"));
    assert!(names("StoreType::Memory", "memory"));
    assert!(!names("the session cookie", "cookie"));
    assert!(names("type = \\\"cookie\\\"", "cookie"));
}

#[test]
fn every_long_file_says_why_it_is_one_file() {
    let mut unexplained = Vec::new();
    for (path, text) in tree() {
        let lines = text.lines().count();
        let explained = text
            .lines()
            .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
            .any(|l| l.contains("One file:"));
        if lines > LONG_FILE && !explained {
            unexplained.push(format!("{path}: {lines} lines"));
        }
    }
    assert!(
        unexplained.is_empty(),
        "over {LONG_FILE} lines without a `One file:` reason in the module doc: {unexplained:#?}"
    );
}

/// The files that read a signed cookie themselves: the CSRF token's and the known device's.
/// The session cookie is not among them: actix-session checks its signature, once a request,
/// and the layers that need the session (the log, the page, the panel, the "session ended"
/// notice, the session lock) read what it verified from the request context
/// (`store::seen`).
const READ_SIGNED_COOKIES: &[&str] = &["src/web/csrf.rs", "src/web/device.rs"];

#[test]
fn the_session_cookie_signature_is_checked_once_by_actix_session() {
    let readers: Vec<String> = tree()
        .into_iter()
        .filter(|(path, text)| path != "src/web/mod.rs" && text.contains("signed_cookie_value("))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        readers, READ_SIGNED_COOKIES,
        "who checks a cookie's signature"
    );
    let web = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/mod.rs"))
        .expect("src/web/mod.rs");
    assert_eq!(
        web.matches("signed_cookie_value(").count(),
        1,
        "src/web/mod.rs defines the helper and does not call it"
    );
    // Nor does any layer open a signed jar of its own, but the helper's and the key
    // rotation's (which re-seals older keys' cookies before anyone reads them).
    for (path, text) in tree() {
        let may = ["src/web/mod.rs", "src/web/rekey.rs"].contains(&path.as_str());
        assert!(
            may || !path.starts_with("src/web/") || !text.contains(".signed("),
            "{path} checks a signature itself"
        );
    }
}
