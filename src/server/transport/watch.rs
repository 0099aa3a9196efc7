//! Watching an HTTP/2 connection's frames for the abuse hyper's HTTP/2
//! stack (h2) does not bound by itself.
//!
//! h2 already answers with a GOAWAY (ENHANCE_YOUR_CALM) a CONTINUATION
//! flood, a header block past `--max-header-bytes` many times over, a flood
//! of small or empty DATA frames, 1,024 streams it had to reset, and
//! streams reset before the server took them (the batched form of rapid
//! reset, CVE-2023-44487); and it answers one PING or SETTINGS at a time,
//! reading no more while its answer waits, so a client that stops reading
//! cannot make it buffer. What it does not bound is a client that reads:
//!
//! - PING and SETTINGS frames, each of which the server must answer: as
//!   grpc does, one that comes less than `--min-ping-interval` after the
//!   previous one, with no answer data (HEADERS or DATA) sent in between, is
//!   a strike; the third strike closes the connection (`too_many_pings`,
//!   `too_many_settings`);
//! - streams opened and reset one by one, each taken and started by the
//!   server before its reset arrives, or reset by the server because the
//!   client sent a frame it had to refuse (MadeYouReset): as Envoy does,
//!   once 500 streams were reset soon after they opened, and more than half
//!   of all the client opened, the connection is closed (`too_many_resets`;
//!   the budget is `resets.rs`).
//!
//! The watcher sees the bytes between hyper and the socket (above TLS):
//! the client's frames as they are read, and the server's as they are
//! written, to know where a frame ends and which resets the server sends.
//! It cannot speak for hyper, so when it closes a connection it writes the
//! GOAWAY itself between two of hyper's frames, then ends the connection.

use std::time::Duration;

use tokio::time::Instant;

use super::cursor::{Cursor, DATA, FRAME_HEADER, HEADERS, RST_STREAM, SETTINGS, Seen};
use super::resets::Resets;

/// The HTTP/2 connection preface a client starts with.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113, section 6), and those of `cursor.rs`.
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
/// The ACK flag of SETTINGS and PING.
const ACK: u8 = 0x1;
/// The flag of a HEADERS or DATA frame that ends its side of the stream.
const END_STREAM: u8 = 0x1;
/// The ENHANCE_YOUR_CALM error code.
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Strikes allowed; one more closes the connection (grpc's default).
const MAX_STRIKES: u32 = 2;

/// Frames that demand an answer, counted against the strike rule.
#[derive(Debug, Default)]
struct Strikes {
    /// When the last one came, and how many answer frames the server had
    /// sent by then.
    last: Option<(Instant, u64)>,
    strikes: u32,
}

impl Strikes {
    /// Counts one frame; true when it is one strike too many.
    fn strike(&mut self, now: Instant, answered: u64, min_interval: Duration) -> bool {
        match self.last {
            // Answers went out since the last one: the client is working.
            Some((_, before)) if before != answered => self.strikes = 0,
            Some((at, _)) if now.duration_since(at) < min_interval => self.strikes += 1,
            _ => {}
        }
        self.last = Some((now, answered));
        self.strikes > MAX_STRIKES
    }
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// Too many of what.
pub(super) enum Abuse {
    Pings,
    Settings,
    Resets,
}

impl Abuse {
    /// The GOAWAY's debug data (grpc's words for the first one).
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Pings => "too_many_pings",
            Self::Settings => "too_many_settings",
            Self::Resets => "too_many_resets",
        }
    }
}

/// The watcher of one connection (see the module documentation).
#[derive(Debug)]
pub(super) struct Watch {
    min_ping_interval: Duration,
    /// Preface bytes matched so far; `None` once the connection is known
    /// not to be HTTP/2 (HTTP/1.1: nothing to watch).
    preface: Option<usize>,
    read: Cursor,
    written: Cursor,
    /// HEADERS and DATA frames the server has written.
    answered: u64,
    pings: Strikes,
    settings: Strikes,
    /// Streams opened and reset.
    resets: Resets,
    /// The highest stream the client opened.
    last_stream: u32,
    verdict: Option<Abuse>,
}

impl Watch {
    pub(super) fn new(min_ping_interval: Duration) -> Self {
        Self {
            min_ping_interval,
            preface: Some(0),
            read: Cursor::default(),
            written: Cursor::default(),
            answered: 0,
            pings: Strikes::default(),
            settings: Strikes::default(),
            resets: Resets::default(),
            last_stream: 0,
            verdict: None,
        }
    }

