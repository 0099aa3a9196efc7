//! The reset budget of one HTTP/2 connection: streams reset soon after they
//! opened, whether the client reset them (rapid reset, CVE-2023-44487) or
//! made the server reset them with a frame it had to refuse (MadeYouReset,
//! CVE-2025-8671), against all the streams the client opened.
//!
//! As Envoy does, only premature resets count: a stream the client resets
//! within [`PREMATURE`] of opening it. A flood resets its streams at once, to
//! free their places for the next ones; a client cancelling calls at their
//! deadline, or because it stopped wanting them, resets streams that have
//! lived as long as the deadline. Envoy's line is 1 s; here it is 100 ms,
//! which lets calls with deadlines from a few hundred milliseconds be
//! cancelled in any number, while a flood that waits out the line before
//! each reset is held to `--max-concurrent-streams` streams per 100 ms on a
//! connection: a few thousand a second, each of which held its place a
//! hundred times longer than a Search takes. The server's own resets count
//! whatever the stream's age, unless they blame the server (NO_ERROR after
//! a complete answer, CANCEL, INTERNAL_ERROR). A young stream the server
//! has answered whole may be reset freely, either way: an overloaded server
//! refuses calls at once, often before their clients have sent their
//! messages; those clients then cancel streams they no longer need, and
//! h2 answers the messages that arrive after it forgot the stream with
//! STREAM_CLOSED. A flood's streams are reset before their answers, and
//! so are the streams MadeYouReset has the server reset while it serves
//! them.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// A client's reset of a stream younger than this is premature.
pub(super) const PREMATURE: Duration = Duration::from_millis(100);
/// Premature resets a connection may have before their share is judged.
const MIN_RESETS: u64 = 500;
/// The most young streams remembered: a stream pushed out by as many newer
/// ones may be reset without counting, which costs its client a thousand
/// streams it did not reset.
const YOUNG_MAX: usize = 1024;

/// Error codes (RFC 9113, section 7) of server resets that blame the server
/// or nobody, and so do not count.
const NO_ERROR: u32 = 0x0;
const INTERNAL_ERROR: u32 = 0x2;
const CANCEL: u32 = 0x8;

/// A stream opened within the last [`PREMATURE`].
#[derive(Debug)]
struct Young {
    stream: u32,
    opened: Instant,
    /// The server has ended its answer on it.
    answered: bool,
}

/// The reset budget of one connection (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Resets {
    /// The streams opened within the last [`PREMATURE`] whose resets have
    /// not been counted, oldest (lowest) first, and whether the server has
    /// answered each whole.
    young: VecDeque<Young>,
    /// Streams the client opened.
    opened: u64,
    /// Premature client resets and server resets the client caused.
    counted: u64,
}

impl Resets {
    /// The client opened `stream` (higher than any before) at `now`.
    pub(super) fn opened(&mut self, stream: u32, now: Instant) {
        self.opened += 1;
        self.forget_older(now);
        if self.young.len() == YOUNG_MAX {
            self.young.pop_front();
        }
        self.young.push_back(Young { stream, opened: now, answered: false });
    }

    /// The client reset `stream` at `now`; true when that is one too many.
    pub(super) fn client_reset(&mut self, stream: u32, now: Instant) -> bool {
        self.forget_older(now);
        // Counted once, however many resets the stream gets.
        self.reset_young(stream) == Some(false) && self.count()
    }

    /// The server ended its answer on `stream`: a reset of it from now on
    /// costs the server nothing, so it does not count.
    pub(super) fn answered(&mut self, stream: u32) {
        if let Ok(at) = self.young.binary_search_by_key(&stream, |young| young.stream) {
            self.young[at].answered = true;
        }
    }

    /// The server reset `stream` with `code`; true when that is one too many.
    pub(super) fn server_reset(&mut self, stream: u32, code: u32) -> bool {
        let client_stream = stream % 2 == 1;
        if !client_stream || matches!(code, NO_ERROR | INTERNAL_ERROR | CANCEL) {
            return false;
        }
        // An old stream counts: the server's resets count whatever the age.
        self.reset_young(stream) != Some(true) && self.count()
    }

    /// A reset of young `stream`: whether the server had answered it whole
    /// (kept then, so that none of its resets counts; else forgotten, so
    /// that it counts once), `None` when it is not young (or counted already).
    fn reset_young(&mut self, stream: u32) -> Option<bool> {
        let at = self.young.binary_search_by_key(&stream, |young| young.stream).ok()?;
        let answered = self.young[at].answered;
        if !answered {
            self.young.remove(at);
        }
        Some(answered)
    }

    fn count(&mut self) -> bool {
        self.counted += 1;
        self.counted >= MIN_RESETS && self.counted * 2 > self.opened
    }

