//! Hedging (gRFC A6's hedging policy) for the methods the contract marks
//! side-effect free: when an attempt has not answered within the hedging
//! delay, another is sent to a different subchannel, the first answer wins
//! and the others are cancelled. This file holds the policy and the delay;
//! the attempts themselves run in `attempts.rs`, by `rules.rs`.
//!
//! The delay is fixed, or (the default) follows recent latency: the 99th
//! percentile of the attempts answered in the last window (at least a
//! second and 100 answers), so that about one call in a hundred is hedged
//! when all is well, whatever the network, as "The Tail at Scale" (Dean
//! and Barroso, 2013) proposes. A lost attempt is not an answer: a replica
//! that always loses to its hedges cannot drag the delay up to its own
//! latency. tower's `hedge` middleware does the same from a histogram but
//! retries on one service, not across this channel's subchannels, and
//! knows nothing of outlier detection or the retry budget.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How hedged calls are made (gRFC A6 `hedgingPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hedging {
    /// Attempts of a call at most, the first included (A6 `maxAttempts`).
    pub max_attempts: u32,
    /// When the next attempt goes out (A6 `hedgingDelay`).
    pub delay: HedgingDelay,
}

/// The hedging delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgingDelay {
    /// Always this long.
    Fixed(Duration),
    /// The 99th percentile of recent answers, at least [`MIN_DELAY`];
    /// [`COLD_DELAY`] until the first window is full.
    Auto,
}

impl Default for Hedging {
    /// Three attempts (one per replica of a three-replica fleet), the delay
    /// from recent latency.
    fn default() -> Self {
        Self { max_attempts: 3, delay: HedgingDelay::Auto }
    }
}

/// The shortest automatic delay: tokio's timer resolution.
pub const MIN_DELAY: Duration = Duration::from_millis(1);
/// The automatic delay before any window has closed.
pub const COLD_DELAY: Duration = Duration::from_millis(50);
/// The percentile of recent answers the automatic delay follows.
const PERCENTILE: f64 = 0.99;
/// A window closes after this long and at least `MIN_ANSWERS` answers...
const WINDOW: Duration = Duration::from_secs(1);
const MIN_ANSWERS: u32 = 100;
/// ...or after this many answers, however soon.
const MAX_ANSWERS: u32 = 20_000;

/// Latency buckets: 1 µs steps below 16 µs, then 8 per power of two (at
/// most 12.5% wide), up to 2^36 µs.
const LINEAR: usize = 16;
const PER_OCTAVE: usize = 8;
const OCTAVES: usize = 32;
const BUCKETS: usize = LINEAR + PER_OCTAVE * OCTAVES;

/// The hedging delay of one client, learned from its answers.
#[derive(Debug)]
pub(super) struct Delay {
    policy: HedgingDelay,
    /// Answers in the open window, per bucket.
    buckets: Box<[AtomicU32]>,
    answers: AtomicU32,
    /// When the open window opened, µs after `base`.
    opened: AtomicU64,
    base: Instant,
    /// The delay now, µs.
    current: AtomicU64,
}

impl Delay {
    pub(super) fn new(policy: HedgingDelay) -> Self {
        Self {
            policy,
            buckets: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            answers: AtomicU32::new(0),
            opened: AtomicU64::new(0),
            base: Instant::now(),
            current: AtomicU64::new(micros(COLD_DELAY)),
        }
    }

    /// How long to wait before the next hedge.
    pub(super) fn get(&self) -> Duration {
        match self.policy {
            HedgingDelay::Fixed(delay) => delay,
            HedgingDelay::Auto => Duration::from_micros(self.current.load(Ordering::Relaxed)).max(MIN_DELAY),
        }
    }

