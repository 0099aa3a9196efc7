//! Occurrences of "banana" with their line and column, found a window at a
//! time so that a caller can stream them while it scans ([`Scanner`]).

use super::find::{NEEDLE, find_in};

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
    use crate::matcher::find_iter;
    use crate::matcher::tests::{model_offsets, tricky_text};

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
    fn scanner_on_empty_text_is_done() {
        let mut scanner = Scanner::new("");
        assert!(scanner.is_done());
        let mut out = Vec::new();
        scanner.scan_window(16, &mut out);
        assert!(out.is_empty());
    }

    proptest::proptest! {
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
