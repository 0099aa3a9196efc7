//! Weighted round robin's scheduler (gRFC A58): earliest deadline first.
//! Each entry comes due every `1 / weight`; a pick takes the entry due
//! first (the lower index on a tie) and sets it due again one period later,
//! so that over any run of picks each entry's share is its weight's share.
//! Entries without a weight (0: not known yet) get the mean of the others';
//! with fewer than two weights known the policy is plain round robin and no
//! scheduler is made. [`Schedule`]: the one in effect, over the READY
//! subchannels it was made with.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, PoisonError};

use super::subchannel::Subchannel;

/// An earliest-deadline-first scheduler over entries `0..n`.
#[derive(Debug)]
pub(super) struct Edf {
    due: BinaryHeap<Reverse<Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    deadline: f64,
    index: usize,
    period: f64,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.deadline.total_cmp(&other.deadline).then(self.index.cmp(&other.index))
    }
}

impl Edf {
    /// A scheduler over `weights` (0: unknown, given the mean of the known
    /// ones); `None` when fewer than two are known. Each entry's first
    /// deadline is its period times `offset()` (in `[0, 1)`), so that
    /// clients built at once do not pick in step.
    pub(super) fn new(weights: &[f64], mut offset: impl FnMut() -> f64) -> Option<Self> {
        let known: Vec<f64> = weights.iter().copied().filter(|w| w.is_finite() && *w > 0.0).collect();
        if known.len() < 2 {
            return None;
        }
        let mean = known.iter().sum::<f64>() / known.len() as f64;
        let due = weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| {
                let weight = if weight.is_finite() && weight > 0.0 { weight } else { mean };
                let period = 1.0 / weight;
                Reverse(Entry { deadline: period * offset().clamp(0.0, 1.0), index, period })
            })
            .collect();
        Some(Self { due })
    }

    /// The entry due first, set due again a period later.
    #[cfg(test)]
    pub(super) fn next(&mut self) -> Option<usize> {
        self.next_kept(|_| true)
    }

    /// The entry due first of those `keep` keeps, set due again a period
    /// later; the others stay due as they were.
    pub(super) fn next_kept(&mut self, keep: impl Fn(usize) -> bool) -> Option<usize> {
        let mut skipped = Vec::new();
        let mut chosen = None;
        while let Some(Reverse(mut entry)) = self.due.pop() {
            if keep(entry.index) {
                chosen = Some(entry.index);
                entry.deadline += entry.period;
                self.due.push(Reverse(entry));
                break;
            }
            skipped.push(Reverse(entry));
        }
        self.due.extend(skipped);
        chosen
    }
}

/// The scheduler in effect: the subchannels it was made over, and it.
#[derive(Debug, Default)]
pub(super) struct Schedule(Mutex<Option<(Vec<Arc<Subchannel>>, Edf)>>);

impl Schedule {
    /// The scheduler's next subchannel that `fresh` keeps; `None` when there
    /// is no scheduler or it has none.
    pub(super) fn pick(&self, fresh: impl Fn(&Arc<Subchannel>) -> bool) -> Option<Arc<Subchannel>> {
        let mut schedule = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (subchannels, edf) = schedule.as_mut()?;
        edf.next_kept(|i| fresh(&subchannels[i])).map(|i| Arc::clone(&subchannels[i]))
    }
}

impl Schedule {
    /// Makes the scheduler over `ready`, the READY subchannels, with their
    /// `weights` (none with fewer than two known).
    pub(super) fn set(&self, ready: Vec<Arc<Subchannel>>, weights: &[f64]) {
        let schedule = Edf::new(weights, fastrand::f64).map(|edf| (ready, edf));
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = schedule;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(weights: &[f64], picks: usize) -> Vec<usize> {
        let mut edf = Edf::new(weights, || 0.0).expect("a scheduler");
        let mut counts = vec![0; weights.len()];
        for _ in 0..picks {
            counts[edf.next().expect("an entry")] += 1;
        }
        counts
    }

    #[test]
    fn each_entry_is_picked_in_proportion_to_its_weight() {
        assert_eq!(shares(&[1.0, 2.0, 7.0], 1000), [100, 200, 700]);
        assert_eq!(shares(&[5.0, 5.0], 10), [5, 5]);
    }

    #[test]
    fn picks_interleave_rather_than_run_in_blocks() {
        let mut edf = Edf::new(&[1.0, 3.0], || 0.0).expect("a scheduler");
        let order: Vec<usize> = (0..8).map(|_| edf.next().expect("an entry")).collect();
        assert_eq!(order, [0, 1, 1, 1, 0, 1, 1, 1]);
    }

    #[test]
    fn unknown_weights_get_the_mean_and_fewer_than_two_known_make_none() {
        assert_eq!(shares(&[100.0, 300.0, 0.0], 600), [100, 300, 200]);
        assert!(Edf::new(&[100.0, 0.0, 0.0], || 0.0).is_none(), "one known: round robin");
        assert!(Edf::new(&[], || 0.0).is_none());
        assert!(Edf::new(&[f64::NAN, 1.0], || 0.0).is_none(), "NaN is not a weight");
    }

    #[tokio::test]
    async fn a_schedule_skips_what_its_caller_does_not_keep() {
        use crate::client::channel::connectivity::ConnectivityState::Ready;
        let subs = crate::client::channel::subchannel::in_states(&[Ready, Ready]);
        let schedule = Schedule::default();
        assert!(schedule.pick(|_| true).is_none(), "no scheduler: round robin decides");
        schedule.set(subs.clone(), &[1.0, 9.0]);
        let heavy = (0..100).filter(|_| schedule.pick(|_| true).is_some_and(|sub| Arc::ptr_eq(&sub, &subs[1]))).count();
        assert_eq!(heavy, 90);
        let light = schedule.pick(|sub| !Arc::ptr_eq(sub, &subs[1])).expect("the other");
        assert!(Arc::ptr_eq(&light, &subs[0]), "the heavy one skipped (tried, or no longer READY)");
        assert!(schedule.pick(|_| false).is_none(), "none kept: round robin decides");
        schedule.set(subs, &[1.0, 0.0]);
        assert!(schedule.pick(|_| true).is_none(), "one weight known: no scheduler");
    }

    #[test]
    fn random_offsets_keep_the_shares() {
        let mut edf = Edf::new(&[1.0, 4.0], fastrand::f64).expect("a scheduler");
        let picked_first = (0..500).filter(|_| edf.next() == Some(0)).count();
        assert!((95..=105).contains(&picked_first), "{picked_first}");
    }
}
