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
//! against every `char`, and the interop test (`interop/`) checks the answers
//! against Python itself.

use std::sync::LazyLock;

use memchr::memchr2_iter;
use memchr::memmem::Finder;

/// The word the service looks for, in lowercase.
pub const NEEDLE: &[u8] = b"banana";

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

/// Texts up to this long are searched candidate by candidate; longer ones a
/// chunk at a time.
const SMALL: usize = 4096;

/// Bytes lowercased and searched at a time in a long text: large enough
/// that memchr's searcher settles (its prefilter adapts over a haystack),
/// small enough for the stack and the L1/L2 caches.
const CHUNK: usize = 16 * 1024;

/// The needle, searched with memchr's SIMD substring search.
static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(NEEDLE));

/// [`find_iter`] over bytes. The search is ASCII-only, so any byte range of a
/// UTF-8 text can be searched, char boundary or not.
fn find_in(bytes: &[u8]) -> Occurrences<'_> {
    if bytes.len() <= SMALL { Occurrences::Short(ShortFind::new(bytes)) } else { Occurrences::Long(Chunks::new(bytes)) }
}

/// The occurrences in a text, by one of two strategies with one answer.
// The long variant holds its 16 KiB chunk buffer inline on purpose: boxing
// it would allocate on every search.
#[allow(clippy::large_enum_variant)]
enum Occurrences<'a> {
    /// A short text.
    Short(ShortFind<'a>),
    /// A long text.
    Long(Chunks<'a>),
}

impl Iterator for Occurrences<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            Self::Short(short) => short.next(),
            Self::Long(chunks) => chunks.next(),
        }
    }
}

/// 'b' is rare in most short text: find each 'b' (memchr, SIMD) and compare
/// the six bytes there. Nothing to set up, so the fastest on a query.
struct ShortFind<'a> {
    bytes: &'a [u8],
    candidates: memchr::Memchr2<'a>,
}

impl<'a> ShortFind<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, candidates: memchr2_iter(b'b', b'B', bytes) }
    }
}

impl Iterator for ShortFind<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let bytes = self.bytes;
        self.candidates
            .find(|&at| bytes.get(at..at + NEEDLE.len()).is_some_and(|window| window.eq_ignore_ascii_case(NEEDLE)))
    }
}

/// In a long text 'b' is common enough that a call per candidate costs more
/// than lowercasing (ASCII only, vectorised) a chunk into a stack buffer and
/// searching it with memchr's SIMD substring search. Each chunk is lowercased
/// with the next five bytes, so that an occurrence across a chunk boundary is
/// found (in the chunk where it starts).
struct Chunks<'a> {
    bytes: &'a [u8],
    /// Where the current chunk starts in `bytes`.
    start: usize,
    /// The current chunk, lowercased, and the bytes that follow it.
    lowered: [u8; CHUNK + NEEDLE.len() - 1],
    /// How much of `lowered` holds text (0 before the first chunk).
    len: usize,
    /// Where in `lowered` the search goes on.
    at: usize,
}

impl<'a> Chunks<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, start: 0, lowered: [0; CHUNK + NEEDLE.len() - 1], len: 0, at: 0 }
    }
}

impl Iterator for Chunks<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        loop {
            if self.len > 0 {
                let found = FINDER.find(&self.lowered[self.at..self.len]).map(|i| self.at + i);
                // Occurrences starting past the chunk belong to the next one.
                if let Some(i) = found.filter(|&i| i < CHUNK) {
                    self.at = i + NEEDLE.len();
                    return Some(self.start + i);
                }
                self.start += CHUNK;
            }
            if self.start >= self.bytes.len() {
                return None;
            }
            let end = (self.start + self.lowered.len()).min(self.bytes.len());
            let source = &self.bytes[self.start..end];
            for (lower, byte) in self.lowered.iter_mut().zip(source) {
                *lower = byte.to_ascii_lowercase();
            }
            self.len = source.len();
            self.at = 0;
        }
    }
}

/// One occurrence of "banana" found by [`Scanner`], positioned in its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// 1-based line number; lines are separated by `\n`.
    pub line: u64,
    /// 1-based byte column within the line.
    pub column: u64,
    /// 0-based byte offset from the start of the text.
    pub offset: u64,
}

/// Finds occurrences of "banana" in a text a window at a time, tracking line
/// numbers as it goes, so a caller can stream results while it scans.
///
/// It owns or borrows its text: `Scanner<String>` lives in a response stream,
/// `Scanner<&str>` anywhere else.
#[derive(Debug)]
pub struct Scanner<T> {
    text: T,
    /// Where the next search starts.
    pos: usize,
    /// Newlines before `counted` have been counted into `line`.
    counted: usize,
    /// The 1-based number of the line holding `counted`.
    line: u64,
    /// Byte offset of the start of `line`.
    line_start: usize,
}

impl<T: AsRef<str>> Scanner<T> {
    /// A scanner at the start of `text`.
    #[must_use]
    pub fn new(text: T) -> Self {
        Self { text, pos: 0, counted: 0, line: 1, line_start: 0 }
    }

