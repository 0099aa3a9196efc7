//! The load-balancing policies: which subchannel a call (or a retry, or a
//! hedge) goes to, from the subchannels' states alone.
//!
//! - `pick_first` (the default, as grpc's): the first address that works,
//!   in the resolver's order, until it stops working;
//! - `round_robin`: every READY subchannel in turn.
//!
//! A later attempt of a call avoids the subchannels the call already went to,
//! while another can take it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::connectivity::ConnectivityState;
use super::subchannel::Subchannel;

/// How calls are spread over the subchannels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LoadBalancing {
    /// The first address that works (grpc's default).
    #[default]
    #[value(name = "pick_first")]
    PickFirst,
    /// Every READY address in turn.
    #[value(name = "round_robin")]
    RoundRobin,
}

/// The subchannel of the next call under `policy`, avoiding those in
/// `avoid`; none when no other is left.
pub(super) fn choose<'a>(
    policy: LoadBalancing,
    subchannels: &'a [Arc<Subchannel>],
    cursor: &AtomicUsize,
    avoid: &[Arc<Subchannel>],
) -> Option<&'a Arc<Subchannel>> {
    let fresh = |sub: &&Arc<Subchannel>| !avoid.iter().any(|a| Arc::ptr_eq(a, sub));
    let usable = |sub: &&Arc<Subchannel>| sub.state() != ConnectivityState::TransientFailure && fresh(sub);
    let ready = |sub: &&Arc<Subchannel>| sub.state() == ConnectivityState::Ready && fresh(sub);
    match policy {
        LoadBalancing::PickFirst => subchannels
            .iter()
            .find(ready)
            .or_else(|| subchannels.iter().find(usable))
            // All failing: each in turn, so that a retry tries another.
            .or_else(|| turn(subchannels, cursor, &fresh)),
        LoadBalancing::RoundRobin => turn(subchannels, cursor, &ready)
            .or_else(|| turn(subchannels, cursor, &usable))
            .or_else(|| turn(subchannels, cursor, &fresh)),
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

    fn picks(policy: LoadBalancing, states: &[ConnectivityState], n: usize) -> Vec<u16> {
        let subs = in_states(states);
        let cursor = AtomicUsize::new(0);
        (0..n).map(|_| port(choose(policy, &subs, &cursor, &[]).expect("one"))).collect()
    }

    #[tokio::test]
    async fn pick_first_takes_the_first_ready_else_the_first_not_failing() {
        use LoadBalancing::PickFirst;
        assert_eq!(picks(PickFirst, &[Idle, Ready, Ready], 3), [1, 1, 1]);
        assert_eq!(picks(PickFirst, &[Failing, Idle, Connecting], 2), [1, 1]);
        assert_eq!(picks(PickFirst, &[Failing, Failing], 4), [0, 1, 0, 1], "all failing: each in turn");
    }

    #[tokio::test]
    async fn round_robin_turns_over_the_ready_ones_only() {
        use LoadBalancing::RoundRobin;
        assert_eq!(picks(RoundRobin, &[Ready, Failing, Ready, Ready], 6), [0, 2, 3, 0, 2, 3]);
        assert_eq!(picks(RoundRobin, &[Failing, Idle, Connecting], 4), [1, 2, 1, 2], "none ready: the usable ones");
        assert_eq!(picks(RoundRobin, &[], 0), Vec::<u16>::new());
    }

    #[tokio::test]
    async fn a_later_attempt_avoids_the_subchannels_the_call_went_to() {
        let subs = in_states(&[Ready, Ready, Ready]);
        let cursor = AtomicUsize::new(0);
        for policy in [LoadBalancing::PickFirst, LoadBalancing::RoundRobin] {
            let tried = [Arc::clone(&subs[0]), Arc::clone(&subs[2])];
            for _ in 0..3 {
                assert_eq!(port(choose(policy, &subs, &cursor, &tried).expect("one left")), 1, "{policy:?}");
            }
            let all: Vec<Arc<Subchannel>> = subs.clone();
            assert!(choose(policy, &subs, &cursor, &all).is_none(), "{policy:?}: none left");
        }
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
