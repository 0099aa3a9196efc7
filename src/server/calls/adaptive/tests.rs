//! The controller's arithmetic, window by window, and the shared limit.

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

/// Runs `n` windows of an overload of a server whose calls share its
/// CPU: each window sheds, its mean latency `micros` per call in flight
/// (the whole limit); the limit after each.
fn overload(gradient: &mut Gradient, n: usize, micros: u64) -> Vec<usize> {
    (0..n)
        .map(|_| {
            let limit = gradient.limit();
            gradient.update(window(micros * limit as u64, limit, 1))
        })
        .collect()
}

#[test]
fn the_limit_comes_down_when_latency_rises_and_back_up_when_it_falls() {
    let mut gradient = Gradient::new(SETTINGS);
    run(&mut gradient, 100, 1000, false);
    let high = gradient.limit();
    // An overload: after PROBE_AFTER windows that shed, one measures the
    // baseline at the floor (100 us a call there), and the limit settles
    // where the latency is within twice that.
    let limits = overload(&mut gradient, 40, 100);
    assert!(limits[..PROBE_AFTER - 1].iter().all(|&limit| limit > SETTINGS.floor), "{limits:?}");
    assert_eq!(limits[PROBE_AFTER - 1], SETTINGS.floor, "the probe at the floor: {limits:?}");
    assert_eq!(gradient.baseline(), Some(Duration::from_micros(1000)), "ten calls at 100 us");
    let low = gradient.limit();
    assert!(low < high / 4 && low <= 3 * SETTINGS.floor, "{high} -> {low}: {limits:?}");
    assert!(limits.iter().all(|&limit| limit >= SETTINGS.floor));
    // Back to the baseline: it grows again.
    let rising = run(&mut gradient, 30, 1000, false);
    assert!(rising.windows(2).all(|w| w[1] >= w[0]), "{rising:?}");
    assert!(gradient.limit() > low * 2, "{low} -> {}", gradient.limit());
}

#[test]
fn a_server_that_starts_under_overload_does_not_keep_its_first_latency_as_the_baseline() {
    let settings = AdmissionSettings { floor: 2, ceiling: 1000, initial: 256 };
    let mut gradient = Gradient::new(settings);
    // The first window admitted 256 calls and shed none: 256 ms each.
    gradient.update(window(256_000, 256, 0));
    assert_eq!(gradient.baseline(), Some(Duration::from_millis(256)));
    // Then every window sheds, at 1 ms of CPU a call.
    let limits = overload(&mut gradient, 50, 1000);
    assert_eq!(gradient.baseline(), Some(Duration::from_millis(2)), "measured at the floor");
    let settled = &limits[20..];
    assert!(settled.iter().all(|&limit| (2..=8).contains(&limit)), "{limits:?}");
}

#[test]
fn a_lasting_overload_measures_the_baseline_again_once_per_baseline_span() {
    let mut gradient = Gradient::new(SETTINGS);
    run(&mut gradient, 10, 1000, false);
    let limits = overload(&mut gradient, 3 * BASELINE_WINDOWS, 100);
    let probes: Vec<usize> = (0..limits.len()).filter(|&i| gradient_probed(&limits, i)).collect();
    assert_eq!(probes.len(), 3, "{probes:?}");
    assert!(probes.windows(2).all(|w| w[1] - w[0] >= BASELINE_WINDOWS), "{probes:?}");
}

/// Whether window `i` of an overload run set the limit to the floor
/// from above it (a probe).
fn gradient_probed(limits: &[usize], i: usize) -> bool {
    limits[i] == SETTINGS.floor && (i == 0 || limits[i - 1] > SETTINGS.floor)
}

#[test]
fn shedding_at_good_latency_doubles_the_limit() {
    let mut gradient = Gradient::new(SETTINGS);
    run(&mut gradient, 2, 1000, false);
    // Two windows into the server's life, the first window that sheds
    // probes: the limit at the floor.
    assert_eq!(gradient.update(window(1500, gradient.limit(), 7)), SETTINGS.floor);
    // The probe measured 1 ms: calls shed at up to twice that double it.
    let before = gradient.update(window(1000, SETTINGS.floor, 7));
    assert_eq!(before, 2 * SETTINGS.floor);
    let doubled = gradient.update(window(1500, before, 7));
    assert_eq!(doubled, 2 * before);
    // Shedding at high latency is the server's limit: no doubling.
    assert!(gradient.update(window(9000, doubled, 7)) < doubled);
}

#[test]
fn a_burst_after_a_calm_spell_sheds_without_measuring_the_baseline_again() {
    let settings = AdmissionSettings { floor: 2, ceiling: 1000, initial: 16 };
    let mut gradient = Gradient::new(settings);
    // A load the server carries: 3 calls in flight at most, 1 ms each.
    for _ in 0..50 {
        gradient.update(window(1000, 3, 0));
    }
    assert_eq!(gradient.limit(), 16);
    // The machine stalls: calls pile up past the limit, slow, and a few
    // are shed. The limit comes down some, not to the floor.
    let burst = gradient.update(window(5000, 16, 5));
    assert!((settings.floor + 1..16).contains(&burst), "{burst}");
    for _ in 0..3 {
        assert!(gradient.update(window(1000, 3, 0)) >= burst);
    }
    // A lasting overload does measure it again, after PROBE_AFTER windows.
    let limits: Vec<usize> = (0..PROBE_AFTER).map(|_| gradient.update(window(5000, burst, 5))).collect();
    assert!(limits[..PROBE_AFTER - 1].iter().all(|&limit| limit > settings.floor), "{limits:?}");
    assert_eq!(limits[PROBE_AFTER - 1], settings.floor, "{limits:?}");
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
    // PROBE_AFTER windows that shed: the next one probes at the floor,
    // and its mean is the baseline; the windows that shed after it do not
    // move it.
    run(&mut gradient, PROBE_AFTER, 9000, true);
    gradient.update(window(2500, 10, 1));
    assert_eq!(gradient.baseline(), Some(Duration::from_micros(2500)));
    run(&mut gradient, BASELINE_WINDOWS - 2, 9000, true);
    assert_eq!(gradient.baseline(), Some(Duration::from_micros(2500)));
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
}
