//! The rules of a call's attempts, gRFC A6's, in one place and without
//! I/O: which methods are hedged and retried, when a hedge goes out, which
//! failures are retried, when a call that never reached a server is sent
//! again, and when the retry budget says no. `attempts.rs` runs a call by
//! asking these rules at every turn.

use std::time::Duration;

use tonic::Code;

use super::hedging::Hedging;
use super::retry;
use crate::client::backoff::Backoff;
use crate::client::xds::RetryPolicy;

/// Which kind of call: a unary attempt's end is the call's answer; a
/// streaming attempt is answered when the server accepts the call, and the
/// answers follow (`Responses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::client) enum Kind {
    /// One request, one answer.
    Unary,
    /// A stream of requests or of answers, or both.
    Streaming,
}

/// The rules of one call, fixed when it starts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    /// Hedging, for a unary method the contract marks side-effect free
    /// (`NO_SIDE_EFFECTS`) while hedging is on; `None`: never hedged.
    hedging: Option<Hedging>,
    /// Attempts in all after failures, the first included: the retry
    /// policy's `max_attempts` for a unary method the contract marks safe
    /// (`NO_SIDE_EFFECTS` or `IDEMPOTENT`), else 1. A streaming call is
    /// never retried once the server had it: its messages are gone.
    retry_limit: u32,
    /// With wait-for-ready, a call that could not be sent waits (retries
    /// after a backoff) for the server, whatever the method, until its
    /// deadline.
    wait_for_ready: bool,
    /// Whether the method may be retried at all (unary, and safe).
    retriable: bool,
    /// The codes retried, from an xDS route's retry policy (gRFC A44), a
    /// bit per code; `None`: UNAVAILABLE, grpc's default.
    retry_on: Option<u32>,
    /// The route's backoff; `None`: the client's.
    backoff: Option<Backoff>,
}

/// What a call did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Attempts sent, hedges and retries included, sending again aside.
    pub(super) sent: u32,
    /// Attempts made after a failure.
    pub(super) retried: u32,
    /// Attempts sent again because the server never had the call.
    pub(super) sent_again: usize,
}

/// A failed attempt, as the rules read it (`failure.rs` tells which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Failed {
    /// The server surely never had the call: it was not sent (the dial or
    /// TLS failed), or refused unprocessed (REFUSED_STREAM, past a GOAWAY).
    pub(super) not_sent: bool,
    /// The call's deadline ended it.
    pub(super) deadline: bool,
    /// Its status code.
    pub(super) code: Code,
}

/// What a call does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    /// The deadline passed: the call fails with DEADLINE_EXCEEDED.
    Deadline,
    /// The server never had the call: it goes out again at once, on another
    /// subchannel, and is not an attempt of the call's (grpc's transparent
    /// retry): once per subchannel, before the deadline.
    SendAgain,
    /// Another attempt, after a backoff.
    Retry,
    /// No retry, but attempts still running (hedges) may yet answer.
    Wait,
    /// The call fails with this attempt's error.
    Fail,
}

impl Rules {
    /// The rules of a call of `kind` to the method at `path`.
    pub(super) fn new(
        path: &str,
        kind: Kind,
        hedging: Option<Hedging>,
        max_attempts: u32,
        wait_for_ready: bool,
    ) -> Self {
        let unary = kind == Kind::Unary;
        let hedging = hedging.filter(|_| unary && retry::is_side_effect_free(path));
        let retriable = unary && retry::is_safe(path);
        let retry_limit = if retriable { max_attempts } else { 1 };
        Self { hedging, retry_limit, wait_for_ready, retriable, retry_on: None, backoff: None }
    }

