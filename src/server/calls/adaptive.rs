//! The adaptive limit of calls in flight (`--adaptive-concurrency`): a
//! gradient controller on the latency of admitted calls, after Envoy's
//! adaptive concurrency filter and Netflix's Gradient2, with the no-load
//! latency estimated under the load the server is serving, not when idle.
//!
//! The limit starts at `--adaptive-initial-calls` (16), above its floor
//! and far below its ceiling, as Netflix's limiters start at their initial
//! limit: a server that starts under overload admits no more of a queue
//! than that, and a load within capacity that needs more calls in flight
//! loses calls at the start, while the limit probes at the floor and then
//! doubles its way up (below).
//!
//! Every admitted call gives one sample: the time from its admission to
//! its answer's head. Samples are summed in a window of at least
//! [`WINDOW`] and [`MIN_SAMPLES`] calls; at the end of each window:
//!
//! - the window's mean latency joins the baseline's windows (the last
//!   [`BASELINE_WINDOWS`], about 10 s) if no call was shed in it, or if
//!   there is no baseline yet; the baseline is the least of their means;
//! - the gradient is `TOLERANCE * baseline / mean`, held to 0.5..1;
//! - the new limit is `limit * gradient`, plus `sqrt(limit)` of headroom
//!   when the window used at least half the limit and its latency was
//!   within the tolerance, smoothed (a fifth of the way each window) and
//!   held between the floor and the ceiling;
//! - but a window that shed calls while its latency was within
//!   [`DOUBLE_WITHIN`] of the baseline doubles the limit (as TCP's slow
//!   start): the limit held those calls back, not the server.
//!
//! Envoy's filter measures its minimum latency by cutting the limit to a
//! few calls now and then, which sheds most calls at a steady load the
//! server can carry; here the baseline is the quietest of the recent
//! windows at the load being served, so a steady load within capacity
//! keeps its gradient at 1. Windows that shed leave the baseline alone, so
//! a long overload does not raise it to its own latency.
//!
//! But a baseline learned under overload (the first windows of a server
//! that starts at full load, at its initial limit) is that overload's
//! latency, and the limit would hold it. So after [`PROBE_AFTER`] windows
//! in a row that shed (the first one, while the baseline is younger than
//! that), and at most once per baseline's span, one window runs at the
//! floor (only while calls are being shed anyway): its mean becomes the
//! baseline, and the limit grows again from the floor, doubling while the
//! latency stays within the tolerance.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::server::config::AdmissionSettings;

/// The shortest window of samples.
const WINDOW: Duration = Duration::from_millis(100);
/// The fewest samples in a window; a quiet server's window lasts longer.
const MIN_SAMPLES: u64 = 20;
/// The windows the baseline is the least of: 10 s at full windows.
const BASELINE_WINDOWS: usize = 100;
/// How far above the baseline a window's mean may be before the limit
/// comes down.
const TOLERANCE: f64 = 2.0;
/// How far above the baseline a window that shed may be for the limit to
/// double: well within the tolerance, so that a server whose latency grows
/// with its calls in flight is not pushed past the tolerance each time.
const DOUBLE_WITHIN: f64 = 1.5;
/// The share of the way to its target the limit moves each window.
const SMOOTHING: f64 = 0.2;
/// Windows in a row that shed before the baseline is measured again at
/// the floor.
const PROBE_AFTER: usize = 5;

/// One window of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Window {
    /// The mean latency of its admitted calls.
    pub(super) mean: Duration,
    /// The most calls in flight in it.
    pub(super) peak: usize,
    /// Calls the adaptive limit shed in it.
    pub(super) shed: u64,
}

/// The controller: the limit from the windows, pure arithmetic.
#[derive(Debug)]
pub(super) struct Gradient {
    settings: AdmissionSettings,
    limit: f64,
    /// The means of the recent windows that shed nothing, oldest first.
    quiet: VecDeque<Duration>,
    /// The windows in a row that shed.
    shedding: usize,
    /// The windows since the baseline was last measured at the floor.
    since_probe: usize,
    /// The window running now is at the floor, to measure the baseline.
    probing: bool,
    /// The baseline was measured at the floor once.
    probed: bool,
}

impl Gradient {
    pub(super) fn new(settings: AdmissionSettings) -> Self {
        let initial = settings.initial.clamp(settings.floor, settings.ceiling);
        Self {
            settings,
            limit: initial as f64,
            quiet: VecDeque::with_capacity(BASELINE_WINDOWS),
            shedding: 0,
            since_probe: BASELINE_WINDOWS,
            probing: false,
            probed: false,
        }
    }

    /// The limit now, in calls.
    pub(super) fn limit(&self) -> usize {
        // Between two usizes: the cast neither truncates nor wraps.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let limit = self.limit.round() as usize;
        limit
    }

    /// Whether the window running now measures the baseline at the floor.
    pub(super) fn probing(&self) -> bool {
        self.probing
    }

    /// The no-load latency estimate, once a window has ended.
    pub(super) fn baseline(&self) -> Option<Duration> {
        self.quiet.iter().min().copied()
    }

