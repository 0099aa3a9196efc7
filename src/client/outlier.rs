//! Outlier detection, as gRFC A50 specifies it after Envoy's: every
//! subchannel counts how its attempts ended, and a sweep every interval
//! ejects the ones that fail far more than the rest (the success-rate
//! algorithm, for fleets of five or more) or than a fixed share (the
//! failure-percentage algorithm, which also works for two or three). An
//! ejected subchannel reports TRANSIENT_FAILURE and keeps its connection,
//! so it serves again at once when its ejection ends; each ejection of the
//! same address lasts longer (the base time times the ejections in a row),
//! and never more than a share of the subchannels, nor all of them, is out.
//!
//! What counts: an attempt answered OK is a success; one that ended with
//! any other status (from the server, a lost connection, or the deadline)
//! is a failure, as grpc counts them. Two cases grpc does not have: an
//! attempt the server never took (refused unprocessed, sent again
//! elsewhere) is not counted, since the replica did not fail it; and an
//! attempt that lost to a hedge is a failure when it had been running for
//! at least the hedging delay (it was the slow one: counting it is what
//! lets a replica that answers, but late, be ejected), and not counted when
//! it was itself a hedge sent too late to win.
//!
//! tower's `balance` has no ejection, and tonic's balancing no passive
//! health at all: the sweep is written here, a pure function of the counts
//! so that it is tested without a network.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The ejection settings (gRFC A50's `outlier_detection` LB policy config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutlierDetection {
    /// Time between two sweeps (A50 `interval`).
    pub interval: Duration,
    /// An ejection lasts this, times the ejections in a row (A50
    /// `base_ejection_time`).
    pub base_ejection_time: Duration,
    /// The longest an ejection lasts (A50 `max_ejection_time`; the base
    /// time when that is longer).
    pub max_ejection_time: Duration,
    /// The most subchannels out at once, in percent of all; one may always
    /// be, unless it is the only one (A50 `max_ejection_percent`).
    pub max_ejection_percent: u32,
    /// Eject statistical outliers by success rate.
    pub success_rate: Option<SuccessRateEjection>,
    /// Eject whoever fails more than a share of its attempts.
    pub failure_percentage: Option<FailurePercentageEjection>,
}

/// The success-rate algorithm (A50 `success_rate_ejection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessRateEjection {
    /// Eject below `mean - stdev * stdev_factor / 1000` (A50 `stdev_factor`).
    pub stdev_factor: u32,
    /// The chance, in percent, that an outlier is ejected.
    pub enforcement_percentage: u32,
    /// Subchannels with enough attempts needed before any is judged.
    pub minimum_hosts: u32,
    /// Attempts in an interval for a subchannel to be judged.
    pub request_volume: u32,
}

/// The failure-percentage algorithm (A50 `failure_percentage_ejection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePercentageEjection {
    /// Eject when more than this percent of the attempts failed.
    pub threshold: u32,
    /// The chance, in percent, that such a subchannel is ejected.
    pub enforcement_percentage: u32,
    /// Subchannels with enough attempts needed before any is judged.
    pub minimum_hosts: u32,
    /// Attempts in an interval for a subchannel to be judged.
    pub request_volume: u32,
}

impl Default for OutlierDetection {
    /// A50's settings, but for three that would leave a small fleet
    /// unguarded or find a gray replica too late: a sweep every second (A50:
    /// 10 s), and failure-percentage ejection on from two subchannels with 20
    /// attempts a second (A50: off unless configured, five hosts, 50
    /// attempts). Success-rate ejection keeps A50's values: with fewer than
    /// five hosts a standard deviation cannot single one out.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            success_rate: Some(SuccessRateEjection {
                stdev_factor: 1900,
                enforcement_percentage: 100,
                minimum_hosts: 5,
                request_volume: 100,
            }),
            failure_percentage: Some(FailurePercentageEjection {
                threshold: 85,
                enforcement_percentage: 100,
                minimum_hosts: 2,
                request_volume: 20,
            }),
        }
    }
}

/// Why outlier detection settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutlierError {
    /// A zero interval or base ejection time.
    #[error("the outlier detection interval and base ejection time must be more than 0")]
    Zero,
    /// A percentage over 100.
    #[error("{0} is a percentage: at most 100")]
    Percent(&'static str),
}

impl OutlierDetection {
    /// Checks the settings as A50 does.
    ///
    /// # Errors
    /// A zero interval or base time, or a percentage over 100.
    pub fn check(&self) -> Result<(), OutlierError> {
        if self.interval.is_zero() || self.base_ejection_time.is_zero() {
            return Err(OutlierError::Zero);
        }
        let mut percents = vec![("the maximum ejection percent", self.max_ejection_percent)];
        if let Some(rate) = &self.success_rate {
            percents.push(("the success-rate enforcement percentage", rate.enforcement_percentage));
        }
        if let Some(failure) = &self.failure_percentage {
            percents.push(("the failure-percentage threshold", failure.threshold));
            percents.push(("the failure-percentage enforcement percentage", failure.enforcement_percentage));
        }
        match percents.into_iter().find(|(_, value)| *value > 100) {
            Some((what, _)) => Err(OutlierError::Percent(what)),
            None => Ok(()),
        }
    }