    /// Follows an xDS route's retry policy (gRFC A44) instead of the
    /// client's: its codes, its attempts (at most 5, as grpc caps them),
    /// its backoff. A method that is not retried stays so.
    pub(super) fn follow(&mut self, policy: Option<&RetryPolicy>) {
        let Some(policy) = policy else { return };
        if self.retriable {
            self.retry_limit = policy.max_attempts.clamp(1, 5);
        }
        self.retry_on = Some(policy.retry_on.iter().fold(0, |bits, code| bits | 1 << (*code as u32)));
        self.backoff = Backoff::new(policy.base_interval, policy.max_interval, 2.0).ok();
    }

    /// The backoff between retries: the route's, else `client`'s.
    pub(super) fn backoff(&self, client: Backoff) -> Backoff {
        self.backoff.unwrap_or(client)
    }

    /// Whether another attempt may succeed where this one failed: a call
    /// the server never had, or one that ended with a code retried (from
    /// the server, or a connection that broke under it): UNAVAILABLE, as
    /// grpc's default `retryableStatusCodes`, or the route's `retry_on`.
    fn transient(&self, failed: Failed) -> bool {
        let on = self.retry_on.unwrap_or(1 << (Code::Unavailable as u32));
        failed.not_sent || on & (1 << (failed.code as u32)) != 0
    }

    /// Whether the call is hedged.
    pub(super) fn hedged(&self) -> bool {
        self.hedging.is_some()
    }

    /// Whether, after sending an attempt, a hedge is to follow when no
    /// answer comes within the hedging delay: hedging's `max_attempts` is
    /// not reached.
    pub(super) fn hedge_follows(&self, counts: Counts) -> bool {
        self.hedging.is_some_and(|hedging| counts.sent < hedging.max_attempts.max(1))
    }

    /// Whether the hedge due now may go out: attempts are left, and the
    /// retry budget is more than half full (A6 throttles hedges too).
    pub(super) fn may_hedge(&self, counts: Counts, budget_allows: impl FnOnce() -> bool) -> bool {
        self.hedge_follows(counts) && budget_allows()
    }

    /// What follows a failed attempt. `subchannels` is how many the channel
    /// has (the bound on sending again), `in_time` whether the deadline is
    /// still ahead, `running` whether other attempts still run, and
    /// `budget_failed` takes a token from the retry budget and says whether
    /// a retry may follow (asked only of a failure that could be retried).
    pub(super) fn after(
        &self,
        counts: &mut Counts,
        failed: Failed,
        subchannels: usize,
        in_time: bool,
        running: bool,
        budget_failed: impl FnOnce() -> bool,
    ) -> After {
        if failed.deadline {
            return After::Deadline;
        }
        if failed.not_sent && counts.sent_again < subchannels && in_time {
            counts.sent_again += 1;
            counts.sent -= 1;
            return After::SendAgain;
        }
        // Attempts after a failure are retries, under hedging too: the retry
        // policy's `max_attempts` bounds them (1: none).
        let again = if failed.not_sent && self.wait_for_ready {
            true
        } else {
            self.transient(failed) && counts.retried + 1 < self.retry_limit && budget_failed()
        };
        if again {
            return After::Retry;
        }
        if self.transient(failed) && running { After::Wait } else { After::Fail }
    }