    /// Follows bytes the client sent; the abuse found, the first time.
    pub(super) fn read(&mut self, mut data: &[u8]) -> Option<Abuse> {
        if self.verdict.is_some() {
            return None;
        }
        if let Some(matched) = self.preface {
            if matched < PREFACE.len() {
                let take = (PREFACE.len() - matched).min(data.len());
                if data[..take] != PREFACE[matched..matched + take] {
                    self.preface = None;
                    return None;
                }
                self.preface = Some(matched + take);
                data = &data[take..];
            }
        } else {
            return None;
        }
        // The clock is read only for the frames whose time matters.
        let mut now = None;
        let mut found = None;
        let (pings, settings, answered, min) =
            (&mut self.pings, &mut self.settings, self.answered, self.min_ping_interval);
        let (resets, last_stream) = (&mut self.resets, &mut self.last_stream);
        self.read.feed(data, |seen| {
            let Seen::Frame(head) = seen else { return };
            let abuse = match head.kind {
                PING if head.flags & ACK == 0 => {
                    pings.strike(*now.get_or_insert_with(Instant::now), answered, min).then_some(Abuse::Pings)
                }
                SETTINGS if head.flags & ACK == 0 => {
                    settings.strike(*now.get_or_insert_with(Instant::now), answered, min).then_some(Abuse::Settings)
                }
                HEADERS if head.stream > *last_stream => {
                    *last_stream = head.stream;
                    resets.opened(head.stream, *now.get_or_insert_with(Instant::now));
                    None
                }
                RST_STREAM => {
                    resets.client_reset(head.stream, *now.get_or_insert_with(Instant::now)).then_some(Abuse::Resets)
                }
                _ => None,
            };
            found = found.or(abuse);
        });
        self.verdict = found;
        found
    }

    /// Follows bytes the server wrote; the abuse found (resets the client
    /// made the server send), the first time.
    pub(super) fn written(&mut self, data: &[u8]) -> Option<Abuse> {
        // Nothing to follow on HTTP/1.1.
        self.preface?;
        let (answered, resets, mut found) = (&mut self.answered, &mut self.resets, None);
        self.written.feed(data, |seen| match seen {
            Seen::Frame(head) if matches!(head.kind, HEADERS | DATA) => {
                *answered += 1;
                if head.flags & END_STREAM != 0 {
                    resets.answered(head.stream);
                }
            }
            Seen::Reset { stream, code } if resets.server_reset(stream, code) => found = Some(Abuse::Resets),
            _ => {}
        });
        if self.verdict.is_some() {
            return None;
        }
        self.verdict = found;
        found
    }

    /// Whether a connection closing for abuse may write its GOAWAY now:
    /// the server's last frame is whole.
    pub(super) fn at_boundary(&self) -> bool {
        self.written.at_boundary()
    }

    /// How many bytes of `len` the server may still write before the
    /// GOAWAY: the rest of the frame it is in.
    pub(super) fn rest_of_frame(&self, len: usize) -> usize {
        if self.written.have > 0 {
            // Inside a frame header: its rest; the payload's length is not
            // known yet, so one byte at a time until it is.
            return len.min(FRAME_HEADER - self.written.have);
        }
        len.min(self.written.payload_left)
    }

