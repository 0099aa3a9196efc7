//! Which calls may be retried and how many retries a client may make:
//! the methods the contract marks safe (read from the descriptor set, not
//! listed in Rust), and a retry budget that keeps a dead server from
//! drawing a retry storm (grpc's `retryThrottling`, which throttles hedges
//! too). tower's `retry` has a budget of its own (`TpsBudget`: retries as a
//! share of recent requests over a time window), but not grpc's token
//! bucket, whose figures grpc users set in their service configs; and its
//! policy retries one service, not the picks of this channel.

use std::sync::Mutex;

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
