//! The load-balancing policies: which subchannel a call (or a retry, or a
//! hedge) goes to, from the subchannels' states alone.
//!
//! - `pick_first`: the first address that works, in the resolver's order,
//!   until it stops working (gRFC A61);
//! - `round_robin`: every READY subchannel in turn;
//! - `weighted_round_robin`: READY subchannels in proportion to their
//!   servers' load reports (gRFC A58, `weighted.rs`), round robin while
//!   fewer than two weights are known;
//! - `auto` (the default): `round_robin` when the target has more than one
//!   address, `pick_first` for one.
//!
//! A call goes only to a READY subchannel (one whose server has spoken
//! HTTP/2, whose health says SERVING, that is not ejected). While none is,
//! it waits for one as long as a subchannel may still become READY; when
//! every subchannel has failed since it was last READY (grpc's sticky
//! TRANSIENT_FAILURE, even while it dials again) it fails at once, unless it
//! waits for ready. A later attempt of a call avoids the subchannels the
//! call already went to, while another can take it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::connectivity::ConnectivityState;
use super::subchannel::Subchannel;
use super::target::Target;
use crate::client::error::Error;

/// How calls are spread over the subchannels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LoadBalancing {
    /// `round_robin` for a target with several addresses, with health
    /// checking, outlier detection and hedging over them; `pick_first` for
    /// one. Decided when the target first resolves.
    #[default]
    #[value(name = "auto")]
    Auto,
    /// The first address that works, in order (grpc's default policy).
    #[value(name = "pick_first")]
    PickFirst,
    /// Every READY address in turn.
    #[value(name = "round_robin")]
    RoundRobin,
    /// READY addresses in proportion to their weights from their servers'
    /// load reports (gRFC A58).
    #[value(name = "weighted_round_robin")]
    WeightedRoundRobin,
}

impl LoadBalancing {
    /// The policy a target of `addresses` addresses is served by.
    #[must_use]
    pub fn for_addresses(self, addresses: usize) -> Self {
        match self {
            Self::Auto if addresses > 1 => Self::RoundRobin,
            Self::Auto => Self::PickFirst,
            policy => policy,
        }
    }

    /// Whether it spreads calls over every address, and so keeps every one
    /// connected and watches their health: round robin, weighted or not.
    #[must_use]
    pub fn spreads(self) -> bool {
        matches!(self, Self::RoundRobin | Self::WeightedRoundRobin)
    }
}

/// What a call's pick found.
#[derive(Debug)]
pub(super) enum Pick<'a> {
    /// This READY subchannel.
    Ready(&'a Arc<Subchannel>),
    /// None READY yet, but one may become so: wait.
    Wait,
    /// Every subchannel has failed since it was last READY.
    Fail,
}

/// The subchannel of the next call under `policy` (`pick_first` or
/// `round_robin`; weighted round robin's fallback is round robin), avoiding those in `avoid` while another is READY.
pub(super) fn pick<'a>(
    policy: LoadBalancing,
    subchannels: &'a [Arc<Subchannel>],
    cursor: &AtomicUsize,
    avoid: &[Arc<Subchannel>],
) -> Pick<'a> {
    let ready = |sub: &&Arc<Subchannel>| sub.state() == ConnectivityState::Ready;
    let untried = |sub: &&Arc<Subchannel>| !avoid.iter().any(|a| Arc::ptr_eq(a, sub));
    let fresh = |sub: &&Arc<Subchannel>| ready(sub) && untried(sub);
    let chosen = match policy {
        policy if policy.spreads() => turn(subchannels, cursor, &fresh),
        _ => subchannels.iter().find(fresh),
    };
    if let Some(sub) = chosen {
        return Pick::Ready(sub);
    }
    // A later attempt waits for another subchannel while one may come up,
    // before it goes back to one the call already went to.
    if subchannels.iter().filter(untried).any(|sub| sub.may_become_ready()) {
        return Pick::Wait;
    }
    let again = match policy {
        policy if policy.spreads() => turn(subchannels, cursor, &ready),
        _ => subchannels.iter().find(ready),
    };
    match again {
        Some(sub) => Pick::Ready(sub),
        None if subchannels.iter().any(|sub| sub.may_become_ready()) => Pick::Wait,
        None => Pick::Fail,
    }
}

