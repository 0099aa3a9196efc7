//! The adaptive limit of calls in flight (`--adaptive-concurrency`): a
//! gradient controller on the latency of admitted calls, after Envoy's
//! adaptive concurrency filter and Netflix's Gradient2, with the no-load
//! latency estimated under the load the server is serving, not when idle.
//!
//! The limit starts at `--adaptive-initial-calls` (one connection's streams
//! by default), not at its floor: as Netflix's limiters start at their
//! initial limit, so that a load within capacity is not shed while the
//! first windows learn it; an overload brings it down within a few windows.
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
//!   when the window used at least half the limit, smoothed (a fifth of
//!   the way each window) and held between the floor and the ceiling;
//! - but a window that shed calls while its latency was within the
//!   tolerance doubles the limit (as TCP's slow start): the limit held
//!   those calls back, not the server.
//!
//! Envoy's filter measures its minimum latency by cutting the limit to a
//! few calls now and then, which sheds most calls at a steady load the
//! server can carry; here the baseline is the quietest of the recent
//! windows at the load being served, so a steady load within capacity
//! keeps its gradient at 1. Windows that shed leave the baseline alone, so
//! a long overload does not raise it to its own latency.

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
/// The share of the way to its target the limit moves each window.
const SMOOTHING: f64 = 0.2;

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
}

impl Gradient {
    pub(super) fn new(settings: AdmissionSettings) -> Self {
        let initial = settings.initial.clamp(settings.floor, settings.ceiling);
        Self { settings, limit: initial as f64, quiet: VecDeque::with_capacity(BASELINE_WINDOWS) }
    }

    /// The limit now, in calls.
    pub(super) fn limit(&self) -> usize {
        // Between two usizes: the cast neither truncates nor wraps.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let limit = self.limit.round() as usize;
        limit
    }

    /// The no-load latency estimate, once a window has ended.
    pub(super) fn baseline(&self) -> Option<Duration> {
        self.quiet.iter().min().copied()
    }