    /// The wait before retry number `counts.retried + 1`: none when the
    /// call is hedged and another READY subchannel can take it (A6 sends
    /// the next hedged attempt at once), else the backoff's.
    pub(super) fn retry_delay(
        &self,
        counts: Counts,
        elsewhere: impl FnOnce() -> bool,
        backoff: impl FnOnce(u32) -> Duration,
    ) -> Duration {
        if self.hedged() && elsewhere() { Duration::ZERO } else { backoff(counts.retried + 1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{CLASSIFY_PATH, LEGACY_SEARCH_PATH, SEARCH_PATH};

    const HEDGED: Option<Hedging> = Some(Hedging { max_attempts: 3, delay: super::super::HedgingDelay::Auto });

    fn failed(code: Code) -> Failed {
        Failed { not_sent: false, deadline: false, code }
    }

    fn not_sent() -> Failed {
        Failed { not_sent: true, code: Code::Unavailable, ..failed(Code::Unavailable) }
    }

    /// What follows a first failure `failed` of a call under `rules`, with
    /// three subchannels, in time, nothing else running, a budget that allows.
    fn after(rules: Rules, failed: Failed) -> After {
        rules.after(&mut Counts { sent: 1, ..Counts::default() }, failed, 3, true, false, || true)
    }

    #[test]
    fn search_is_hedged_and_retried_streaming_calls_and_unknown_paths_are_neither() {
        let search = Rules::new(SEARCH_PATH, Kind::Unary, HEDGED, 5, false);
        assert!(search.hedged());
        assert_eq!(search.retry_limit, 5);
        let off = Rules::new(SEARCH_PATH, Kind::Unary, None, 5, false);
        assert!(!off.hedged(), "hedging off: retried only");
        assert_eq!(off.retry_limit, 5);
        for rules in [
            Rules::new(CLASSIFY_PATH, Kind::Streaming, HEDGED, 5, false),
            Rules::new(LEGACY_SEARCH_PATH, Kind::Unary, HEDGED, 5, false),
        ] {
            assert!(!rules.hedged());
            assert_eq!(rules.retry_limit, 1);
        }
    }

    #[test]
    fn only_unavailable_is_retried() {
        let rules = Rules::new(SEARCH_PATH, Kind::Unary, None, 5, false);
        assert_eq!(after(rules, failed(Code::Unavailable)), After::Retry);
        for code in [Code::Internal, Code::InvalidArgument, Code::ResourceExhausted, Code::Unknown] {
            assert_eq!(after(rules, failed(code)), After::Fail, "{code:?}");
        }
        let deadline = Failed { deadline: true, ..failed(Code::Cancelled) };
        assert_eq!(after(rules, deadline), After::Deadline);
    }

    #[test]
    fn a_refused_caller_is_never_retried_nor_waited_on_and_takes_no_budget() {
        // UNAUTHENTICATED and PERMISSION_DENIED answer the caller, not the
        // server's state: another attempt, a hedge's included, would get
        // the same answer. The call ends at once, cancelling running hedges.
        for code in [Code::Unauthenticated, Code::PermissionDenied] {
            for hedging in [None, HEDGED] {
                let rules = Rules::new(SEARCH_PATH, Kind::Unary, hedging, 5, true);
                let mut counts = Counts { sent: 2, ..Counts::default() };
                let mut asked = false;
                let after = rules.after(&mut counts, failed(code), 3, true, true, || {
                    asked = true;
                    true
                });
                assert_eq!(after, After::Fail, "{code:?}, hedging {hedging:?}");
                assert!(!asked, "{code:?} takes no token of the retry budget");
                assert_eq!(counts, Counts { sent: 2, ..Counts::default() });
            }
        }
    }

    #[test]
    fn retries_stop_at_max_attempts_and_when_the_budget_says_no() {
        let rules = Rules::new(SEARCH_PATH, Kind::Unary, None, 3, false);
        let mut counts = Counts { sent: 3, retried: 2, sent_again: 0 };
        assert_eq!(rules.after(&mut counts, failed(Code::Unavailable), 3, true, false, || true), After::Fail);
        let mut counts = Counts { sent: 1, ..Counts::default() };
        let mut asked = false;
        let no_budget = rules.after(&mut counts, failed(Code::Unavailable), 3, true, false, || {
            asked = true;
            false
        });
        assert_eq!(no_budget, After::Fail);
        assert!(asked, "a retryable failure takes a token");
        let mut asked = false;
        rules.after(&mut counts, failed(Code::Internal), 3, true, false, || {
            asked = true;
            true
        });
        assert!(!asked, "a failure that is not retried takes none");
    }

    #[test]
    fn a_call_never_sent_goes_again_once_per_subchannel_whatever_the_method() {
        let classify = Rules::new(CLASSIFY_PATH, Kind::Streaming, None, 5, false);
        let mut counts = Counts { sent: 1, ..Counts::default() };
        for _ in 0..3 {
            assert_eq!(classify.after(&mut counts, not_sent(), 3, true, false, || true), After::SendAgain);
            counts.sent += 1;
        }
        assert_eq!(counts, Counts { sent: 1, retried: 0, sent_again: 3 }, "not attempts of the call's");
        assert_eq!(classify.after(&mut counts, not_sent(), 3, true, false, || true), After::Fail);
        let mut late = Counts { sent: 1, ..Counts::default() };
        assert_eq!(classify.after(&mut late, not_sent(), 3, false, false, || true), After::Fail, "past the deadline");
    }

    #[test]
    fn wait_for_ready_keeps_a_call_that_could_not_be_sent_waiting() {
        let classify = Rules::new(CLASSIFY_PATH, Kind::Streaming, None, 5, true);
        let mut counts = Counts { sent: 1, sent_again: 3, ..Counts::default() };
        assert_eq!(classify.after(&mut counts, not_sent(), 3, true, false, || false), After::Retry);
        assert_eq!(classify.after(&mut counts, failed(Code::Unavailable), 3, true, false, || true), After::Fail);
    }

    #[test]
    fn hedges_go_out_while_attempts_and_the_budget_allow_and_a_hedged_retry_goes_at_once() {
        let rules = Rules::new(SEARCH_PATH, Kind::Unary, HEDGED, 5, false);
        assert!(rules.may_hedge(Counts { sent: 2, ..Counts::default() }, || true));
        assert!(!rules.may_hedge(Counts { sent: 3, ..Counts::default() }, || true), "hedging's max_attempts");
        assert!(!rules.may_hedge(Counts { sent: 1, ..Counts::default() }, || false), "the budget");
        let counts = Counts { sent: 2, retried: 1, sent_again: 0 };
        let backoff = |n| Duration::from_millis(100 * u64::from(n));
        assert_eq!(rules.retry_delay(counts, || true, backoff), Duration::ZERO);
        assert_eq!(rules.retry_delay(counts, || false, backoff), Duration::from_millis(200));
        let mut counts = Counts { sent: 3, retried: 4, sent_again: 0 };
        let internal = rules.after(&mut counts, failed(Code::Internal), 3, true, true, || true);
        assert_eq!(internal, After::Fail, "not retryable: fails even with hedges running");
        let unavailable = rules.after(&mut counts, failed(Code::Unavailable), 3, true, true, || true);
        assert_eq!(unavailable, After::Wait, "retries spent: the hedges still running may answer");
    }

    #[test]
    fn an_xds_retry_policy_sets_the_codes_the_attempts_and_the_backoff() {
        let mut rules = Rules::new(SEARCH_PATH, Kind::Unary, None, 5, false);
        let policy = RetryPolicy {
            retry_on: vec![Code::Cancelled],
            max_attempts: 9,
            base_interval: Duration::from_millis(10),
            max_interval: Duration::from_millis(100),
        };
        rules.follow(Some(&policy));
        let counts = |retried| Counts { sent: retried + 1, retried, sent_again: 0 };
        let after =
            |rules: &Rules, code, retried| rules.after(&mut counts(retried), failed(code), 3, true, false, || true);
        assert_eq!(after(&rules, Code::Unavailable, 0), After::Fail, "UNAVAILABLE is not in retry_on");
        assert_eq!(after(&rules, Code::Cancelled, 3), After::Retry);
        assert_eq!(after(&rules, Code::Cancelled, 4), After::Fail, "at most 5 attempts, as grpc caps them");
        assert_eq!(rules.backoff(Backoff::DEFAULT).ceiling(1), Duration::from_millis(10));
        let mut streaming = Rules::new(CLASSIFY_PATH, Kind::Streaming, None, 5, false);
        streaming.follow(Some(&policy));
        assert_eq!(after(&streaming, Code::Cancelled, 0), After::Fail, "a stream is still never retried");
    }
}