/// A READY subchannel not in `tried`, in a turn of its own (`cursor`): for
/// a hedge, which is no hedge where the call already waits.
pub(super) fn choose_ready<'a>(
    subchannels: &'a [Arc<Subchannel>],
    cursor: &AtomicUsize,
    tried: &[Arc<Subchannel>],
) -> Option<&'a Arc<Subchannel>> {
    turn(subchannels, cursor, &|sub| ready_elsewhere(sub, tried))
}

/// Whether `sub` is READY and not in `tried`.
pub(super) fn ready_elsewhere(sub: &Arc<Subchannel>, tried: &[Arc<Subchannel>]) -> bool {
    sub.state() == ConnectivityState::Ready && !tried.iter().any(|t| Arc::ptr_eq(t, sub))
}

/// Why no subchannel of `target` can take a call: each one's last failure.
pub(super) fn unreachable(target: &Target, subchannels: &[Arc<Subchannel>]) -> Error {
    let failures: Vec<String> = subchannels.iter().filter_map(|sub| sub.last_failure()).collect();
    let cause = match (subchannels.len(), failures.as_slice()) {
        (0, _) => "no address to connect to".to_owned(),
        (1, [only]) => only.clone(),
        (_, []) => "no address could be reached".to_owned(),
        (_, _) => subchannels
            .iter()
            .filter_map(|sub| sub.last_failure().map(|why| format!("{}: {why}", sub.address)))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Error::Connect { target: target.to_string(), cause }
}

/// Why none of `subchannels` is READY now: each one's state and last
/// failure, for a call that waited for one until its deadline.
pub(super) fn why_not_ready(subchannels: &[Arc<Subchannel>]) -> String {
    let states: Vec<String> = subchannels
        .iter()
        .map(|sub| match sub.last_failure() {
            Some(why) => format!("{} {}: {why}", sub.address, sub.state()),
            None => format!("{} {}", sub.address, sub.state()),
        })
        .collect();
    format!("no subchannel was READY ({})", states.join("; "))
}

/// The next of the subchannels that `keep`, turning with the cursor.
fn turn<'a>(
    subchannels: &'a [Arc<Subchannel>],
    cursor: &AtomicUsize,
    keep: &dyn Fn(&&Arc<Subchannel>) -> bool,
) -> Option<&'a Arc<Subchannel>> {
    let n = subchannels.iter().filter(|sub| keep(sub)).count();
    (n > 0)
        .then(|| cursor.fetch_add(1, Ordering::Relaxed) % n)
        .and_then(|i| subchannels.iter().filter(|sub| keep(sub)).nth(i))
}

#[cfg(test)]
mod tests {
    use ConnectivityState::{Connecting, Idle, Ready, TransientFailure as Failing};

    use super::*;
    use crate::client::channel::dial::Address;
    use crate::client::channel::subchannel::in_states;

    fn port(sub: &Subchannel) -> u16 {
        match sub.address {
            Address::Tcp(addr) => addr.port() - 1000,
            Address::Unix(_) => u16::MAX,
        }
    }

    /// Where `n` calls go: a port, or `None` to wait, or `Some(u16::MAX)`
    /// to fail.
    fn picks(policy: LoadBalancing, subs: &[Arc<Subchannel>], avoid: &[Arc<Subchannel>], n: usize) -> Vec<Option<u16>> {
        let cursor = AtomicUsize::new(0);
        (0..n)
            .map(|_| match pick(policy, subs, &cursor, avoid) {
                Pick::Ready(sub) => Some(port(sub)),
                Pick::Wait => None,
                Pick::Fail => Some(u16::MAX),
            })
            .collect()
    }