    /// How long ejection number `multiplier` (from 1) lasts.
    fn ejection_time(&self, multiplier: u32) -> Duration {
        let cap = self.max_ejection_time.max(self.base_ejection_time);
        self.base_ejection_time.saturating_mul(multiplier).min(cap)
    }
}

/// A subchannel's counts and ejection, shared by its calls and the sweep.
#[derive(Debug, Default)]
pub(super) struct Tally {
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
    pub(super) fn success(&self) {
        self.successes.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt on this subchannel failed.
    pub(super) fn failure(&self) {
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
    let mut verdicts = Vec::new();
    let total = subchannels.len();
    let ejected = |subchannels: &[Counted]| subchannels.iter().filter(|s| s.ejection.since.is_some()).count();
    // A50's cap, with its "at least one" and this client's "never all".
    let room = |out: usize| out + 1 < total && (out == 0 || out * 100 < config.max_ejection_percent as usize * total);
    let eject = |subchannels: &mut [Counted], index: usize, why: String, verdicts: &mut Vec<Verdict>| {
        let counted = &mut subchannels[index];
        counted.ejection.since = Some(now);
        counted.ejection.multiplier = counted.ejection.multiplier.saturating_add(1);
        verdicts.push(Verdict::Eject { index, time: config.ejection_time(counted.ejection.multiplier), why });
    };

    if let Some(rate) = &config.success_rate {
        let volume = u64::from(rate.request_volume);
        let judged: Vec<f64> =
            subchannels.iter().filter(|s| s.volume() >= volume.max(1)).map(Counted::success_rate).collect();
        if !judged.is_empty() && judged.len() >= rate.minimum_hosts as usize {
            #[allow(clippy::cast_precision_loss)] // a few subchannels
            let n = judged.len() as f64;
            let mean = judged.iter().sum::<f64>() / n;
            let stdev = (judged.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
            let threshold = mean - stdev * f64::from(rate.stdev_factor) / 1000.0;
            for index in 0..total {
                if !room(ejected(subchannels)) {
                    break;
                }
                let counted = subchannels[index];
                if counted.ejection.since.is_some() || counted.volume() < volume.max(1) {
                    continue;
                }
                if counted.success_rate() < threshold && roll() < rate.enforcement_percentage {
                    let why = format!(
                        "success rate {:.0}% against a fleet mean of {:.0}% (threshold {:.0}%)",
                        counted.success_rate() * 100.0,
                        mean * 100.0,
                        threshold * 100.0
                    );
                    eject(subchannels, index, why, &mut verdicts);
                }
            }
        }
    }

    if let Some(failure) = &config.failure_percentage {
        let volume = u64::from(failure.request_volume).max(1);
        let judged = subchannels.iter().filter(|s| s.volume() >= volume).count();
        if judged > 0 && judged >= failure.minimum_hosts as usize {
            for index in 0..total {
                if !room(ejected(subchannels)) {
                    break;
                }
                let counted = subchannels[index];
                if counted.ejection.since.is_some() || counted.volume() < volume {
                    continue;
                }
                let failed = counted.failures * 100;
                if failed > u64::from(failure.threshold) * counted.volume() && roll() < failure.enforcement_percentage {
                    let why = format!(
                        "{} of {} attempts failed, over {}%",
                        counted.failures,
                        counted.volume(),
                        failure.threshold
                    );
                    eject(subchannels, index, why, &mut verdicts);
                }
            }
        }
    }

    for (index, counted) in subchannels.iter_mut().enumerate() {
        match counted.ejection.since {
            None => counted.ejection.multiplier = counted.ejection.multiplier.saturating_sub(1),
            Some(since) if now >= since + config.ejection_time(counted.ejection.multiplier) => {
                counted.ejection.since = None;
                verdicts.push(Verdict::Return { index });
            }
            Some(_) => {}
        }
    }
    verdicts
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

    #[test]
    fn settings_are_checked() {
        assert_eq!(OutlierDetection::default().check(), Ok(()));
        let zero = OutlierDetection { interval: Duration::ZERO, ..OutlierDetection::default() };
        assert_eq!(zero.check(), Err(OutlierError::Zero));
        let over = OutlierDetection { max_ejection_percent: 101, ..OutlierDetection::default() };
        assert_eq!(over.check(), Err(OutlierError::Percent("the maximum ejection percent")));
    }
}
