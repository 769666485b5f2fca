//! What a user id and a display name may be. Ids are ASCII and compared case-insensitively
//! (`Alice` and `alice` are one account), so that two accounts never look alike; display names
//! may be any text a person reads, but nothing invisible that could make one name pass for
//! another (bidi overrides, zero-width characters, other format characters, blank fillers),
//! nothing without a meaning of its own (private use, noncharacters), and no tower of combining
//! marks; a name needs at least one letter or digit.

use unicode_segmentation::UnicodeSegmentation;

/// Longest user id, in characters (ids are ASCII, so also bytes).
pub const MAX_ID_LEN: usize = 64;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Most combining marks on one base character: enough for any script's stacked accents and
/// vowel signs (Vietnamese takes two), not for text that spills over the lines around it.
const MAX_MARKS_PER_BASE: usize = 4;

/// The form of `id` that is unique in the database and kept in sessions: ids are ASCII, so
/// folding them is lowercasing them.
pub fn canonical_id(id: &str) -> String {
    id.to_ascii_lowercase()
}

/// Whether `id` may be registered: 1 to 64 of `A-Z a-z 0-9 . _ -`, at least one a letter or
/// digit (so no `.`, `..` or `-`).
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && id.bytes().any(|b| b.is_ascii_alphanumeric())
}

/// Whether `name` (already trimmed) may be shown as a user's name: 1 to 64 characters, none of
/// them a control character, a line or paragraph separator, an invisible or blank character, a
/// private-use character or a noncharacter; at least one a letter or digit; not starting with a
/// combining mark, and at most 4 combining marks on any character.
pub fn valid_display_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name
            .chars()
            .any(|c| c.is_control() || invisible(c) || private_use(c) || noncharacter(c))
        && name.chars().any(char::is_alphanumeric)
        && marks_fit(name)
}

/// No combining mark first, and at most [`MAX_MARKS_PER_BASE`] after any other character.
fn marks_fit(name: &str) -> bool {
    let mut run = 0;
    for (i, c) in name.chars().enumerate() {
        if !combining(c) {
            run = 0;
        } else if i == 0 || run == MAX_MARKS_PER_BASE {
            return false;
        } else {
            run += 1;
        }
    }
    true
}

/// Whether `c` is drawn on or beside the character before it rather than on its own: the
/// characters that Unicode's grapheme rules (UAX #29) attach to the one before, which are the
/// combining marks (categories Mn, Mc, Me) and emoji modifiers. No crate in the build carries
/// general categories; the grapheme segmenter carries these rules, so `c` is one when a letter
/// followed by it is still a single grapheme.
fn combining(c: char) -> bool {
    let mut pair = String::with_capacity(5);
    pair.push('a');
    pair.push(c);
    pair.graphemes(true).nth(1).is_none()
}

/// The private-use planes and area: their characters mean whatever a font makes them.
fn private_use(c: char) -> bool {
    matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{10FFFF}')
}

/// The 66 code points Unicode keeps out of text: U+FDD0..U+FDEF and the last two of each plane.
fn noncharacter(c: char) -> bool {
    matches!(c, '\u{FDD0}'..='\u{FDEF}') || u32::from(c) & 0xFFFE == 0xFFFE
}