    /// The GOAWAY frame that closes the connection for `abuse`.
    pub(super) fn goaway(&self, abuse: Abuse) -> Vec<u8> {
        let debug = abuse.name().as_bytes();
        let len = u32::try_from(8 + debug.len()).unwrap_or(8).to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], GOAWAY, 0, 0, 0, 0, 0];
        frame.extend_from_slice(&self.last_stream.to_be_bytes());
        frame.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
        frame.extend_from_slice(debug);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::super::cursor::frame;
    use super::*;

    fn connection(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        out.extend(frames.concat());
        out
    }

    #[tokio::test(start_paused = true)]
    async fn the_third_quick_ping_without_answers_is_one_too_many() {
        let mut watch = Watch::new(Duration::from_secs(300));
        let ping = frame(PING, 0, 0, &[0; 8]);
        assert_eq!(watch.read(&connection(&[frame(SETTINGS, 0, 0, &[])])), None);
        // The first ping is free; then two strikes; the third is too many.
        for _ in 0..3 {
            assert_eq!(watch.read(&ping), None);
        }
        assert_eq!(watch.read(&ping), Some(Abuse::Pings));
        let goaway = watch.goaway(Abuse::Pings);
        assert_eq!(&goaway[3..4], &[GOAWAY]);
        assert_eq!(&goaway[13..17], &ENHANCE_YOUR_CALM.to_be_bytes());
        assert_eq!(&goaway[17..], b"too_many_pings");
    }

    #[tokio::test(start_paused = true)]
    async fn pings_are_free_while_the_server_answers_or_when_spaced() {
        let mut watch = Watch::new(Duration::from_secs(10));
        let ping = frame(PING, 0, 0, &[0; 8]);
        watch.read(PREFACE);
        for _ in 0..100 {
            assert_eq!(watch.read(&ping), None);
            // Data sent in between (a BDP probe, say) resets the strikes.
            watch.written(&frame(DATA, 0, 1, &[0; 10]));
        }
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(11)).await;
            assert_eq!(watch.read(&ping), None);
        }
        // ACKs are answers, not questions.
        for _ in 0..100 {
            assert_eq!(watch.read(&frame(PING, ACK, 0, &[0; 8])), None);
        }
    }

    #[test]
    fn quick_resets_either_way_close_the_connection() {
        let mut watch = Watch::new(Duration::from_secs(300));
        watch.read(PREFACE);
        let mut stream = 1;
        // Each stream opened and reset at once: by the client, or by the
        // server because the client sent a frame it had to refuse.
        let verdict = (0..10_000).find_map(|i| {
            let reset = frame(RST_STREAM, 0, stream, &[0, 0, 0, if i % 2 == 0 { 8 } else { 1 }]);
            let mut bytes = frame(HEADERS, 4, stream, &[0x83]);
            stream += 2;
            if i % 2 == 0 {
                bytes.extend(reset);
                return watch.read(&bytes);
            }
            assert_eq!(watch.read(&bytes), None);
            // Answered whole first (a reset with NO_ERROR does not count).
            assert_eq!(watch.written(&frame(RST_STREAM, 0, stream - 2, &[0; 4])), None);
            watch.written(&reset)
        });
        assert_eq!(verdict, Some(Abuse::Resets));
        assert_eq!(watch.goaway(Abuse::Resets)[9..13], 999u32.to_be_bytes(), "the 500th stream");
        // The verdict is given once.
        assert_eq!(watch.read(&frame(RST_STREAM, 0, 1001, &[0, 0, 0, 8])), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_after_the_whole_answer_does_not_count() {
        let mut watch = Watch::new(Duration::from_secs(300));
        watch.read(PREFACE);
        // Each call refused at once (a shed call's trailers-only answer)
        // before its client had sent its message, which its client then
        // cancels: an overloaded server's refusals, not a flood.
        for stream in (1..20_000).step_by(2) {
            assert_eq!(watch.read(&frame(HEADERS, 4, stream, &[0x83])), None);
            assert_eq!(watch.written(&frame(HEADERS, 4 | END_STREAM, stream, &[0x88])), None);
            assert_eq!(watch.read(&frame(RST_STREAM, 0, stream, &[0, 0, 0, 8])), None, "stream {stream}");
        }
        // The same resets after the answer's head but before its end are a
        // flood, once they are more than half of all the streams.
        let flood = (20_001..80_000).step_by(2).find_map(|stream| {
            assert_eq!(watch.read(&frame(HEADERS, 4, stream, &[0x83])), None);
            assert_eq!(watch.written(&frame(HEADERS, 4, stream, &[0x88])), None);
            watch.read(&frame(RST_STREAM, 0, stream, &[0, 0, 0, 8]))
        });
        assert_eq!(flood, Some(Abuse::Resets));
    }

    #[test]
    fn http1_is_not_watched() {
        let mut watch = Watch::new(Duration::from_secs(1));
        let ping = frame(PING, 0, 0, &[0; 8]);
        assert_eq!(watch.read(b"POST / HTTP/1.1\r\n"), None);
        for _ in 0..10 {
            assert_eq!(watch.read(&ping), None);
        }
    }

    #[test]
    fn the_server_may_finish_its_frame_before_the_goaway() {
        let mut watch = Watch::new(Duration::from_secs(1));
        watch.read(PREFACE);
        let data = frame(DATA, 0, 1, &[7; 100]);
        watch.written(&data[..4]);
        assert_eq!(watch.rest_of_frame(1000), 5);
        watch.written(&data[4..50]);
        assert!(!watch.at_boundary());
        assert_eq!(watch.rest_of_frame(1000), 59);
        watch.written(&data[50..]);
        assert!(watch.at_boundary());
    }
}
