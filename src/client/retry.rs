//! When and how the client retries: which methods the contract marks safe
//! (read from the descriptor set, not listed in Rust), exponential backoff
//! with full jitter, and a retry budget that keeps a dead server from
//! drawing a retry storm (grpc's `retryThrottling`, which throttles hedges
//! too). tower's `retry` has a budget of its own (`TpsBudget`: retries as a
//! share of recent requests over a time window), but not grpc's token
//! bucket, whose figures grpc users set in their service configs; and its
//! policy retries one service, not the picks of this channel.

use std::sync::Mutex;
use std::time::Duration;

use crate::rpc::{self, Idempotency};

/// Whether the contract marks the method at `path` free of side effects
/// (`idempotency_level = NO_SIDE_EFFECTS`): such a call may be hedged, run
/// twice at once.
#[must_use]
pub fn is_side_effect_free(path: &str) -> bool {
    rpc::method(path).is_some_and(|m| m.idempotency == Idempotency::NoSideEffects)
}

/// Whether the contract marks the method at `path` safe to retry: its
/// `idempotency_level` is `NO_SIDE_EFFECTS` or `IDEMPOTENT`.
#[must_use]
pub fn is_safe(path: &str) -> bool {
    rpc::method(path).is_some_and(|m| matches!(m.idempotency, Idempotency::NoSideEffects | Idempotency::Idempotent))
}

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

/// The size of the retry budget, as grpc's `retryThrottling` service config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryThrottle {
    /// Tokens in a full bucket; retries stop at half of it.
    pub max_tokens: f64,
    /// Tokens a success gives back.
    pub token_ratio: f64,
}

impl Default for RetryThrottle {
    /// grpc's example policy: 10 tokens, 0.1 back per success.
    fn default() -> Self {
        Self { max_tokens: 10.0, token_ratio: 0.1 }
    }
}

/// A token bucket shared by the calls of one client: each failure that
/// could be retried takes a token, each success gives back a fraction, and
/// retries stop while the bucket is at most half full. Against a dead
/// server a client thus falls back to one attempt per call.
#[derive(Debug)]
pub struct RetryBudget {
    max_tokens: f64,
    token_ratio: f64,
    tokens: Mutex<f64>,
}

impl RetryBudget {
    /// A full bucket of the given size.
    #[must_use]
    pub fn new(throttle: RetryThrottle) -> Self {
        Self {
            max_tokens: throttle.max_tokens,
            token_ratio: throttle.token_ratio,
            tokens: Mutex::new(throttle.max_tokens),
        }
    }

    /// Records a success.
    pub fn succeeded(&self) {
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *tokens = (*tokens + self.token_ratio).min(self.max_tokens);
    }

    /// Whether a hedge may go out now: the bucket is more than half full
    /// (gRFC A6 throttles hedges with the same tokens as retries).
    pub fn allows(&self) -> bool {
        *self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner) > self.max_tokens / 2.0
    }

    /// Records a retryable failure; returns whether a retry may follow.
    pub fn failed(&self) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *tokens = (*tokens - 1.0).max(0.0);
        *tokens > self.max_tokens / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_methods_marked_in_the_contract_are_safe() {
        assert!(is_safe("/search.v1.SearchService/Search"));
        for path in
            ["/search.v1.SearchService/Classify", "/search.v1.SearchService/Count", "/search.v1.SearchService/Scan"]
        {
            assert!(!is_safe(path), "{path}");
        }
        assert!(!is_safe("/Search/search"), "the legacy path is not in the contract");
        assert!(is_side_effect_free("/search.v1.SearchService/Search"));
        assert!(!is_side_effect_free("/search.v1.SearchService/Classify"));
        assert!(!is_side_effect_free("/Search/search"));
    }

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

    #[test]
    fn the_budget_stops_retries_against_a_dead_server_and_recovers() {
        let budget = RetryBudget::new(RetryThrottle::default());
        let allowed: Vec<bool> = (0..7).map(|_| budget.failed()).collect();
        assert_eq!(allowed, [true, true, true, true, false, false, false], "10 tokens, retries while more than 5");
        assert!(!budget.allows(), "no hedge either while the bucket is at most half full");
        // Successes give back 0.1 each: 20 of them lift it from 3 to 5, still not above half.
        for _ in 0..20 {
            budget.succeeded();
        }
        assert!(!budget.failed());
        for _ in 0..40 {
            budget.succeeded();
        }
        assert!(budget.failed(), "recovered after enough successes");
    }
}
