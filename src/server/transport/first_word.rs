//! A new connection's first word: the HTTP/2 preface and SETTINGS, or an
//! HTTP/1.1 request head, which must arrive within the handshake timeout
//! (`--handshake-timeout`); hyper bounds the HTTP/1.1 head's time but not
//! the HTTP/2 preface's. The parser sees each byte once, however the peer
//! cuts what it sends.

use std::pin::Pin;

use tokio::sync::oneshot;
use tokio::time::Sleep;

/// The first bytes of an HTTP/2 connection (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The frame header's length and the SETTINGS frame's type.
const FRAME_HEADER: usize = 9;
const SETTINGS: u8 = 0x4;

/// The most bytes looked at for the first word: past that, hyper's own
/// limits on heads and frames decide.
const FIRST_WORD_MAX: usize = 64 << 10;

/// Waiting for a connection's first word (see the module documentation).
#[derive(Debug)]
pub(super) struct FirstWord {
    pub(super) deadline: Pin<Box<Sleep>>,
    pub(super) parser: FirstWordParser,
    /// Dropped with the wait: tells [`Connection::first_word_said`]'s future.
    ///
    /// [`Connection::first_word_said`]: super::Connection::first_word_said
    pub(super) _waiting: oneshot::Sender<()>,
}

/// Follows a connection's first bytes until its first word is complete.
/// It keeps a few bytes, not the word: the preface and the first frame's
/// header (33 bytes), and the last 3 bytes read, where an HTTP/1.1 head's
/// empty line may begin. Each byte is looked at once, however the peer
/// cuts what it sends.
#[derive(Debug, Default)]
pub(super) struct FirstWordParser {
    /// The connection's first bytes, up to the preface and a frame header.
    head: Vec<u8>,
    /// The last bytes read (at most 3).
    tail: Vec<u8>,
    /// Bytes read in all.
    read: usize,
}

impl FirstWordParser {
    /// Adds what was read; true once the first word is complete (or long
    /// enough that hyper's limits take over).
    pub(super) fn feed(&mut self, data: &[u8]) -> bool {
        let keep = (PREFACE.len() + FRAME_HEADER).saturating_sub(self.head.len()).min(data.len());
        self.head.extend_from_slice(&data[..keep]);
        self.read += data.len();
        let found = self.empty_line_in(data);
        if self.read >= FIRST_WORD_MAX {
            return true;
        }
        let head = &self.head[..];
        if head.len() < PREFACE.len() && PREFACE.starts_with(head) {
            return false; // maybe HTTP/2, not yet sure
        }
        if let Some(frame) = head.strip_prefix(PREFACE) {
            // The client's SETTINGS must follow the preface; anything else is
            // a protocol error hyper answers at once.
            let Some(header) = frame.get(..FRAME_HEADER) else { return false };
            let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            return header[3] != SETTINGS || self.read >= PREFACE.len() + FRAME_HEADER + len;
        }
        // HTTP/1.1: the request head ends with an empty line.
        found
    }

    /// Whether `\r\n\r\n` ends in `data`, counting the bytes before it; and
    /// remembers the last 3 bytes for the next read.
    fn empty_line_in(&mut self, data: &[u8]) -> bool {
        const EMPTY_LINE: &[u8] = b"\r\n\r\n";
        let mut edge = std::mem::take(&mut self.tail);
        edge.extend_from_slice(&data[..data.len().min(EMPTY_LINE.len() - 1)]);
        let found = edge.windows(EMPTY_LINE.len()).any(|w| w == EMPTY_LINE)
            || data.windows(EMPTY_LINE.len()).any(|w| w == EMPTY_LINE);
        edge.extend_from_slice(&data[data.len().min(EMPTY_LINE.len() - 1)..]);
        self.tail = edge.split_off(edge.len().saturating_sub(EMPTY_LINE.len() - 1));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the first word is complete, fed in two reads cut at `cut`:
    /// the number of bytes fed when `feed` first says so.
    fn completes_at(bytes: &[u8], cut: usize) -> Option<usize> {
        let mut parser = FirstWordParser::default();
        if parser.feed(&bytes[..cut]) {
            return Some(cut);
        }
        // The rest byte by byte, to see exactly where it completes.
        (cut..bytes.len()).find(|&at| parser.feed(&bytes[at..=at])).map(|at| at + 1)
    }

    #[test]
    fn the_first_word_completes_where_it_ends_however_it_is_cut() {
        let h2: Vec<u8> = [PREFACE, &[0, 0, 6, SETTINGS, 0, 0, 0, 0, 0], &[0, 3, 0, 0, 0, 100], b"more"].concat();
        let h2_end = PREFACE.len() + FRAME_HEADER + 6;
        let h1 = b"POST /x HTTP/1.1\r\nHost: a\r\n\r\nbody".to_vec();
        let h1_end = h1.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4);
        for cut in 0..h2_end {
            assert_eq!(completes_at(&h2, cut), Some(h2_end), "HTTP/2, cut at {cut}");
        }
        for cut in 0..h1_end.unwrap_or_default() {
            assert_eq!(completes_at(&h1, cut), h1_end, "HTTP/1.1, cut at {cut}");
        }
        // A preface followed by something else than SETTINGS: hyper's to judge.
        let other: Vec<u8> = [PREFACE, &[0, 0, 0, 0x1, 0, 0, 0, 0, 1]].concat();
        assert_eq!(completes_at(&other, other.len()), Some(other.len()));
        // Half a head is not a first word.
        assert_eq!(completes_at(b"POST /x HTTP/1.1\r\nHost: a\r\n", 5), None);
    }
}