    /// A window ended: the limit moves; the new limit.
    pub(super) fn update(&mut self, window: Window) -> usize {
        if window.shed == 0 || self.quiet.is_empty() {
            if self.quiet.len() == BASELINE_WINDOWS {
                self.quiet.pop_front();
            }
            self.quiet.push_back(window.mean);
        }
        let baseline = self.baseline().unwrap_or(window.mean).as_secs_f64();
        let mean = window.mean.as_secs_f64().max(1e-9);
        let gradient = (TOLERANCE * baseline / mean).clamp(0.5, 1.0);
        let (floor, ceiling) = (self.settings.floor as f64, self.settings.ceiling as f64);
        if window.shed > 0 && gradient >= 1.0 {
            // Calls shed while latency was within the tolerance: the limit
            // is what held them back, not the server; it doubles (as TCP's
            // slow start), and the next windows' latency says how far.
            self.limit = (self.limit * 2.0).clamp(floor, ceiling);
            return self.limit();
        }
        let used = window.peak as f64 * 2.0 >= self.limit;
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

    /// An admitted call's answer was ready after `latency`.
    pub(super) fn sample(&self, latency: Duration) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: AdmissionSettings = AdmissionSettings { floor: 10, ceiling: 200, initial: 10 };

    fn window(micros: u64, peak: usize, shed: u64) -> Window {
        Window { mean: Duration::from_micros(micros), peak, shed }
    }

    /// Runs `n` windows of `micros` mean latency, each using the whole
    /// limit (and shedding when `shed`); the limit after each.
    fn run(gradient: &mut Gradient, n: usize, micros: u64, shed: bool) -> Vec<usize> {
        (0..n).map(|_| gradient.update(window(micros, gradient.limit(), u64::from(shed)))).collect()
    }

    #[test]
    fn the_limit_grows_while_latency_holds_and_stops_at_the_ceiling() {
        let mut gradient = Gradient::new(SETTINGS);
        assert_eq!(gradient.limit(), 10, "starts at the floor");
        let limits = run(&mut gradient, 200, 1000, false);
        assert!(limits.windows(2).all(|w| w[1] >= w[0]), "{limits:?}");
        assert_eq!(gradient.limit(), 200, "held at the ceiling");
    }

    #[test]
    fn the_limit_comes_down_when_latency_rises_and_back_up_when_it_falls() {
        let mut gradient = Gradient::new(SETTINGS);
        run(&mut gradient, 100, 1000, false);
        let high = gradient.limit();
        // Five times the baseline, shedding: the limit falls each window,
        // to the floor at worst, and the baseline stays where it was.
        let falling = run(&mut gradient, 30, 5000, true);
        assert!(falling.windows(2).all(|w| w[1] <= w[0]), "{falling:?}");
        let low = gradient.limit();
        assert!(low < high / 2, "{high} -> {low}");
        assert!(low >= SETTINGS.floor);
        assert_eq!(gradient.baseline(), Some(Duration::from_micros(1000)));
        // Back to the baseline: it grows again.
        let rising = run(&mut gradient, 30, 1000, false);
        assert!(rising.windows(2).all(|w| w[1] >= w[0]), "{rising:?}");
        assert!(gradient.limit() > low * 2, "{low} -> {}", gradient.limit());
    }

    #[test]
    fn shedding_at_good_latency_doubles_the_limit() {
        let mut gradient = Gradient::new(SETTINGS);
        run(&mut gradient, 5, 1000, false);
        let before = gradient.limit();
        let doubled = gradient.update(window(1500, before, 7));
        assert!(doubled.abs_diff(before * 2) <= 1, "{before} -> {doubled}");
        // Shedding at high latency is the server's limit: no doubling.
        assert!(gradient.update(window(9000, doubled, 7)) < doubled);
    }

    #[test]
    fn latency_within_the_tolerance_leaves_the_limit_alone() {
        let mut gradient = Gradient::new(SETTINGS);
        run(&mut gradient, 20, 1000, false);
        let before = gradient.limit();
        // A steady load within capacity: means between one and two times
        // the quietest window, the limit not used up: it stays.
        for micros in [1900, 1200, 1500, 1999, 1100] {
            assert_eq!(gradient.update(window(micros, before / 4, 0)), before);
        }
    }

    #[test]
    fn the_baseline_is_the_quietest_recent_window_not_an_idle_one() {
        let mut gradient = Gradient::new(SETTINGS);
        gradient.update(window(3000, 1, 0));
        gradient.update(window(800, 1, 0));
        gradient.update(window(4000, 1, 0));
        assert_eq!(gradient.baseline(), Some(Duration::from_micros(800)));
        // Forgotten after BASELINE_WINDOWS more.
        run(&mut gradient, BASELINE_WINDOWS, 2000, false);
        assert_eq!(gradient.baseline(), Some(Duration::from_micros(2000)));
        // Windows that shed do not move it.
        run(&mut gradient, BASELINE_WINDOWS, 9000, true);
        assert_eq!(gradient.baseline(), Some(Duration::from_micros(2000)));
    }

    #[test]
    fn calls_past_the_limit_are_shed_and_counted() {
        let adaptive = Adaptive::new(SETTINGS);
        assert!(adaptive.admits(9));
        assert!(!adaptive.admits(10));
        assert!(!adaptive.admits(50));
        assert_eq!(adaptive.shed(), 2);
        assert_eq!(adaptive.limit(), 10);
    }

    #[test]
    fn the_limit_starts_at_its_initial_value_not_at_the_floor() {
        let settings = AdmissionSettings { floor: 10, ceiling: 1000, initial: 256 };
        // A load within capacity that keeps 200 calls in flight: none is
        // shed before the first window has measured it.
        let adaptive = Adaptive::new(settings);
        assert!((0..256).all(|in_flight| adaptive.admits(in_flight)));
        assert!(!adaptive.admits(256));
        assert_eq!(adaptive.shed(), 1);
        // Its windows, steady at the baseline, leave room above it.
        let mut gradient = Gradient::new(settings);
        assert!((0..50).all(|_| gradient.update(window(1000, 200, 0)) >= 256));
        // An overload brings it down from there.
        let falling = run(&mut gradient, 30, 5000, true);
        assert!(falling.last().is_some_and(|&limit| limit < 100), "{falling:?}");
    }
}
