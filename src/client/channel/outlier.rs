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
//! This file holds the settings; `ejection.rs` the counts and the sweep.
//! tower's `balance` has no ejection, and tonic's balancing no passive
//! health at all: the sweep is written here, a pure function of the counts
//! so that it is tested without a network.

use std::time::Duration;

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
    pub(super) fn ejection_time(&self, multiplier: u32) -> Duration {
        let cap = self.max_ejection_time.max(self.base_ejection_time);
        self.base_ejection_time.saturating_mul(multiplier).min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        assert_eq!(OutlierDetection::default().check(), Ok(()));
        let zero = OutlierDetection { interval: Duration::ZERO, ..OutlierDetection::default() };
        assert_eq!(zero.check(), Err(OutlierError::Zero));
        let over = OutlierDetection { max_ejection_percent: 101, ..OutlierDetection::default() };
        assert_eq!(over.check(), Err(OutlierError::Percent("the maximum ejection percent")));
    }
}
