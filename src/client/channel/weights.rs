//! Weighted round robin's weights (gRFC A58): each subchannel's weight from
//! its server's ORCA load reports, `qps / (utilization + eps / qps *
//! penalty)`, where utilization is the application utilization when the
//! server reports one and its CPU utilization otherwise. A weight is used
//! only once its subchannel has reported for a blackout period without a
//! break (a fresh server's first figures are noise), and is dropped when no
//! report came for the expiration period (a server that stopped reporting
//! is treated as unknown, not as what it last said). A weight is read
//! into the scheduler every update period, and also at once when one
//! begins to count ([`WeightsDue`]).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pb::xds::data::orca::v3::OrcaLoadReport;

/// Weighted round robin's settings, with A58's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightSettings {
    /// How long a subchannel reports before its weight is used, from its
    /// first report and again each time it becomes READY.
    pub blackout_period: Duration,
    /// A weight with no report for this long is dropped.
    pub weight_expiration_period: Duration,
    /// How often the weights are read again into the scheduler (at least
    /// 100 ms).
    pub weight_update_period: Duration,
    /// How much each error per second, per query per second, weighs as
    /// utilization.
    pub error_utilization_penalty: f64,
    /// Take the reports from each server's out-of-band stream
    /// (`OpenRcaService`) rather than from each call's trailer.
    pub enable_oob_load_report: bool,
    /// The interval the out-of-band stream is asked to report at.
    pub oob_reporting_period: Duration,
}

impl Default for WeightSettings {
    fn default() -> Self {
        Self {
            blackout_period: Duration::from_secs(10),
            weight_expiration_period: Duration::from_secs(180),
            weight_update_period: Duration::from_secs(1),
            error_utilization_penalty: 1.0,
            enable_oob_load_report: false,
            oob_reporting_period: Duration::from_secs(10),
        }
    }
}

/// The shortest update period (A58).
pub(super) const MIN_UPDATE_PERIOD: Duration = Duration::from_millis(100);

impl WeightSettings {
    /// The update period in effect: at least [`MIN_UPDATE_PERIOD`].
    pub(super) fn update_period(&self) -> Duration {
        self.weight_update_period.max(MIN_UPDATE_PERIOD)
    }
}

/// The weight a report gives, `None` when it gives none (no queries or no
/// utilization reported: such a report is ignored).
pub(super) fn weight_of(report: &OrcaLoadReport, penalty: f64) -> Option<f64> {
    let qps = report.rps_fractional;
    let utilization =
        if report.application_utilization > 0.0 { report.application_utilization } else { report.cpu_utilization };
    if !(qps > 0.0 && utilization > 0.0 && qps.is_finite() && utilization.is_finite()) {
        return None;
    }
    let errors = if report.eps.is_finite() && report.eps > 0.0 { report.eps } else { 0.0 };
    let penalty = if penalty.is_finite() && penalty > 0.0 { penalty } else { 0.0 };
    let weight = qps / (utilization + errors / qps * penalty);
    (weight.is_finite() && weight > 0.0).then_some(weight)
}

/// One subchannel's weight and when it was reported.
#[derive(Debug, Default)]
pub(super) struct Weight(Mutex<Reported>);

#[derive(Debug, Default, Clone, Copy)]
struct Reported {
    /// When the reports began (since the last break: expiry or a new
    /// READY); `None`: none since.
    since: Option<Instant>,
    /// When the last weight came.
    last: Option<Instant>,
    weight: f64,
    /// The weight `-v` last showed.
    shown: f64,
}

impl Weight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Reported> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `report`, received at `now`, if it gives a weight; when it
    /// is the first since a break, the moment the weight begins to count
    /// (after the blackout).
    pub(super) fn report(&self, report: &OrcaLoadReport, settings: &WeightSettings, now: Instant) -> Option<Instant> {
        let weight = weight_of(report, settings.error_utilization_penalty)?;
        let mut reported = self.lock();
        let first = reported.since.is_none();
        reported.since.get_or_insert(now);
        reported.last = Some(now);
        reported.weight = weight;
        first.then(|| now + settings.blackout_period)
    }

    /// The subchannel became READY: its blackout begins again.
    pub(super) fn restart(&self) {
        self.lock().since = None;
    }

    /// The weight in effect at `now`: 0 (unknown) in the blackout, or after
    /// the expiration period without a report (which restarts the blackout).
    pub(super) fn get(&self, settings: &WeightSettings, now: Instant) -> f64 {
        let mut reported = self.lock();
        let (Some(since), Some(last)) = (reported.since, reported.last) else { return 0.0 };
        if now.saturating_duration_since(last) >= settings.weight_expiration_period {
            reported.since = None;
            return 0.0;
        }
        if now.saturating_duration_since(since) < settings.blackout_period {
            return 0.0;
        }
        reported.weight
    }

    /// `weight` if `-v` should show it: when it differs from the one last
    /// shown by more than a tenth, or goes to or from unknown (0).
    pub(super) fn to_show(&self, weight: f64) -> Option<f64> {
        let mut reported = self.lock();
        let shown = reported.shown;
        let changed = if shown == 0.0 || weight == 0.0 { shown != weight } else { (weight / shown - 1.0).abs() > 0.1 };
        changed.then(|| {
            reported.shown = weight;
            weight
        })
    }
}

