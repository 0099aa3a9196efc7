//! Outlier detection's counts and sweep (gRFC A50): each subchannel's
//! successes and failures since the last sweep, its ejection, and the sweep
//! that judges them all, a pure function of the counts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::outlier::{FailurePercentageEjection, OutlierDetection, SuccessRateEjection};

/// A subchannel's counts and ejection, shared by its calls and the sweep.
#[derive(Debug, Default)]
pub(in crate::client) struct Tally {
    successes: AtomicU64,
    failures: AtomicU64,
    ejection: Mutex<Ejection>,
}

/// A subchannel's ejection state between sweeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Ejection {
    /// When the current ejection began; `None` while not ejected.
    pub(super) since: Option<Instant>,
    /// Ejections in a row: grows by one per ejection, shrinks by one per
    /// sweep spent serving.
    pub(super) multiplier: u32,
}

impl Tally {
    /// An attempt on this subchannel ended OK.
    pub(in crate::client) fn success(&self) {
        self.successes.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt on this subchannel failed.
    pub(in crate::client) fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last sweep, which start again from zero (A50's
    /// two buckets: the one read is the one just filled).
    pub(super) fn take(&self) -> (u64, u64) {
        (self.successes.swap(0, Ordering::Relaxed), self.failures.swap(0, Ordering::Relaxed))
    }

    /// The ejection state.
    pub(super) fn ejection(&self) -> Ejection {
        *self.ejection.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the ejection state.
    pub(super) fn set_ejection(&self, ejection: Ejection) {
        *self.ejection.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = ejection;
    }

    /// Whether the subchannel is ejected now.
    pub(super) fn ejected(&self) -> bool {
        self.ejection().since.is_some()
    }
}

/// One subchannel as a sweep sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counted {
    /// Attempts that succeeded in the interval.
    pub(super) successes: u64,
    /// Attempts that failed in the interval.
    pub(super) failures: u64,
    /// Its ejection, updated by the sweep.
    pub(super) ejection: Ejection,
}

impl Counted {
    fn volume(&self) -> u64 {
        self.successes + self.failures
    }

    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn success_rate(&self) -> f64 {
        self.successes as f64 / self.volume() as f64
    }
}

/// What a sweep decided for one subchannel (its index in the sweep).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    /// Ejected from now, for `time`, because of `why`.
    Eject {
        /// The subchannel.
        index: usize,
        /// How long.
        time: Duration,
        /// The algorithm and the figures that ejected it.
        why: String,
    },
    /// Its ejection is over.
    Return {
        /// The subchannel.
        index: usize,
    },
}

/// One sweep at `now` over every subchannel's counts (A50's timer steps 3 to
/// 5), updating each ejection; `roll` draws a number in `0..100` for the
/// enforcement percentages.
pub(super) fn sweep(
    config: &OutlierDetection,
    now: Instant,
    subchannels: &mut [Counted],
    mut roll: impl FnMut() -> u32,
) -> Vec<Verdict> {
    let mut sweep = Sweep { config, now, subchannels, verdicts: Vec::new() };
    if let Some(rate) = &config.success_rate {
        sweep.success_rate(rate, &mut roll);
    }
    if let Some(failure) = &config.failure_percentage {
        sweep.failure_percentage(failure, &mut roll);
    }
    sweep.end_ejections();
    sweep.verdicts
}

/// A sweep under way.
struct Sweep<'a> {
    config: &'a OutlierDetection,
    now: Instant,
    subchannels: &'a mut [Counted],
    verdicts: Vec<Verdict>,
}

