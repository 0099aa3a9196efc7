//! Client-side adaptive throttling: when the servers refuse or leave
//! unanswered more and more of a client's calls, the client stops sending
//! a share of them, so that an overloaded server spends its time on calls
//! it can finish rather than on refusing the rest. The rule is the one of
//! Google's SRE book ("Handling Overload"), also the one grpc's RLS client
//! throttles by: over a sliding window, with `requests` the attempts the
//! client wanted to send and `accepts` those a server took, a new attempt
//! is refused locally with probability
//! `max(0, (requests - ratio * accepts) / (requests + 1))`.
//!
//! An attempt counts when its end is known, as grpc's throttler counts
//! them: one still running counts for nothing (else a burst of new calls
//! would look refused). A server took an attempt when it answered with
//! anything but UNAVAILABLE or RESOURCE_EXHAUSTED (its refusals: an
//! adaptive limit's shedding, a fixed limit); an attempt still unanswered
//! at its call's deadline was not taken either. Attempts never sent (no
//! connection) count for nothing: connecting has its own backoff. A
//! throttled attempt counts as a request not taken, so that the share
//! refused stays steady while the overload lasts and falls off as the
//! window slides past it. tower has no such layer
//! (its `load_shed` refuses only when the inner service is not ready), and
//! tonic none at all.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttling {
    /// How many attempts per attempt a server took the client may send
    /// (the SRE book's K): 2 lets half the attempts be refused before any
    /// is throttled; closer to 1 throttles sooner and wastes less of an
    /// overloaded server.
    pub ratio: f64,
    /// How far back the counts reach.
    pub window: Duration,
}

impl Default for Throttling {
    /// The SRE book's K of 2 over grpc's RLS window of 30 s.
    fn default() -> Self {
        Self { ratio: 2.0, window: Duration::from_secs(30) }
    }
}

/// The window is kept in this many slices, each dropped whole as it ages out.
const SLICES: usize = 16;

/// One slice of the window: its index (time since the throttle began,
/// in slices) and its counts.
#[derive(Debug, Clone, Copy, Default)]
struct Slice {
    index: u64,
    requests: u64,
    accepts: u64,
}

/// The counts of one client's attempts over the window, and the throttle
/// they make.
#[derive(Debug)]
pub(super) struct Throttle {
    settings: Throttling,
    began: Instant,
    slices: Mutex<[Slice; SLICES]>,
}

impl Throttle {
    pub(super) fn new(settings: Throttling) -> Self {
        Self { settings, began: Instant::now(), slices: Mutex::new([Slice::default(); SLICES]) }
    }

    fn width(&self) -> Duration {
        self.settings.window / SLICES as u32
    }

    /// The slice `now` falls in, cleared when it last held an older one.
    fn with_slice<R>(&self, now: Instant, f: impl FnOnce(&mut [Slice; SLICES], usize) -> R) -> R {
        let width = self.width().as_nanos().max(1);
        let index = (now.saturating_duration_since(self.began).as_nanos() / width) as u64;
        let mut slices = self.slices.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = (index % SLICES as u64) as usize;
        if slices[at].index != index {
            slices[at] = Slice { index, ..Slice::default() };
        }
        f(&mut slices, at)
    }

    /// The share of attempts to refuse now: 0 to 1.
    fn refusing(slices: &[Slice; SLICES], current: u64, ratio: f64) -> f64 {
        let live = slices.iter().filter(|s| s.index + SLICES as u64 > current && s.index <= current);
        let (requests, accepts) = live.fold((0u64, 0u64), |(r, a), s| (r + s.requests, a + s.accepts));
        let (requests, accepts) = (requests as f64, accepts as f64);
        ((requests - ratio * accepts) / (requests + 1.0)).max(0.0)
    }

    /// Whether an attempt may go out now, drawing against the share to
    /// refuse with `draw` (uniform in 0..1); `Err` holds that share when it
    /// may not, and the attempt then counts as a request not taken.
    pub(super) fn admit(&self, now: Instant, draw: f64) -> Result<(), f64> {
        let ratio = self.settings.ratio;
        self.with_slice(now, |slices, at| {
            let refusing = Self::refusing(slices, slices[at].index, ratio);
            if draw < refusing {
                slices[at].requests += 1;
                return Err(refusing);
            }
            Ok(())
        })
    }

    /// Records how an attempt admitted earlier ended: `taken` by a server
    /// or not.
    pub(super) fn ended(&self, now: Instant, taken: bool) {
        self.with_slice(now, |slices, at| {
            slices[at].requests += 1;
            slices[at].accepts += u64::from(taken);
        });
    }

    /// The settings it throttles by.
    pub(super) fn settings(&self) -> Throttling {
        self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(Throttling { ratio: 2.0, window: Duration::from_secs(16) })
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_refused_while_the_servers_take_the_calls() {
        let throttle = throttle();
        for _ in 0..1000 {
            assert_eq!(throttle.admit(Instant::now(), 0.0), Ok(()));
            throttle.ended(Instant::now(), true);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_share_refused_follows_the_share_taken() {
        let throttle = throttle();
        // 1,000 attempts of which the servers take a quarter: with K = 2,
        // (1000 - 2 * 250) / 1001 of the next ones are refused.
        for n in 0..1000 {
            throttle.admit(Instant::now(), 1.0).expect("a draw of 1 always passes");
            throttle.ended(Instant::now(), n % 4 == 0);
        }
        let refusing = throttle.admit(Instant::now(), 0.0).expect_err("refused");
        assert!((refusing - 500.0 / 1001.0).abs() < 1e-9, "{refusing}");
        assert_eq!(throttle.admit(Instant::now(), 0.6), Ok(()), "a draw above the share passes");
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_still_running_count_for_nothing() {
        let throttle = throttle();
        for _ in 0..1000 {
            assert_eq!(throttle.admit(Instant::now(), 0.0), Ok(()), "a burst of calls not yet answered");
        }
        throttle.ended(Instant::now(), false);
        assert_eq!(throttle.admit(Instant::now(), 0.4), Err(0.5), "1 ended, not taken: (1 - 0) / 2 refused");
        // The refused one counts too: (2 - 0) / 3.
        assert_eq!(throttle.admit(Instant::now(), 0.9), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_refusals_age_out_of_the_window() {
        let throttle = throttle();
        for _ in 0..100 {
            throttle.ended(Instant::now(), false);
        }
        assert!(throttle.admit(Instant::now(), 0.0).is_err(), "nothing taken: nearly all refused");
        tokio::time::advance(Duration::from_secs(17)).await;
        assert_eq!(throttle.admit(Instant::now(), 0.0), Ok(()), "a window later the counts are gone");
    }
}