    /// A window ended: the limit moves; the new limit.
    pub(super) fn update(&mut self, window: Window) -> usize {
        self.since_probe = self.since_probe.saturating_add(1);
        if std::mem::take(&mut self.probing) {
            // The floor's latency: the baseline from now on.
            self.quiet.clear();
            self.quiet.push_back(window.mean);
        } else if window.shed == 0 || self.quiet.is_empty() {
            if self.quiet.len() == BASELINE_WINDOWS {
                self.quiet.pop_front();
            }
            self.quiet.push_back(window.mean);
        }
        let (floor, ceiling) = (self.settings.floor as f64, self.settings.ceiling as f64);
        self.shedding = if window.shed > 0 { self.shedding + 1 } else { 0 };
        // While the baseline is a few windows old, the first shedding
        // window probes at once: the baseline is whatever load the server
        // started under. Once it was measured over a spell that shed
        // nothing, a window that sheds is a burst, as a stall of the
        // machine makes at a load the server carries; only a lasting
        // overload measures it again.
        let after = if self.probed || self.quiet.len() >= PROBE_AFTER { PROBE_AFTER } else { 1 };
        if self.shedding >= after && self.since_probe >= BASELINE_WINDOWS {
            self.probed = true;
            (self.probing, self.shedding, self.since_probe) = (true, 0, 0);
            self.limit = floor;
            return self.limit();
        }
        let baseline = self.baseline().unwrap_or(window.mean).as_secs_f64();
        let mean = window.mean.as_secs_f64().max(1e-9);
        let gradient = (TOLERANCE * baseline / mean).clamp(0.5, 1.0);
        if window.shed > 0 && mean <= DOUBLE_WITHIN * baseline {
            // Calls shed while latency was close to the baseline: the limit
            // is what held them back, not the server; it doubles (as TCP's
            // slow start), and the next windows' latency says how far.
            self.limit = (self.limit * 2.0).clamp(floor, ceiling);
            return self.limit();
        }
        let used = window.peak as f64 * 2.0 >= self.limit && gradient >= 1.0;
        let headroom = if used { self.limit.sqrt() } else { 0.0 };
        let target = self.limit * gradient + headroom;
        self.limit = (self.limit + (target - self.limit) * SMOOTHING).clamp(floor, ceiling);
        self.limit()
    }
}

/// The adaptive limit shared by every call: the samples of the window
/// being filled in atomics, the controller behind a lock taken once a
/// window.
#[derive(Debug)]
pub(super) struct Adaptive {
    limit: AtomicUsize,
    /// The window's samples: their count and their sum, in nanoseconds.
    count: AtomicU64,
    sum_nanos: AtomicU64,
    peak: AtomicUsize,
    shed_in_window: AtomicU64,
    /// Calls shed at the adaptive limit since the start.
    shed: AtomicU64,
    /// When the window measuring the baseline began, in nanoseconds since
    /// `epoch`; 0: none is.
    probe_began: AtomicU64,
    epoch: Instant,
    controller: Mutex<(Gradient, Instant)>,
}

impl Adaptive {
    pub(super) fn new(settings: AdmissionSettings) -> Self {
        let gradient = Gradient::new(settings);
        Self {
            limit: AtomicUsize::new(gradient.limit()),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            peak: AtomicUsize::new(0),
            shed_in_window: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            probe_began: AtomicU64::new(0),
            epoch: Instant::now(),
            controller: Mutex::new((gradient, Instant::now())),
        }
    }

    /// The limit now.
    pub(super) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Calls shed at the adaptive limit since the start.
    pub(super) fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Whether a call that finds `in_flight` calls before it is admitted;
    /// a refused one is counted as shed.
    pub(super) fn admits(&self, in_flight: usize) -> bool {
        if in_flight < self.limit() {
            self.peak.fetch_max(in_flight + 1, Ordering::Relaxed);
            return true;
        }
        self.shed.fetch_add(1, Ordering::Relaxed);
        self.shed_in_window.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// An admitted call's answer was ready after `latency`. While the
    /// baseline is measured, a call admitted before that began is not
    /// counted: its latency is the overload's.
    pub(super) fn sample(&self, latency: Duration) {
        let probe_began = self.probe_began.load(Ordering::Relaxed);
        if probe_began != 0 {
            let admitted = Instant::now().checked_sub(latency).unwrap_or(self.epoch);
            if admitted < self.epoch + Duration::from_nanos(probe_began) {
                return;
            }
        }
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if count < MIN_SAMPLES {
            return;
        }
        // One caller ends the window; the others go on.
        let Ok(mut guard) = self.controller.try_lock() else { return };
        let (gradient, started) = &mut *guard;
        let now = Instant::now();
        if now.duration_since(*started) < WINDOW {
            return;
        }
        *started = now;
        let count = self.count.swap(0, Ordering::Relaxed).max(1);
        let sum = self.sum_nanos.swap(0, Ordering::Relaxed);
        let peak = self.peak.swap(0, Ordering::Relaxed);
        let shed = self.shed_in_window.swap(0, Ordering::Relaxed);
        let window = Window { mean: Duration::from_nanos(sum / count), peak, shed };
        self.limit.store(gradient.update(window), Ordering::Relaxed);
        let began = if gradient.probing() {
            u64::try_from(now.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX).max(1)
        } else {
            0
        };
        self.probe_began.store(began, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