    #[tokio::test]
    async fn pick_first_takes_the_first_ready_else_waits_while_one_may_connect() {
        use LoadBalancing::PickFirst;
        assert_eq!(picks(PickFirst, &in_states(&[Idle, Ready, Ready]), &[], 3), [Some(1); 3]);
        assert_eq!(picks(PickFirst, &in_states(&[Failing, Idle, Connecting]), &[], 1), [None], "waits");
        assert_eq!(picks(PickFirst, &in_states(&[Failing, Failing]), &[], 1), [Some(u16::MAX)], "all failed: fails");
    }

    #[tokio::test]
    async fn round_robin_turns_over_the_ready_ones_only() {
        use LoadBalancing::RoundRobin;
        let ready = picks(RoundRobin, &in_states(&[Ready, Failing, Ready, Ready]), &[], 6);
        assert_eq!(ready, [0, 2, 3, 0, 2, 3].map(Some));
        assert_eq!(picks(RoundRobin, &in_states(&[Failing, Idle, Connecting]), &[], 1), [None], "none ready: waits");
        assert_eq!(picks(RoundRobin, &[], &[], 1), [Some(u16::MAX)], "no address: fails");
    }

    #[tokio::test]
    async fn a_subchannel_that_failed_stays_failed_while_it_dials_again() {
        let subs = in_states(&[Failing, Failing]);
        for sub in &subs {
            sub.connectivity.set(Connecting);
            sub.update_state(|_, _| {});
        }
        assert_eq!(picks(LoadBalancing::RoundRobin, &subs, &[], 1), [Some(u16::MAX)], "sticky: fails at once");
        subs[1].connectivity.set(Ready);
        subs[1].update_state(|_, _| {});
        assert_eq!(picks(LoadBalancing::RoundRobin, &subs, &[], 2), [Some(1); 2], "READY again: taken");
    }

    #[tokio::test]
    async fn a_later_attempt_avoids_the_subchannels_the_call_went_to() {
        let subs = in_states(&[Ready, Ready, Ready]);
        for policy in [LoadBalancing::PickFirst, LoadBalancing::RoundRobin] {
            let tried = [Arc::clone(&subs[0]), Arc::clone(&subs[2])];
            assert_eq!(picks(policy, &subs, &tried, 3), [Some(1); 3], "{policy:?}");
            let all = picks(policy, &subs, &subs, 1);
            assert!(all[0].is_some_and(|port| port < 3), "{policy:?}: none left, a READY one again");
        }
        // One that may still come up is waited for first.
        let subs = in_states(&[Ready, Idle, Failing]);
        let tried = [Arc::clone(&subs[0])];
        for policy in [LoadBalancing::PickFirst, LoadBalancing::RoundRobin] {
            assert_eq!(picks(policy, &subs, &tried, 1), [None], "{policy:?}: waits for the IDLE one");
        }
    }

    #[test]
    fn auto_is_round_robin_for_several_addresses_and_pick_first_for_one() {
        assert_eq!(LoadBalancing::Auto.for_addresses(3), LoadBalancing::RoundRobin);
        assert_eq!(LoadBalancing::Auto.for_addresses(1), LoadBalancing::PickFirst);
        assert_eq!(LoadBalancing::PickFirst.for_addresses(3), LoadBalancing::PickFirst);
    }

    #[tokio::test]
    async fn a_hedge_goes_only_to_a_ready_subchannel_the_call_has_not_been_to() {
        let subs = in_states(&[Ready, Connecting, Ready]);
        let cursor = AtomicUsize::new(0);
        let tried = [Arc::clone(&subs[0])];
        let hedges: Vec<u16> = (0..3).map(|_| port(choose_ready(&subs, &cursor, &tried).expect("one"))).collect();
        assert_eq!(hedges, [2, 2, 2]);
        assert!(choose_ready(&subs, &cursor, &[Arc::clone(&subs[0]), Arc::clone(&subs[2])]).is_none());
    }
}
