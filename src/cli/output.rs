//! How the operator's commands talk to a person and to a pipe: tables (through the pager on a
//! terminal, `pager.rs`, and plain when piped), progress bars and counters only on a terminal, yes/no questions, passwords
//! read without echo, and the short forms of times and sizes.
//!
//! It also owns the one rule for stored text on a terminal: whatever a store or the user
//! database holds is printed through [`shown`] (tables, lines, errors) or [`json`] (`--json`),
//! never as it is, so that what others could write there cannot drive the operator's terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use time::OffsetDateTime;

pub use super::pager::{page, Streamed};
use super::CliError;

/// Text read from a store or the user database (a session's field, a user's id or name), or a
/// message that may quote it, as it may reach a terminal. Anyone who can write a session or an
/// account (another program sharing the store, a hand edit of the database) could otherwise
/// drive the operator's terminal: ESC or a C1 control starts a sequence that writes the
/// clipboard (OSC 52), retitles the window or clears the screen, and a bidi override shows text
/// other than it is. Those characters ([`hidden`]) are written as Rust's `escape_debug` writes
/// them (`\u{1b}`, `\n`, `\t`), and so is the backslash, so that what is shown reads back
/// unambiguously; quotes and every other character, Korean or accented names included, are
/// shown as they are.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || hidden(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            '\0' => out.push_str(r"\0"),
            c if hidden(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `value` as the JSON text of a `--json` output (`pretty`: indented, else on one line), with
/// the characters [`shown`] escapes written as JSON escapes (`\u001b`). serde_json escapes the
/// C0 controls itself but writes DEL, the C1 controls and the invisible characters raw, so those
/// are escaped here, after serialising: outside its strings a JSON text is ASCII, so each of
/// them stands inside a string, where its `\uXXXX` means the same character, and the document
/// reads back to the same value.
pub fn json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> Result<String, CliError> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| CliError::Failed(format!("cannot write the JSON: {e}")))?;
    // The C0 controls are left alone: serde_json has escaped those in strings, and outside them
    // they are the line breaks of the pretty form.
    let raw = |c: char| hidden(c) && !matches!(c, '\0'..='\x1f');
    if !text.chars().any(raw) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw(c) {
            // A character past U+FFFF is escaped as its UTF-16 surrogate pair, as JSON spells it.
            for unit in c.encode_utf16(&mut [0; 2]) {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// What a terminal acts on or what hides how text reads: the control characters (C0, DEL and
/// C1, where U+009B is CSI by itself on a terminal that takes 8-bit controls) and the invisible
/// and direction-changing characters a display name may not hold.
fn hidden(c: char) -> bool {
    c.is_control() || crate::users::invisible(c)
}

/// A progress bar over `len` steps, drawn on stderr only when it is a terminal.
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(len).unwrap_or(u64::MAX));
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// A running count for work whose size is not known beforehand (a store listed as it is read),
/// drawn on stderr only when it is a terminal.
pub fn counter(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}: {human_pos} ({per_sec})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A spinner for work whose size is not known beforehand; hidden when stderr is not a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Asks `question` on a terminal and returns whether the answer was yes. Without a terminal
/// (a script), or with `--yes`, there is no one to ask: the command goes ahead.
pub fn confirm(question: &str, yes: bool) -> Result<bool, CliError> {
    if yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(CliError::io("cannot read the answer"))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// A password: the first line of stdin with `--stdin`, else asked twice without echo.
pub fn password(from_stdin: bool) -> Result<String, CliError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(CliError::io("cannot read the password from stdin"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no terminal to ask the password on: pass it on stdin with --stdin".into(),
        ));
    }
    let first = rpassword::prompt_password("Password: ")
        .map_err(CliError::io("cannot read the password"))?;
    let again = rpassword::prompt_password("Password again: ")
        .map_err(CliError::io("cannot read the password"))?;
    if first != again {
        return Err(CliError::Failed("the two passwords do not match".into()));
    }
    Ok(first)
}

/// `at` as `2026-11-22 14:03:11` (UTC).
pub fn when(at: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.format(&f).unwrap_or_else(|_| at.to_string())
}

/// How long until `at`: `29s`, `4m 10s`, `2h 3m`, `5d 2h`; `ended 12s ago` once past.
pub fn until(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = (at - now).whole_seconds();
    if left <= 0 {
        return format!("ended {} ago", span(left.unsigned_abs()));
    }
    span(left.unsigned_abs())
}

