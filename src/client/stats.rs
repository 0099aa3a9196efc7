//! The client's own counts, the counterparts of the server's metrics
//! (OpenTelemetry's `grpc.client.attempt.duration` and attempts per call):
//! calls, attempts, and how long each unary attempt took, in the gRPC
//! metrics' latency buckets; and what the channel did about gray failures:
//! hedges sent and won, ejections, subchannel state changes. Atomics only:
//! a call never waits on a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Upper bounds of the attempt-duration buckets, in seconds (the gRPC
/// OpenTelemetry metrics' recommended latency buckets, a subset).
pub const BUCKETS: [f64; 16] =
    [0.0001, 0.0003, 0.0006, 0.001, 0.002, 0.004, 0.008, 0.016, 0.03, 0.065, 0.13, 0.25, 0.5, 1.0, 5.0, 20.0];

/// The counts, shared by a client's clones.
#[derive(Debug, Default)]
pub struct Stats {
    calls: AtomicU64,
    attempts: AtomicU64,
    hedges: AtomicU64,
    hedges_won: AtomicU64,
    ejections: AtomicU64,
    state_changes: AtomicU64,
    resent: AtomicU64,
    /// Unary attempts per bucket; the last counts those over every bound.
    durations: [AtomicU64; BUCKETS.len() + 1],
}

impl Stats {
    /// A call starts.
    pub(in crate::client) fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt starts.
    pub(in crate::client) fn attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// A hedged attempt went out.
    pub(in crate::client) fn hedge(&self) {
        self.hedges.fetch_add(1, Ordering::Relaxed);
    }

    /// A hedged attempt gave the call its answer.
    pub(in crate::client) fn hedge_won(&self) {
        self.hedges_won.fetch_add(1, Ordering::Relaxed);
    }

    /// Outlier detection ejected a subchannel.
    pub(in crate::client) fn ejected(&self) {
        self.ejections.fetch_add(1, Ordering::Relaxed);
    }

    /// A call the server never took was sent again (transparently).
    pub(in crate::client) fn resent(&self) {
        self.resent.fetch_add(1, Ordering::Relaxed);
    }

    /// A subchannel changed state.
    pub(in crate::client) fn state_changed(&self) {
        self.state_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// A unary attempt ended after `duration`.
    pub(in crate::client) fn attempt_took(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = BUCKETS.iter().position(|&bound| seconds <= bound).unwrap_or(BUCKETS.len());
        self.durations[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub(in crate::client) fn snapshot(&self) -> CallStats {
        CallStats {
            calls: self.calls.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            hedges: self.hedges.load(Ordering::Relaxed),
            hedges_won: self.hedges_won.load(Ordering::Relaxed),
            ejections: self.ejections.load(Ordering::Relaxed),
            state_changes: self.state_changes.load(Ordering::Relaxed),
            resent: self.resent.load(Ordering::Relaxed),
            attempt_duration_buckets: self.durations.iter().map(|n| n.load(Ordering::Relaxed)).collect(),
        }
    }
}

/// A client's counts at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStats {
    /// Calls made.
    pub calls: u64,
    /// Attempts made (retries and hedges included).
    pub attempts: u64,
    /// Hedged attempts sent (gRFC A6).
    #[serde(default)]
    pub hedges: u64,
    /// Calls whose answer came from a hedged attempt.
    #[serde(default)]
    pub hedges_won: u64,
    /// Subchannels ejected by outlier detection (gRFC A50).
    #[serde(default)]
    pub ejections: u64,
    /// Subchannel state changes (connection, health, ejection).
    #[serde(default)]
    pub state_changes: u64,
    /// Calls sent again because the server never took them (refused, past a
    /// GOAWAY's last stream, or never sent): grpc's transparent retries.
    #[serde(default)]
    pub resent: u64,
    /// Unary attempts per duration bucket (the bounds of `BUCKETS`, then one for longer).
    pub attempt_duration_buckets: Vec<u64>,
}

impl CallStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.calls += other.calls;
        self.attempts += other.attempts;
        self.hedges += other.hedges;
        self.hedges_won += other.hedges_won;
        self.ejections += other.ejections;
        self.state_changes += other.state_changes;
        self.resent += other.resent;
        self.attempt_duration_buckets
            .resize(other.attempt_duration_buckets.len().max(self.attempt_duration_buckets.len()), 0);
        for (total, n) in self.attempt_duration_buckets.iter_mut().zip(&other.attempt_duration_buckets) {
            *total += n;
        }
    }

