//! What a soak saw: the outcomes the workers count as they go ([`Tally`]),
//! and the report made of them and of the server's samples ([`SoakReport`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::Mutex;

use super::process::Sample;
use super::scenario::{Outcome, Scenario};
use crate::client;

/// What a soak saw.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    /// Seconds the traffic ran.
    pub seconds: f64,
    /// Calls started, and calls that ended (with any outcome).
    pub started: u64,
    /// Calls whose end was recorded.
    pub ended: u64,
    /// Calls that ended with a code their scenario does not allow.
    pub unexpected: u64,
    /// Calls that did not end within 30 s.
    pub lost: u64,
    /// Per scenario, the count of each outcome.
    pub outcomes: BTreeMap<String, BTreeMap<String, u64>>,
    /// The server's resident memory, KiB, sampled each second.
    pub rss_kib: Option<Series>,
    /// The server's open file descriptors, sampled each second.
    pub fds: Option<Series>,
    /// The workers' clients' counts: attempts, hedges, ejections, state
    /// changes.
    pub client: client::CallStats,
}

impl SoakReport {
    /// Whether the run met its assertions: every call ended, each with a
    /// code its scenario allows.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.unexpected == 0 && self.lost == 0 && self.started == self.ended
    }
}

/// A sampled quantity: where it started, its peak, where it ended, and its
/// least-squares slope per minute over the second half of the run.
#[derive(Debug, Serialize)]
pub struct Series {
    /// Samples taken.
    pub samples: usize,
    /// The first sample.
    pub first: u64,
    /// The largest sample.
    pub peak: u64,
    /// The last sample.
    pub last: u64,
    /// Change per minute over the last half (0 for a plateau).
    pub slope_per_minute: f64,
}

impl Series {
    fn of(samples: &[(f64, u64)]) -> Option<Self> {
        let (&(_, first), &(_, last)) = (samples.first()?, samples.last()?);
        let peak = samples.iter().map(|&(_, v)| v).max().unwrap_or(0);
        let half = &samples[samples.len() / 2..];
        Some(Self { samples: samples.len(), first, peak, last, slope_per_minute: slope(half) * 60.0 })
    }
}

/// The least-squares slope of `points` (per second), 0 for fewer than two.
fn slope(points: &[(f64, u64)]) -> f64 {
    #[allow(clippy::cast_precision_loss)] // counts of samples, far below 2^52
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)] // KiB and descriptors, far below 2^52
    let ys = || points.iter().map(|&(x, y)| (x, y as f64));
    let mean_x = ys().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = ys().map(|(_, y)| y).sum::<f64>() / n;
    let covariance: f64 = ys().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let variance: f64 = ys().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if variance == 0.0 { 0.0 } else { covariance / variance }
}

/// The outcomes so far, shared by the workers.
#[derive(Debug, Default)]
pub(super) struct Tally {
    started: AtomicU64,
    outcomes: Mutex<HashMap<(Scenario, Outcome), u64>>,
}

impl Tally {
    pub(super) fn start(&self, calls: u64) {
        self.started.fetch_add(calls, Ordering::Relaxed);
    }

    pub(super) async fn end(&self, scenario: Scenario, outcome: Outcome) {
        *self.outcomes.lock().await.entry((scenario, outcome)).or_default() += 1;
    }
}

pub(super) async fn report(tally: &Tally, seconds: f64, samples: &[Sample], client: client::CallStats) -> SoakReport {
    let counts = tally.outcomes.lock().await;
    let mut outcomes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut ended, mut unexpected, mut lost) = (0, 0, 0);
    for (&(scenario, outcome), &count) in counts.iter() {
        ended += count;
        if !scenario.allows(outcome) {
            unexpected += count;
        }
        if outcome == Outcome::Lost {
            lost += count;
        }
        outcomes.entry(scenario.name().to_owned()).or_default().insert(outcome.name().to_owned(), count);
    }
    let rss: Vec<(f64, u64)> = samples.iter().map(|s| (s.at, s.rss_kib)).collect();
    let fds: Vec<(f64, u64)> = samples.iter().map(|s| (s.at, s.fds)).collect();
    SoakReport {
        seconds,
        started: tally.started.load(Ordering::Relaxed),
        ended,
        unexpected,
        lost,
        outcomes,
        rss_kib: Series::of(&rss),
        fds: Series::of(&fds),
        client,
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[allow(clippy::cast_precision_loss)] // a rate for people
        let rate = self.ended as f64 / self.seconds.max(f64::EPSILON);
        writeln!(f, "Soak: {:.1} s, {} calls ({rate:.1}/s)", self.seconds, self.ended)?;
        writeln!(
            f,
            "  started {}, ended {}, unexpected {}, lost {}",
            self.started, self.ended, self.unexpected, self.lost
        )?;
        for (scenario, outcomes) in &self.outcomes {
            let counts: Vec<String> = outcomes.iter().map(|(name, n)| format!("{name} {n}")).collect();
            writeln!(f, "  {scenario:<10} {}", counts.join(", "))?;
        }
        if let Some(rss) = &self.rss_kib {
            #[allow(clippy::cast_precision_loss)] // KiB for people
            let mib = |kib: u64| kib as f64 / 1024.0;
            writeln!(
                f,
                "Server RSS: first {:.1} MiB, peak {:.1} MiB, last {:.1} MiB; over the last half {:+.3} MiB/min ({} samples)",
                mib(rss.first),
                mib(rss.peak),
                mib(rss.last),
                rss.slope_per_minute / 1024.0,
                rss.samples
            )?;
        }
        if let Some(fds) = &self.fds {
            writeln!(
                f,
                "Server fds: first {}, peak {}, last {}; over the last half {:+.2}/min",
                fds.first, fds.peak, fds.last, fds.slope_per_minute
            )?;
        }
        writeln!(f, "Client: {}", self.client)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_is_zero_on_a_plateau_and_exact_on_a_line() {
        assert!(slope(&[(0.0, 5), (1.0, 5), (2.0, 5)]).abs() < 1e-9);
        assert!((slope(&[(0.0, 10), (1.0, 12), (2.0, 14), (3.0, 16)]) - 2.0).abs() < 1e-9);
        assert!(slope(&[(0.0, 10)]).abs() < 1e-9);
    }

    #[test]
    fn the_series_reports_the_peak_and_the_last_half() {
        let samples = [(0.0, 100), (1.0, 300), (2.0, 200), (3.0, 200), (4.0, 200)];
        let series = Series::of(&samples).expect("samples");
        assert_eq!((series.first, series.peak, series.last, series.samples), (100, 300, 200, 5));
        assert!(series.slope_per_minute.abs() < 1e-9, "a plateau over the last half");
    }
}