/// A span of seconds in its two largest units.
pub fn span(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A size: `312 B`, `4.2 KiB`, `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    // Shown rounded: exact figures are in --json.
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", f / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", f / 1_048_576.0),
        _ => format!("{:.1} GiB", f / 1_073_741_824.0),
    }
}

/// Rows as left-aligned columns under a header, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths = widths(header, rows);
    table_rows(Some(header), rows, &widths)
}

/// The columns' widths for `rows` under `header`.
pub fn widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths
}

/// `rows` (under `header`, if any) laid out in columns of `widths`, one line each: a streamed
/// table lays its later rows out in the widths of its first (a wider cell pushes its line).
pub fn table_rows(header: Option<&[&str]>, rows: &[Vec<String>], widths: &[usize]) -> String {
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, w) in cells.zip(widths) {
            text.push_str(cell);
            text.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(cell.chars().count()) + 2,
            ));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    if let Some(header) = header {
        line(&mut header.iter().copied());
    }
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_is_shown_with_its_controls_escaped() {
        let clipboard = "\x1b]52;c;SGVsbG8=\x07";
        assert_eq!(shown(clipboard), r"\u{1b}]52;c;SGVsbG8=\u{7}");
        assert_eq!(shown("\x1b[2J"), r"\u{1b}[2J");
        assert_eq!(shown("\u{9b}31m"), r"\u{9b}31m", "C1 CSI");
        assert_eq!(shown("\u{85}\u{9f}"), r"\u{85}\u{9f}", "the C1 range");
        assert_eq!(shown("a\x7fb"), r"a\u{7f}b", "DEL");
        assert_eq!(shown("one\ntwo\r\n"), r"one\ntwo\r\n");
        assert_eq!(shown("a\tb\0"), r"a\tb\0");
        assert_eq!(
            shown("ad\u{202e}nimda"),
            r"ad\u{202e}nimda",
            "bidi override"
        );
        assert_eq!(
            shown("\u{2066}x\u{2069}"),
            r"\u{2066}x\u{2069}",
            "bidi isolates"
        );
        assert_eq!(shown("Al\u{200b}ice"), r"Al\u{200b}ice", "zero width");
        assert_eq!(
            shown(r"\u{1b}"),
            r"\\u{1b}",
            "a written escape stays told apart"
        );
    }

    #[test]
    fn ordinary_text_is_shown_as_it_is() {
        for text in [
            "alice",
            "김민준",
            "Zoë Ångström",
            "Nguye\u{0302}\u{0303}n",
            "देवनागरी",
            "山田 太郎",
            "O'Brien \"Bob\"",
            "",
        ] {
            assert!(
                matches!(shown(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn json_escapes_what_serde_json_leaves_raw_and_reads_back_the_same() {
        let hostile = "\x1b]52;c;SGVsbG8=\x07\x1b[2J\u{9b}\x7f\u{202e}\u{E0041}김";
        let value = serde_json::json!({ "k\u{9b}": hostile, "n": [1, null] });
        for pretty in [false, true] {
            let text = json(&value, pretty).expect("json");
            assert!(!text.chars().any(|c| c != '\n' && hidden(c)), "{text:?}");
            assert!(
                text.contains(
                    r"\u001b]52;c;SGVsbG8=\u0007\u001b[2J\u009b\u007f\u202e\udb40\udc41김"
                ),
                "{text}"
            );
            assert!(text.contains(r#""k\u009b""#), "keys too: {text}");
            let back: serde_json::Value = serde_json::from_str(&text).expect("parses");
            assert_eq!(back, value);
        }
        assert_eq!(json(&"김민준", false).expect("json"), "\"김민준\"");
    }

    #[test]
    fn spans_and_sizes_read_as_a_person_writes_them() {
        assert_eq!(span(29), "29s");
        assert_eq!(span(250), "4m 10s");
        assert_eq!(span(7380), "2h 3m");
        assert_eq!(span(86_400 * 5 + 7200), "5d 2h");
        assert_eq!(bytes(312), "312 B");
        assert_eq!(bytes(4300), "4.2 KiB");
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            until(now - time::Duration::seconds(12), now),
            "ended 12s ago"
        );
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "LONGER"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A    LONGER\nxyz  1\nq    22\n");
    }
}