impl Sweep<'_> {
    /// Whether one more may be ejected: A50's cap, with its "at least one"
    /// and this client's "never all".
    fn room(&self) -> bool {
        let total = self.subchannels.len();
        let out = self.subchannels.iter().filter(|s| s.ejection.since.is_some()).count();
        out + 1 < total && (out == 0 || out * 100 < self.config.max_ejection_percent as usize * total)
    }

    /// Ejects subchannel `index` from now, because of `why`.
    fn eject(&mut self, index: usize, why: String) {
        let counted = &mut self.subchannels[index];
        counted.ejection.since = Some(self.now);
        counted.ejection.multiplier = counted.ejection.multiplier.saturating_add(1);
        let time = self.config.ejection_time(counted.ejection.multiplier);
        self.verdicts.push(Verdict::Eject { index, time, why });
    }

    /// Each subchannel not ejected with at least `volume` attempts, while
    /// there is room, given to `judge`, which says why to eject it.
    fn judge_each(&mut self, volume: u64, mut judge: impl FnMut(&Counted) -> Option<String>) {
        for index in 0..self.subchannels.len() {
            if !self.room() {
                break;
            }
            let counted = self.subchannels[index];
            if counted.ejection.since.is_some() || counted.volume() < volume {
                continue;
            }
            if let Some(why) = judge(&counted) {
                self.eject(index, why);
            }
        }
    }

    /// The success-rate algorithm: below the fleet's mean by more than the
    /// standard deviation times the factor.
    fn success_rate(&mut self, rate: &SuccessRateEjection, roll: &mut impl FnMut() -> u32) {
        let volume = u64::from(rate.request_volume).max(1);
        let judged: Vec<f64> =
            self.subchannels.iter().filter(|s| s.volume() >= volume).map(Counted::success_rate).collect();
        if judged.is_empty() || judged.len() < rate.minimum_hosts as usize {
            return;
        }
        #[allow(clippy::cast_precision_loss)] // a few subchannels
        let n = judged.len() as f64;
        let mean = judged.iter().sum::<f64>() / n;
        let stdev = (judged.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        let threshold = mean - stdev * f64::from(rate.stdev_factor) / 1000.0;
        self.judge_each(volume, |counted| {
            (counted.success_rate() < threshold && roll() < rate.enforcement_percentage).then(|| {
                format!(
                    "success rate {:.0}% against a fleet mean of {:.0}% (threshold {:.0}%)",
                    counted.success_rate() * 100.0,
                    mean * 100.0,
                    threshold * 100.0
                )
            })
        });
    }

    /// The failure-percentage algorithm: more than the threshold failed.
    fn failure_percentage(&mut self, failure: &FailurePercentageEjection, roll: &mut impl FnMut() -> u32) {
        let volume = u64::from(failure.request_volume).max(1);
        let judged = self.subchannels.iter().filter(|s| s.volume() >= volume).count();
        if judged == 0 || judged < failure.minimum_hosts as usize {
            return;
        }
        self.judge_each(volume, |counted| {
            let over = counted.failures * 100 > u64::from(failure.threshold) * counted.volume();
            (over && roll() < failure.enforcement_percentage).then(|| {
                format!("{} of {} attempts failed, over {}%", counted.failures, counted.volume(), failure.threshold)
            })
        });
    }

    /// Ends the ejections whose time is over; a sweep spent serving takes
    /// one off a subchannel's ejections in a row.
    fn end_ejections(&mut self) {
        for (index, counted) in self.subchannels.iter_mut().enumerate() {
            match counted.ejection.since {
                None => counted.ejection.multiplier = counted.ejection.multiplier.saturating_sub(1),
                Some(since) if self.now >= since + self.config.ejection_time(counted.ejection.multiplier) => {
                    counted.ejection.since = None;
                    self.verdicts.push(Verdict::Return { index });
                }
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(successes: u64, failures: u64) -> Counted {
        Counted { successes, failures, ejection: Ejection::default() }
    }

    fn ejected_indexes(verdicts: &[Verdict]) -> Vec<usize> {
        verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::Eject { index, .. } => Some(*index),
                Verdict::Return { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_replica_failing_most_attempts_is_ejected_by_failure_percentage() {
        let config = OutlierDetection::default();
        let now = Instant::now();
        let mut subs = [counted(160, 0), counted(3, 164), counted(158, 2)];
        let verdicts = sweep(&config, now, &mut subs, || 0);
        assert_eq!(ejected_indexes(&verdicts), [1]);
        assert_eq!(subs[1].ejection, Ejection { since: Some(now), multiplier: 1 });
        match &verdicts[0] {
            Verdict::Eject { time, why, .. } => {
                assert_eq!(*time, Duration::from_secs(30));
                assert_eq!(why, "164 of 167 attempts failed, over 85%");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn too_few_attempts_or_failures_under_the_threshold_eject_nothing() {
        let config = OutlierDetection::default();
        let now = Instant::now();
        // 19 attempts: under the request volume of 20.
        assert!(sweep(&config, now, &mut [counted(100, 0), counted(0, 19), counted(100, 0)], || 0).is_empty());
        // 85% exactly is not over 85%.
        assert!(sweep(&config, now, &mut [counted(100, 0), counted(3, 17), counted(100, 0)], || 0).is_empty());
        // The enforcement percentage: a roll of 100 never ejects.
        assert!(sweep(&config, now, &mut [counted(100, 0), counted(0, 100), counted(100, 0)], || 100).is_empty());
    }

    #[test]
    fn never_every_subchannel_and_never_past_the_maximum_share() {
        let config = OutlierDetection::default();
        let now = Instant::now();
        // One subchannel, failing everything: it stays (there is no other).
        assert!(sweep(&config, now, &mut [counted(0, 500)], || 0).is_empty());
        // Two, both failing: one goes, the other stays.
        let mut two = [counted(0, 500), counted(0, 500)];
        assert_eq!(ejected_indexes(&sweep(&config, now, &mut two, || 0)), [0]);
        // Twenty, five failing: 10% is two.
        let mut twenty: Vec<Counted> = (0..20).map(|i| if i < 5 { counted(0, 100) } else { counted(100, 0) }).collect();
        assert_eq!(ejected_indexes(&sweep(&config, now, &mut twenty, || 0)), [0, 1]);
    }

    #[test]
    fn success_rate_ejects_the_statistical_outlier_of_a_larger_fleet() {
        let config = OutlierDetection { failure_percentage: None, ..OutlierDetection::default() };
        let now = Instant::now();
        let mut fleet: Vec<Counted> = (0..6).map(|_| counted(200, 0)).collect();
        fleet[4] = counted(120, 80);
        let verdicts = sweep(&config, now, &mut fleet, || 0);
        assert_eq!(ejected_indexes(&verdicts), [4]);
        // With three hosts, under the minimum of five, nothing is judged.
        assert!(sweep(&config, now, &mut [counted(200, 0), counted(0, 200), counted(200, 0)], || 0).is_empty());
    }

    #[test]
    fn ejections_last_longer_in_a_row_and_the_multiplier_decays_while_serving() {
        let config = OutlierDetection::default();
        let start = Instant::now();
        let failing = [counted(100, 0), counted(0, 100), counted(100, 0)];
        let mut subs = failing;
        sweep(&config, start, &mut subs, || 0);
        // Still out 29 s later; back at 30 s.
        let mut later = subs;
        assert!(sweep(&config, start + Duration::from_secs(29), &mut later, || 0).is_empty());
        let at = start + Duration::from_secs(30);
        let mut back = subs;
        assert_eq!(sweep(&config, at, &mut back, || 0), [Verdict::Return { index: 1 }]);
        assert_eq!(back[1].ejection, Ejection { since: None, multiplier: 1 });
        // Failing again at once: the second ejection lasts 60 s.
        let mut again = [counted(100, 0), counted(0, 100), counted(100, 0)];
        again[1].ejection = back[1].ejection;
        match &sweep(&config, at, &mut again, || 0)[0] {
            Verdict::Eject { time, .. } => assert_eq!(*time, Duration::from_secs(60)),
            other => panic!("{other:?}"),
        }
        // A sweep spent serving takes one off the multiplier; the cap holds.
        let mut serving = [counted(100, 0), counted(100, 0), counted(100, 0)];
        serving[1].ejection.multiplier = 3;
        sweep(&config, at, &mut serving, || 0);
        assert_eq!(serving[1].ejection.multiplier, 2);
        assert_eq!(config.ejection_time(1_000), Duration::from_secs(300));
    }
}