/// Characters that change how text around them is shown, or show as nothing: Unicode's format
/// characters (category Cf, which holds the bidi controls and zero-width characters), the line
/// and paragraph separators, variation selectors, the fillers and symbols that render as blank,
/// and the object replacement character. No crate in the build carries Unicode categories; this
/// list is the Cf set of Unicode 15 plus those.
pub(crate) fn invisible(c: char) -> bool {
    const RANGES: &[(char, char)] = &[
        ('\u{00AD}', '\u{00AD}'),   // soft hyphen
        ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
        ('\u{0600}', '\u{0605}'),   // Arabic number signs
        ('\u{061C}', '\u{061C}'),   // Arabic letter mark (bidi)
        ('\u{06DD}', '\u{06DD}'),   // Arabic end of ayah
        ('\u{070F}', '\u{070F}'),   // Syriac abbreviation mark
        ('\u{0890}', '\u{0891}'),   // Arabic pound/piastre marks above
        ('\u{08E2}', '\u{08E2}'),   // Arabic disputed end of ayah
        ('\u{115F}', '\u{1160}'),   // Hangul fillers
        ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
        ('\u{180B}', '\u{180F}'),   // Mongolian selectors and vowel separator
        ('\u{200B}', '\u{200F}'),   // zero-width space, joiners, LRM, RLM
        ('\u{2028}', '\u{202E}'),   // separators, bidi embeddings and overrides
        ('\u{2060}', '\u{206F}'),   // word joiner, invisible operators, bidi isolates
        ('\u{2800}', '\u{2800}'),   // braille pattern blank
        ('\u{3164}', '\u{3164}'),   // Hangul filler
        ('\u{FE00}', '\u{FE0F}'),   // variation selectors
        ('\u{FEFF}', '\u{FEFF}'),   // zero-width no-break space
        ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
        ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation
        ('\u{FFFC}', '\u{FFFC}'),   // object replacement character
        ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
        ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
        ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
        ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
        ('\u{1D159}', '\u{1D159}'), // musical symbol null notehead (blank)
        ('\u{1D173}', '\u{1D17A}'), // musical symbol format controls
        ('\u{E0000}', '\u{E0FFF}'), // tags and variation selectors supplement
    ];
    RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fold_case_and_need_a_letter_or_digit() {
        assert_eq!(canonical_id("Alice"), canonical_id("ALICE"));
        for good in ["a", "alice", "Alice.B-2_x", "_a", "9"] {
            assert!(valid_id(good), "{good}");
        }
        let long = "a".repeat(65);
        for bad in [
            ".", "..", "-", "_", "._-", "", "al ice", "ålice", "a/b", &long,
        ] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn display_names_refuse_invisible_and_bidi_characters() {
        for good in ["Alice", "Zoë Ångström", "山田 太郎", "O'Brien-Smith"] {
            assert!(valid_display_name(good), "{good}");
        }
        for bad in [
            "",
            "ad\u{202E}nimda",
            "Al\u{200B}ice",
            "Al\u{200D}ice",
            "\u{FEFF}Alice",
            "Alice\u{2066}",
            "Al\u{00AD}ice",
            "Al\nice",
            "Alice\u{2028}Bob",
            "\u{3164}",
            "Alice\u{E0041}",
        ] {
            assert!(!valid_display_name(bad), "{bad:?}");
        }
        assert!(!valid_display_name(&"x".repeat(65)));
    }

    #[test]
    fn display_names_refuse_blank_and_meaningless_characters() {
        for bad in [
            "\u{2800}",
            "\u{2800}\u{2800}Alice",
            "\u{3164}Alice",
            "\u{FFA0}",
            "\u{115F}\u{1160}",
            "Alice\u{FFFC}",
            "\u{1D159}",
            "Al\u{E000}ice",
            "\u{F0000}",
            "\u{10FFFD}",
            "Alice\u{FFFE}",
            "\u{FFFF}",
            "\u{FDD0}x",
            "x\u{1FFFF}",
            "x\u{10FFFF}",
        ] {
            assert!(!valid_display_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn display_names_need_a_letter_or_digit() {
        for good in ["R2-D2", "7", "Ω", "李", "٣"] {
            assert!(valid_display_name(good), "{good}");
        }
        for bad in ["...", "-", "\u{3000}", "!!!", "\u{1F600}"] {
            assert!(!valid_display_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn display_names_cap_combining_marks() {
        // Accents and vowel signs as scripts use them.
        for good in [
            "Zoe\u{0308}",
            "Nguye\u{0302}\u{0303}n",
            "Vie\u{0323}\u{0302}t",
            "देवनागरी",
            "क्षत्रिय",
            "שָׁלוֹם",
            "A\u{0301}\u{0302}\u{0303}\u{0304}",
        ] {
            assert!(valid_display_name(good), "{good}");
        }
        let tower = format!("A{}", "\u{0336}\u{0489}\u{20DD}".repeat(21));
        for bad in [
            "\u{0301}",
            "\u{0301}Alice",
            "\u{20DD}A",
            "\u{0903}x",
            "A\u{0301}\u{0302}\u{0303}\u{0304}\u{0305}",
            "Al\u{0489}\u{0489}\u{0489}\u{0489}\u{0489}ice",
            tower.as_str(),
        ] {
            assert!(!valid_display_name(bad), "{bad:?}");
        }
    }
}