    /// Whether the whole text has been scanned.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.pos >= self.text.as_ref().len()
    }

    /// Scans the next `window` bytes (at least one), appending every
    /// occurrence that starts in them to `out`, in order.
    ///
    /// Bounding the bytes per call bounds the time per call, so a caller can
    /// send what it found, notice a cancelled call, and go on. Each byte of
    /// the text is searched once and counted for newlines once, over all calls.
    pub fn scan_window(&mut self, window: usize, out: &mut Vec<Occurrence>) {
        let bytes = self.text.as_ref().as_bytes();
        let end = self.pos.saturating_add(window.max(1)).min(bytes.len());
        // An occurrence that starts before `end` may finish after it.
        let limit = end.saturating_add(NEEDLE.len() - 1).min(bytes.len());
        let base = self.pos;
        for at in find_in(&bytes[base..limit]).map(|at| base + at) {
            if at >= end {
                break;
            }
            // Newlines are counted only up to each occurrence, once.
            for newline in memchr::memchr_iter(b'\n', &bytes[self.counted..at]) {
                self.line += 1;
                self.line_start = self.counted + newline + 1;
            }
            self.counted = at;
            out.push(Occurrence { line: self.line, column: (at - self.line_start + 1) as u64, offset: at as u64 });
        }
        self.pos = end;
    }
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

    fn scan_all(text: &str, window: usize) -> Vec<Occurrence> {
        let mut scanner = Scanner::new(text);
        let mut out = Vec::new();
        while !scanner.is_done() {
            scanner.scan_window(window, &mut out);
        }
        out
    }

    #[test]
    fn scanner_positions_lines_columns_and_offsets() {
        let text = "banana\nno\nxxBANANA yy bAnAna\n\nbana\nna\né banana";
        let expected = vec![
            Occurrence { line: 1, column: 1, offset: 0 },
            Occurrence { line: 3, column: 3, offset: 12 },
            Occurrence { line: 3, column: 13, offset: 22 },
            Occurrence { line: 7, column: 4, offset: 41 },
        ];
        for (i, occurrence) in expected.iter().enumerate() {
            let at = occurrence.offset as usize;
            assert!(text[at..at + 6].eq_ignore_ascii_case("banana"), "case {i}");
        }
        for window in [1, 2, 5, 6, 7, 13, 64, 1 << 16] {
            assert_eq!(scan_all(text, window), expected, "window {window}");
        }
    }

    #[test]
    fn scanner_matches_find_iter_on_large_text() {
        let text = "line with banana\nand one without\nBANANA banana\n".repeat(20_000);
        let offsets: Vec<u64> = find_iter(&text).map(|at| at as u64).collect();
        assert_eq!(offsets.len(), 60_000);
        for window in [4096, 65_536] {
            let found = scan_all(&text, window);
            assert_eq!(found.iter().map(|o| o.offset).collect::<Vec<_>>(), offsets);
            let last = found.last().copied();
            assert_eq!(last.map(|o| (o.line, o.column)), Some((60_000, 8)));
        }
    }

    #[test]
    fn long_texts_find_occurrences_across_chunk_boundaries() {
        // An occurrence at every offset around the chunk boundaries, in a
        // text long enough for the chunked search, cased every way.
        for at in (CHUNK - 8..=CHUNK + 2).chain(2 * CHUNK - 6..=2 * CHUNK) {
            for word in ["banana", "BANANA", "bAnAnA"] {
                let mut text = "x".repeat(3 * CHUNK);
                text.replace_range(at..at + 6, word);
                assert_eq!(find_iter(&text).collect::<Vec<_>>(), [at], "{word} at {at}");
                assert!(contains_banana(&text));
            }
        }
        // Back to back across a boundary, and the short strategy agrees.
        let text = format!("{}bananaBANANA{}", "y".repeat(CHUNK - 9), "y".repeat(CHUNK));
        assert_eq!(find_iter(&text).collect::<Vec<_>>(), [CHUNK - 9, CHUNK - 3]);
        let short: Vec<usize> = memchr2_iter(b'b', b'B', text.as_bytes())
            .filter(|&i| text.as_bytes()[i..].len() >= 6 && text.as_bytes()[i..i + 6].eq_ignore_ascii_case(NEEDLE))
            .collect();
        assert_eq!(short, [CHUNK - 9, CHUNK - 3]);
    }

    #[test]
    fn scanner_on_empty_text_is_done() {
        let mut scanner = Scanner::new("");
        assert!(scanner.is_done());
        let mut out = Vec::new();
        scanner.scan_window(16, &mut out);
        assert!(out.is_empty());
    }

    /// Strings over the letters of the word in both cases, with separators
    /// and Unicode that lowercases oddly: matches are common, and so are
    /// near misses.
    fn tricky_text() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("[bBaAnN \\n\u{130}\u{212a}\u{131}ß\u{301}é🍌x]{0,64}").expect("a valid regex")
    }

    /// Where the word starts, by the simplest search there is: a window
    /// at every byte, compared ignoring ASCII case.
    fn model_offsets(text: &str) -> Vec<usize> {
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

        #[test]
        fn scanning_in_windows_finds_what_one_search_finds(
            text in tricky_text(),
            window in 1usize..20,
        ) {
            let mut scanner = Scanner::new(text.as_str());
            let mut found = Vec::new();
            while !scanner.is_done() {
                scanner.scan_window(window, &mut found);
            }
            let expected: Vec<Occurrence> = model_offsets(&text)
                .into_iter()
                .map(|at| {
                    let before = &text.as_bytes()[..at];
                    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                    let line = 1 + before.iter().filter(|&&b| b == b'\n').count() as u64;
                    Occurrence { line, column: (at - line_start + 1) as u64, offset: at as u64 }
                })
                .collect();
            proptest::prop_assert_eq!(found, expected);
        }
    }
}