/// The moments weights not yet in the scheduler begin to count (one per
/// subchannel's first report since a break): the weighing loop reads the
/// weights again at each, rather than at the next update period, so that a
/// fleet leaves round robin as soon as it can.
#[derive(Debug, Default)]
pub(super) struct WeightsDue {
    at: Mutex<Vec<Instant>>,
    changed: Notify,
}

impl WeightsDue {
    /// A weight begins to count at `at` (`None`: no new weight).
    pub(super) fn count_from(&self, at: Option<Instant>) {
        let Some(at) = at else { return };
        self.at.lock().unwrap_or_else(PoisonError::into_inner).push(at);
        self.changed.notify_one();
    }

    /// Waits until `next` or the earliest due moment, whichever comes
    /// first, and forgets the due moments passed by then.
    pub(super) async fn wait(&self, next: Instant) {
        loop {
            let due = self.at.lock().unwrap_or_else(PoisonError::into_inner).iter().min().copied();
            let wake = due.map_or(next, |due| due.min(next));
            tokio::select! {
                () = tokio::time::sleep_until(wake) => break,
                () = self.changed.notified() => {}
            }
        }
        let now = Instant::now();
        self.at.lock().unwrap_or_else(PoisonError::into_inner).retain(|due| *due > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(qps: f64, application: f64, cpu: f64, eps: f64) -> OrcaLoadReport {
        OrcaLoadReport {
            rps_fractional: qps,
            application_utilization: application,
            cpu_utilization: cpu,
            eps,
            ..OrcaLoadReport::default()
        }
    }

    #[test]
    fn the_weight_is_qps_over_utilization_with_the_error_penalty() {
        assert_eq!(weight_of(&report(100.0, 0.5, 0.9, 0.0), 1.0), Some(200.0), "application utilization first");
        assert_eq!(weight_of(&report(100.0, 0.0, 0.25, 0.0), 1.0), Some(400.0), "else CPU");
        // 10 errors per 100 queries weigh as 0.1 of utilization.
        let with_errors = weight_of(&report(100.0, 0.4, 0.0, 10.0), 1.0).expect("a weight");
        assert!((with_errors - 200.0).abs() < 1e-9, "{with_errors}");
        assert_eq!(weight_of(&report(100.0, 0.4, 0.0, 10.0), 0.0), Some(250.0), "no penalty");
        assert_eq!(weight_of(&report(0.0, 0.4, 0.0, 0.0), 1.0), None, "no queries: ignored");
        assert_eq!(weight_of(&report(100.0, 0.0, 0.0, 0.0), 1.0), None, "no utilization: ignored");
        assert_eq!(weight_of(&report(f64::NAN, 0.5, 0.0, 0.0), 1.0), None);
    }

    #[test]
    fn a_weight_counts_after_the_blackout_and_until_it_expires() {
        let settings = WeightSettings {
            blackout_period: Duration::from_secs(10),
            weight_expiration_period: Duration::from_secs(60),
            ..WeightSettings::default()
        };
        let weight = Weight::default();
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        assert!(weight.get(&settings, start) == 0.0, "no report: unknown");
        weight.report(&report(100.0, 0.5, 0.0, 0.0), &settings, start);
        assert!(weight.get(&settings, at(5)) == 0.0, "in the blackout");
        weight.report(&report(100.0, 0.25, 0.0, 0.0), &settings, at(9));
        assert!((weight.get(&settings, at(10)) - 400.0).abs() < 1e-9, "after it: the last report's");
        assert!(weight.get(&settings, at(69)) == 0.0, "expired 60 s after the last report");
        weight.report(&report(100.0, 0.25, 0.0, 0.0), &settings, at(70));
        assert!(weight.get(&settings, at(75)) == 0.0, "an expired weight starts a new blackout");
        assert!(weight.get(&settings, at(80)) > 0.0);
        weight.restart();
        weight.report(&report(100.0, 0.25, 0.0, 0.0), &settings, at(81));
        assert!(weight.get(&settings, at(85)) == 0.0, "READY again: a new blackout");
    }

    #[test]
    fn verbose_shows_changes_of_more_than_a_tenth() {
        let weight = Weight::default();
        assert_eq!(weight.to_show(0.0), None);
        assert_eq!(weight.to_show(100.0), Some(100.0));
        assert_eq!(weight.to_show(105.0), None);
        assert_eq!(weight.to_show(120.0), Some(120.0));
        assert_eq!(weight.to_show(0.0), Some(0.0));
    }
}
