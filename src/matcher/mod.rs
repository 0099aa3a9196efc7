//! The domain: does a text contain "banana", ignoring case, exactly as the
//! original Python `"banana" in text.lower()` answers. Pure functions, no I/O.
//!
//! Python's `str.lower()` maps only `A`-`Z` among ASCII to `a`-`z`, and no
//! other code point lowercases to anything holding `b`, `a` or `n` (the one
//! multi-character mapping, 'İ' U+0130 -> "i\u{307}", holds none of them; the
//! Kelvin sign lowercases to 'k'). So every "banana" in `text.lower()` comes
//! from six ASCII bytes of `text` spelling "banana" in any case, and the
//! answer is an ASCII case-insensitive byte search: no lowering, no
//! allocation. `lowercase_never_makes_banana_letters` checks that premise
//! against every `char`, and the interop test (`peers/`) checks the answers
//! against Python itself.
//!
//! Files:
//! - `mod.rs`: the answers ([`contains_banana`], [`status`], [`find_iter`]),
//!   checked against Python's.
//! - `find.rs`: the byte search, by one of two strategies by length.
//! - `scanner.rs`: occurrences with their line and column, a window at a
//!   time ([`Scanner`]).

mod find;
mod scanner;

pub use self::find::NEEDLE;
use self::find::{Chunks, SMALL, ShortFind, find_in};
pub use self::scanner::{Occurrence, Scanner};

/// Reports whether `text` contains "banana", ignoring case.
///
/// Same answer as Python's `"banana" in text.lower()` for every string.
#[must_use]
pub fn contains_banana(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() <= SMALL { ShortFind::new(bytes).next().is_some() } else { Chunks::new(bytes).next().is_some() }
}

/// The wire status for `text`: 1 if it contains "banana", ignoring case, else 0.
#[must_use]
pub fn status(text: &str) -> i32 {
    i32::from(contains_banana(text))
}

/// The byte offsets of every occurrence of "banana" in `text`, ignoring case,
/// in increasing order.
///
/// Occurrences never overlap: "banana" has no proper prefix that is also a
/// suffix, since its only 'b' is its first letter.
pub fn find_iter(text: &str) -> impl Iterator<Item = usize> + '_ {
    find_in(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: the original Python expression, transcribed. Rust's
    /// `to_lowercase` applies the same full (multi-char) mappings as Python.
    fn python_answer(text: &str) -> bool {
        text.to_lowercase().contains("banana")
    }

    fn check(text: &str, expected: bool) {
        assert_eq!(contains_banana(text), expected, "{text:?}");
        assert_eq!(python_answer(text), expected, "reference disagrees on {text:?}");
        assert_eq!(status(text), i32::from(expected));
    }

    #[test]
    fn ascii_case_mixes() {
        for text in ["banana", "Banana", "BANANA", "bAnAnA", "I like bananas", "xxBANANAxx", "bananabanana"] {
            check(text, true);
        }
        for text in ["Apple", "banan", "anana", "ban ana", "b-a-n-a-n-a", "bannana", "ananab"] {
            check(text, false);
        }
    }

    #[test]
    fn empty_and_boundaries() {
        check("", false);
        check("b", false);
        check("banan", false);
        check("banana", true);
        check("bbanana", true);
        check("bananb", false);
    }

    #[test]
    fn unicode_neither_hides_nor_fakes_a_match() {
        // Turkish dotted capital I lowercases to two chars, "i\u{307}".
        check("İbanana", true);
        check("bananaİ", true);
        check("banİana", false);
        // The Kelvin sign lowercases to ASCII 'k': it must not break or make words.
        check("\u{212A}banana", true);
        check("ban\u{212A}ana", false);
        // Full-width letters lowercase to full-width letters, never to ASCII.
        check("ＢＡＮＡＮＡ", false);
        check("ｂａｎａｎａ", false);
        // A combining mark between letters makes another word.
        check("banan\u{301}a", false);
        check("bana\u{308}na", false);
        // ...but after the word it does not undo the match.
        check("banana\u{301}", true);
        // Greek final sigma and other scripts around the word.
        check("ΣΑΣbananaΣ", true);
        check("バナナ banana バナナ", true);
        check("バナナ", false);
        check("🍌BaNaNa🍌", true);
    }

    #[test]
    fn line_breaks_split_the_word() {
        check("bana\nna", false);
        check("bana\r\nna", false);
        check("apple\nbanana\n", true);
        check("apple\r\nBANANA\r\n", true);
    }

    #[test]
    fn a_query_of_several_mib() {
        let mut text = "x".repeat(5 << 20);
        check(&text, false);
        text.push_str("BaNaNa");
        check(&text, true);
        let text = format!("banana{}", "é".repeat(3 << 20));
        check(&text, true);
        // A long run of near misses: every 'b' is a candidate.
        let text = "banan".repeat(1 << 20);
        check(&text, false);
    }

    /// The premise of the byte search: lowercasing never produces 'b', 'a' or
    /// 'n' from anything but those letters in either case, so no non-ASCII
    /// text can make or break an occurrence.
    #[test]
    fn lowercase_never_makes_banana_letters() {
        let offenders: Vec<char> = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|c| !"bBaAnN".contains(*c))
            .filter(|c| c.to_lowercase().any(|l| "ban".contains(l)))
            .collect();
        assert_eq!(offenders, Vec::<char>::new());
    }

    #[test]
    fn agrees_with_the_reference_on_generated_strings() {
        // Every string of length <= 7 over an alphabet of case variants, the
        // letters' neighbours in tricky scripts and separators.
        let alphabet = ['b', 'B', 'a', 'A', 'n', 'N', 'İ', '\u{212A}', 'ａ', '\n', '\u{301}'];
        let mut strings = vec![String::new()];
        for _ in 0..6 {
            let next: Vec<String> = strings
                .iter()
                .filter(|s| s.chars().count() < 6)
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(next);
            strings.dedup();
        }
        let mut matches = 0;
        for text in &strings {
            assert_eq!(contains_banana(text), python_answer(text), "{text:?}");
            matches += usize::from(contains_banana(text));
        }
        assert!(matches > 0, "the generated set must hold matches to be a test");
    }

    /// Strings over the letters of the word in both cases, with separators
    /// and Unicode that lowercases oddly: matches are common, and so are
    /// near misses.
    pub(super) fn tricky_text() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("[bBaAnN \\n\u{130}\u{212a}\u{131}ß\u{301}é🍌x]{0,64}").expect("a valid regex")
    }

    /// Where the word starts, by the simplest search there is: a window
    /// at every byte, compared ignoring ASCII case.
    pub(super) fn model_offsets(text: &str) -> Vec<usize> {
        text.as_bytes()
            .windows(NEEDLE.len())
            .enumerate()
            .filter(|(_, w)| w.eq_ignore_ascii_case(NEEDLE))
            .map(|(i, _)| i)
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn the_answer_is_pythons_for_any_text(text in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(contains_banana(&text), python_answer(&text));
        }

        #[test]
        fn the_answer_is_pythons_for_tricky_text(text in tricky_text()) {
            proptest::prop_assert_eq!(contains_banana(&text), python_answer(&text));
            proptest::prop_assert_eq!(find_iter(&text).collect::<Vec<_>>(), model_offsets(&text));
        }
    }
}