    /// An attempt answered after `took`.
    pub(super) fn answered(&self, took: Duration) {
        if self.policy != HedgingDelay::Auto {
            return;
        }
        self.buckets[bucket(micros(took))].fetch_add(1, Ordering::Relaxed);
        let answers = self.answers.fetch_add(1, Ordering::Relaxed) + 1;
        if answers < MIN_ANSWERS {
            return;
        }
        let now = micros(self.base.elapsed());
        let opened = self.opened.load(Ordering::Relaxed);
        let due = now.saturating_sub(opened) >= micros(WINDOW) || answers >= MAX_ANSWERS;
        // One caller closes the window; the others go on counting.
        if due && self.opened.compare_exchange(opened, now, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            let counts: Vec<u32> = self.buckets.iter().map(|b| b.swap(0, Ordering::Relaxed)).collect();
            self.answers.store(0, Ordering::Relaxed);
            if let Some(delay) = percentile(&counts, PERCENTILE) {
                self.current.store(delay, Ordering::Relaxed);
            }
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The bucket of `micros`.
fn bucket(micros: u64) -> usize {
    if micros < LINEAR as u64 {
        return usize::try_from(micros).unwrap_or(0);
    }
    let octave = 63 - micros.leading_zeros() as usize; // at least 4
    let step = usize::try_from((micros >> (octave - 3)) & 7).unwrap_or(0);
    (LINEAR + (octave - 4) * PER_OCTAVE + step).min(BUCKETS - 1)
}

/// The upper bound of bucket `index`, µs.
fn upper(index: usize) -> u64 {
    if index < LINEAR {
        return index as u64;
    }
    let octave = (index - LINEAR) / PER_OCTAVE + 4;
    let step = ((index - LINEAR) % PER_OCTAVE) as u64;
    (9 + step) << (octave - 3)
}

/// The `p` quantile of the counts per bucket, as the bucket's upper bound.
fn percentile(counts: &[u32], p: f64) -> Option<u64> {
    let total: u64 = counts.iter().map(|&n| u64::from(n)).sum();
    if total == 0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((total as f64 * p).ceil() as u64).max(1);
    let mut seen = 0;
    counts.iter().enumerate().find_map(|(index, &n)| {
        seen += u64::from(n);
        (seen >= rank).then(|| upper(index))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for micros in [0, 1, 15, 16, 17, 18, 31, 32, 100, 1_000, 1_234_567, u64::MAX] {
            let index = bucket(micros);
            assert!(index >= last, "{micros}");
            last = index;
            if micros < (1 << 36) {
                assert!(upper(index) >= micros, "{micros} fits under its bucket's bound {}", upper(index));
                assert!(upper(index) as f64 <= (micros.max(1) as f64) * 1.125 + 1.0, "{micros}: {}", upper(index));
            }
        }
    }

    #[test]
    fn the_percentile_is_the_bound_of_the_bucket_it_falls_in() {
        let mut counts = vec![0u32; BUCKETS];
        counts[bucket(500)] = 990;
        counts[bucket(20_000)] = 10;
        assert_eq!(percentile(&counts, 0.99), Some(upper(bucket(500))));
        counts[bucket(20_000)] = 11;
        assert_eq!(percentile(&counts, 0.99), Some(upper(bucket(20_000))));
        assert_eq!(percentile(&[0; BUCKETS], 0.99), None);
    }

    #[test]
    fn the_automatic_delay_follows_the_99th_percentile_of_a_full_window() {
        let delay = Delay::new(HedgingDelay::Auto);
        assert_eq!(delay.get(), COLD_DELAY, "cold: no window has closed");
        // A full window of answers at 2 ms, one in a hundred at 40 ms; the
        // window is old enough once a second has passed since it opened.
        let delay = Delay { base: Instant::now() - WINDOW, ..delay };
        for i in 0..1_000 {
            delay.answered(Duration::from_micros(if i % 100 == 99 { 40_000 } else { 2_000 }));
        }
        let got = delay.get();
        assert!(got >= Duration::from_millis(2) && got <= Duration::from_micros(2_250), "{got:?}");
        // Answers faster than the timer still hedge no sooner than 1 ms.
        let fast = Delay { base: Instant::now() - WINDOW, ..Delay::new(HedgingDelay::Auto) };
        for _ in 0..200 {
            fast.answered(Duration::from_micros(100));
        }
        assert_eq!(fast.get(), MIN_DELAY);
    }

    #[test]
    fn a_fixed_delay_is_fixed() {
        let delay = Delay::new(HedgingDelay::Fixed(Duration::from_millis(7)));
        for _ in 0..1_000 {
            delay.answered(Duration::from_secs(1));
        }
        assert_eq!(delay.get(), Duration::from_millis(7));
    }
}