    /// The counts made since `earlier`, a snapshot of the same client.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        let buckets = self.attempt_duration_buckets.iter().enumerate();
        Self {
            calls: self.calls.saturating_sub(earlier.calls),
            attempts: self.attempts.saturating_sub(earlier.attempts),
            hedges: self.hedges.saturating_sub(earlier.hedges),
            hedges_won: self.hedges_won.saturating_sub(earlier.hedges_won),
            ejections: self.ejections.saturating_sub(earlier.ejections),
            state_changes: self.state_changes.saturating_sub(earlier.state_changes),
            resent: self.resent.saturating_sub(earlier.resent),
            attempt_duration_buckets: buckets
                .map(|(i, n)| n.saturating_sub(earlier.attempt_duration_buckets.get(i).copied().unwrap_or(0)))
                .collect(),
        }
    }

    /// Attempts per call (1 when nothing was retried).
    #[must_use]
    pub fn attempts_per_call(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        if self.calls == 0 { 0.0 } else { self.attempts as f64 / self.calls as f64 }
    }
}

impl std::fmt::Display for CallStats {
    /// One line for people: `1.02 attempts per call; hedges: 12 sent, 9 won;
    /// ejections: 1; subchannel state changes: 5`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} attempts per call; hedges: {} sent, {} won; sent again unprocessed: {}; ejections: {}; \
             subchannel state changes: {}",
            self.attempts_per_call(),
            self.hedges,
            self.hedges_won,
            self.resent,
            self.ejections,
            self.state_changes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_land_in_their_buckets_and_add_up() {
        let stats = Stats::default();
        stats.call();
        stats.attempt();
        stats.attempt();
        stats.attempt_took(Duration::from_micros(50));
        stats.attempt_took(Duration::from_millis(3));
        stats.attempt_took(Duration::from_secs(60));
        stats.hedge();
        stats.hedge_won();
        stats.ejected();
        stats.state_changed();
        stats.state_changed();
        stats.resent();
        let snapshot = stats.snapshot();
        assert_eq!((snapshot.hedges, snapshot.hedges_won, snapshot.ejections, snapshot.state_changes), (1, 1, 1, 2));
        assert_eq!((snapshot.calls, snapshot.attempts), (1, 2));
        assert_eq!(snapshot.attempt_duration_buckets[0], 1);
        assert_eq!(snapshot.attempt_duration_buckets[5], 1, "3 ms is under 4 ms");
        assert_eq!(snapshot.attempt_duration_buckets[BUCKETS.len()], 1);
        let mut total = CallStats::default();
        total.add(&snapshot);
        total.add(&snapshot);
        assert_eq!((total.calls, total.attempts, total.attempt_duration_buckets[0]), (2, 4, 2));
        assert!((total.attempts_per_call() - 2.0).abs() < 1e-9);
        let later = total.since(&snapshot);
        assert_eq!((later.calls, later.attempts, later.attempt_duration_buckets[0]), (1, 2, 1));
        assert_eq!((later.hedges, later.ejections, later.state_changes), (1, 1, 2));
        assert_eq!(
            later.to_string(),
            "2.00 attempts per call; hedges: 1 sent, 1 won; sent again unprocessed: 1; ejections: 1; \
             subchannel state changes: 2"
        );
    }
}
