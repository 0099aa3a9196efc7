//! The search for "banana" in bytes, ignoring ASCII case: candidate by
//! candidate in a short text, a lowercased chunk at a time in a long one.

use std::sync::LazyLock;

use memchr::memchr2_iter;
use memchr::memmem::Finder;

/// The word the service looks for, in lowercase.
pub const NEEDLE: &[u8] = b"banana";

/// Texts up to this long are searched candidate by candidate; longer ones a
/// chunk at a time.
pub(super) const SMALL: usize = 4096;

/// Bytes lowercased and searched at a time in a long text: large enough
/// that memchr's searcher settles (its prefilter adapts over a haystack),
/// small enough for the stack and the L1/L2 caches.
const CHUNK: usize = 16 * 1024;

/// The needle, searched with memchr's SIMD substring search.
static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(NEEDLE));

/// [`find_iter`](super::find_iter) over bytes. The search is ASCII-only,
/// so any byte range of a UTF-8 text can be searched, char boundary or not.
pub(super) fn find_in(bytes: &[u8]) -> Occurrences<'_> {
    if bytes.len() <= SMALL { Occurrences::Short(ShortFind::new(bytes)) } else { Occurrences::Long(Chunks::new(bytes)) }
}

/// The occurrences in a text, by one of two strategies with one answer.
// The long variant holds its 16 KiB chunk buffer inline on purpose: boxing
// it would allocate on every search.
#[allow(clippy::large_enum_variant)]
pub(super) enum Occurrences<'a> {
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
pub(super) struct ShortFind<'a> {
    bytes: &'a [u8],
    candidates: memchr::Memchr2<'a>,
}

impl<'a> ShortFind<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
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
pub(super) struct Chunks<'a> {
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
    pub(super) fn new(bytes: &'a [u8]) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::{contains_banana, find_iter};

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
}