    fn forget_older(&mut self, now: Instant) {
        while self.young.front().is_some_and(|young| now.duration_since(young.opened) >= PREMATURE) {
            self.young.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTOCOL_ERROR: u32 = 0x1;

    /// Opens streams from `next` on, resetting each `reset` says, with
    /// `age` between the opening and the reset; the first stream that was
    /// one too many.
    fn run(
        resets: &mut Resets,
        next: &mut u32,
        count: usize,
        mut reset: impl FnMut(usize) -> bool,
        age: Duration,
    ) -> Option<u32> {
        let start = Instant::now();
        (0..count).find_map(|i| {
            let stream = *next;
            *next += 2;
            let at = start + age * u32::try_from(i).expect("small");
            resets.opened(stream, at);
            (reset(i) && resets.client_reset(stream, at + age)).then_some(stream)
        })
    }

    #[test]
    fn most_streams_reset_prematurely_is_one_too_many() {
        let (mut resets, mut next) = (Resets::default(), 1);
        // Half the streams cancelled at once, 1,000 times over: allowed.
        let quick = Duration::from_millis(1);
        assert_eq!(run(&mut resets, &mut next, 2000, |i| i % 2 == 1, quick), None);
        // Every stream reset: past half once the resets outnumber the rest.
        let too_many = run(&mut resets, &mut next, 10_000, |_| true, quick).expect("closed");
        assert_eq!(resets.counted * 2, resets.opened + 1, "closed at stream {too_many}");
    }

    #[test]
    fn streams_that_lived_past_the_line_are_reset_freely() {
        let (mut resets, mut next) = (Resets::default(), 1);
        // A client cancelling every call at a deadline of the line itself.
        assert_eq!(run(&mut resets, &mut next, 10_000, |_| true, PREMATURE), None);
        assert_eq!(resets.counted, 0);
        assert!(resets.young.len() <= 1, "the old streams are forgotten");
    }

    #[test]
    fn resets_the_client_made_the_server_send_count_with_its_own() {
        let (mut resets, now) = (Resets::default(), Instant::now());
        for stream in (1..2000).step_by(2) {
            resets.opened(stream, now);
            // A complete answer's NO_ERROR, a CANCEL: the server's doing.
            assert!(!resets.server_reset(stream, NO_ERROR) && !resets.server_reset(stream, CANCEL));
        }
        assert_eq!(resets.counted, 0);
        // The next thousand streams reset, half by the client, half by the
        // server because the client made it: all count.
        let verdict = (2001..4000).step_by(2).enumerate().find_map(|(i, stream)| {
            resets.opened(stream, now);
            let too_many =
                if i % 2 == 0 { resets.client_reset(stream, now) } else { resets.server_reset(stream, PROTOCOL_ERROR) };
            // Each stream once: a reset both ways counts one.
            assert!(!resets.client_reset(stream, now) || too_many);
            too_many.then_some(stream)
        });
        assert_eq!(resets.counted, 1000);
        assert_eq!(verdict, None, "1,000 of 2,000 streams is not more than half");
        let flood = (4001..10_000).step_by(2).find(|&stream| {
            resets.opened(stream, now);
            resets.server_reset(stream, PROTOCOL_ERROR)
        });
        assert!(flood.is_some(), "a flood of forced resets is closed");
    }

    #[test]
    fn resets_either_way_of_a_stream_answered_whole_do_not_count() {
        let (mut resets, now) = (Resets::default(), Instant::now());
        const STREAM_CLOSED: u32 = 0x5;
        for stream in (1..4000).step_by(2) {
            resets.opened(stream, now);
            resets.answered(stream);
            // The client's cancel, and h2's answer to a message that came
            // after the stream was gone, in either order, any number.
            assert!(!resets.client_reset(stream, now) && !resets.server_reset(stream, STREAM_CLOSED));
            assert!(!resets.server_reset(stream, STREAM_CLOSED) && !resets.client_reset(stream, now));
        }
        assert_eq!(resets.counted, 0);
        // Reset while the server still serves it: counted, once.
        resets.opened(4001, now);
        assert!(!resets.server_reset(4001, STREAM_CLOSED) && !resets.client_reset(4001, now));
        assert_eq!(resets.counted, 1);
    }

    #[test]
    fn a_stream_pushed_out_of_memory_is_forgotten_not_counted() {
        let (mut resets, now) = (Resets::default(), Instant::now());
        for stream in (1..).step_by(2).take(YOUNG_MAX + 1) {
            resets.opened(stream, now);
        }
        assert_eq!(resets.young.len(), YOUNG_MAX);
        assert!(!resets.client_reset(1, now));
        assert_eq!(resets.counted, 0);
    }
}
