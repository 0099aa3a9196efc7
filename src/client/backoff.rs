//! Exponential backoff with full jitter, a validated value: the wait
//! between a call's attempts, between a subchannel's dials, and between
//! health watches. As linkerd's `exp-backoff` and grpc's connection backoff
//! (initial, multiplier, cap), with grpc's retry defaults.

use std::time::Duration;

/// Exponential backoff: attempt `n` (from 1) waits a random time between 0
/// and `min(max, initial * multiplier^(n-1))` (full jitter), so that clients
/// failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
}

/// Why a backoff cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackoffError {
    /// The first backoff is zero.
    #[error("the initial backoff must be more than 0")]
    ZeroInitial,
    /// The cap is below the first backoff.
    #[error("the maximum backoff ({max:?}) is below the initial backoff ({initial:?})")]
    MaxBelowInitial {
        /// The initial backoff.
        initial: Duration,
        /// The maximum.
        max: Duration,
    },
    /// The multiplier would shrink the backoff, or is not a number.
    #[error("the backoff multiplier must be at least 1")]
    Multiplier,
}

impl Backoff {
    /// grpc's defaults: 0.1 s, doubling, at most 5 s.
    pub const DEFAULT: Self =
        Self { initial: Duration::from_millis(100), max: Duration::from_secs(5), multiplier: 2.0 };

    /// The longest wait before the first retry.
    #[must_use]
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap on the wait.
    #[must_use]
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The growth of the wait per retry.
    #[must_use]
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// A checked backoff.
    ///
    /// # Errors
    /// A zero initial backoff, a maximum below it, or a multiplier under 1.
    pub fn new(initial: Duration, max: Duration, multiplier: f64) -> Result<Self, BackoffError> {
        if initial.is_zero() {
            return Err(BackoffError::ZeroInitial);
        }
        if max < initial {
            return Err(BackoffError::MaxBelowInitial { initial, max });
        }
        if !(multiplier >= 1.0 && multiplier.is_finite()) {
            return Err(BackoffError::Multiplier);
        }
        Ok(Self { initial, max, multiplier })
    }

    /// The longest wait after failed attempt `attempt` (1 for the first).
    #[must_use]
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let scaled = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        // min() in f64 first: a huge exponent is infinity, which Duration refuses.
        Duration::from_secs_f64(scaled.min(self.max.as_secs_f64()))
    }

    /// The wait after failed attempt `attempt`: uniform in `[0, ceiling]`.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_full_jitter() {
        let backoff = Backoff::DEFAULT;
        let ceilings: Vec<u128> = (1..=8).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(5));
        let delays: Vec<Duration> = (0..1000).map(|_| backoff.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter spreads over the whole range, not around the ceiling.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(300)));
    }

    #[test]
    fn backoff_is_checked() {
        assert_eq!(Backoff::new(Duration::ZERO, Duration::from_secs(1), 2.0), Err(BackoffError::ZeroInitial));
        assert!(matches!(
            Backoff::new(Duration::from_secs(2), Duration::from_secs(1), 2.0),
            Err(BackoffError::MaxBelowInitial { .. })
        ));
        assert_eq!(Backoff::new(Duration::from_secs(1), Duration::from_secs(1), 0.5), Err(BackoffError::Multiplier));
        assert_eq!(
            Backoff::new(Duration::from_secs(1), Duration::from_secs(1), f64::NAN),
            Err(BackoffError::Multiplier)
        );
    }
}
