//! ORCA load reports (Open Request Cost Aggregation): the server says how
//! loaded it is, per call in the `endpoint-load-metrics-bin` trailer
//! (gRFC A51) and out of band on `xds.service.orca.v3.OpenRcaService`'s
//! stream (gRFC A64), as `xds.data.orca.v3.OrcaLoadReport`s, for a
//! load balancer that weighs its servers by them. Below every layer: the
//! per-call layer asks it for each call's trailer and counts each call's
//! end; it imports nothing of the server but the generated messages.
//!
//! Files:
//! - `mod.rs`: [`Orca`], the server's reporter: its settings, the server's
//!   figures (measured, or set by the program), each call's trailer, the
//!   calls and errors counted.
//! - `call_load.rs`: [`CallLoad`], one call's own figures, which its
//!   handler adds to (the request's extensions carry it).
//! - `sampler.rs`: the figures measured: CPU and memory of what the process
//!   may use, its workers' busy time, calls and errors per second, over a
//!   window, by a task (never per call).
//! - `service.rs`: the out-of-band stream (`OpenRcaService`).
//!
//! The crates checked: none on crates.io serves ORCA for tonic (tonic
//! itself has no load reporting); the messages are generated here from
//! `proto/xds/`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use prost::Message;
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tonic::Code;

mod call_load;
mod sampler;
mod service;

pub use self::call_load::CallLoad;
use self::sampler::Sampler;
pub(in crate::server) use self::service::service;
use crate::pb::xds::data::orca::v3::OrcaLoadReport;

/// How long after the first call to end in a quiet window the figures are
/// measured: long enough for the calls arriving with it to be counted, short
/// enough that a client weighing a replica that was idle has figures within
/// its first calls rather than the next sample.
const EARLY: Duration = Duration::from_millis(20);

/// The trailer that carries a call's load report (gRFC A51): the encoded
/// `OrcaLoadReport`, in base64 as every `-bin` metadata value.
pub const ORCA_TRAILER: HeaderName = HeaderName::from_static("endpoint-load-metrics-bin");

/// Where the server's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figures {
    /// Measured by the server (`sampler.rs`): CPU, memory, application
    /// utilization, calls and errors per second; each call's report
    /// carries them beside the call's own figures.
    Measured,
    /// Set by the program ([`Orca::update`]), as gRPC's interop server sets
    /// them from its requests; each call's report carries only the call's
    /// own figures.
    Set,
    /// Set by the program ([`Orca::update`]) and carried in every call's
    /// report, as measured ones are: for a program that measures its load
    /// its own way, and for tests that need a server to report given
    /// figures.
    Given,
}

/// How the server reports its load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrcaSettings {
    /// Where the server's figures come from.
    pub figures: Figures,
    /// The shortest interval the out-of-band stream reports at: a client
    /// asking for less (or for nothing) gets this.
    pub min_interval: Duration,
}

/// The server's load reporter, shared by every call (a clone shares it).
#[derive(Debug, Clone)]
pub struct Orca {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    settings: OrcaSettings,
    /// Calls ended, and those of them that failed, since the start.
    counts: Counts,
    /// The server's figures as they stand, and their encodings.
    current: RwLock<Current>,
    /// Whether the sampler was started.
    sampling: AtomicBool,
    /// Whether the figures show no calls per second (none in the window):
    /// a client's weighted round robin ignores such a report, so the first
    /// call to end then asks the sampler for figures at once (`early`).
    quiet: AtomicBool,
    /// Shared with the sampler's task, which holds no strong reference to
    /// the rest (it ends when the reporter is dropped).
    early: Arc<Notify>,
}

/// Calls counted as they end: two relaxed atomic additions per call.
#[derive(Debug, Default)]
struct Counts {
    calls: AtomicU64,
    errors: AtomicU64,
}

impl Counts {
    /// Calls ended and failed calls since the start.
    fn read(&self) -> (u64, u64) {
        (self.calls.load(Ordering::Relaxed), self.errors.load(Ordering::Relaxed))
    }
}

/// The server's figures, encoded once when they change so that a call's
/// trailer costs a clone of shared bytes.
#[derive(Debug, Default)]
struct Current {
    report: OrcaLoadReport,
    /// `report` encoded: a call's own report is appended to it (protobuf
    /// merges concatenated messages: the last value of a field wins, map
    /// entries add up by key).
    encoded: Bytes,
    /// The trailer of a call that recorded nothing of its own; `None` when
    /// there is nothing to report.
    trailer: Option<HeaderValue>,
}

impl Orca {
    /// A reporter with `settings`; the server it is given to measures its
    /// figures when they are [`Figures::Measured`].
    #[must_use]
    pub fn new(settings: OrcaSettings) -> Self {
        let shared = Arc::new(Shared {
            settings,
            counts: Counts::default(),
            current: RwLock::default(),
            sampling: AtomicBool::new(false),
            quiet: AtomicBool::new(true),
            early: Arc::new(Notify::new()),
        });
        Self { shared }
    }

    /// Starts measuring, once, when the figures are measured: a task of the
    /// current runtime that ends when the last clone of the reporter is
    /// dropped.
    pub(in crate::server) fn start_sampling(&self) {
        let measured = self.shared.settings.figures == Figures::Measured;
        if measured && !self.shared.sampling.swap(true, Ordering::Relaxed) {
            // The first calls have the memory figure; the rates need a
            // second sample.
            self.shared.update(|report| report.mem_utilization = sampler::memory_utilization());
            tokio::spawn(measure(Arc::downgrade(&self.shared), Arc::clone(&self.shared.early)));
        }
    }

    /// The settings it reports with.
    #[must_use]
    pub fn settings(&self) -> OrcaSettings {
        self.shared.settings
    }

    /// The server's figures as they stand.
    #[must_use]
    pub fn report(&self) -> OrcaLoadReport {
        self.shared.read().report.clone()
    }

    /// Changes the server's figures with `change`; the out-of-band stream
    /// sends them at its next report. With [`Figures::Measured`] the sampler
    /// overwrites the fields it measures at its next sample, and keeps the
    /// rest (named metrics, utilizations by name).
    pub fn update(&self, change: impl FnOnce(&mut OrcaLoadReport)) {
        self.shared.update(change);
    }

    /// A new call's own figures, empty, for its handler to add to.
    pub(in crate::server) fn call_started(&self) -> CallLoad {
        CallLoad::default()
    }

    /// The `endpoint-load-metrics-bin` value of a call whose own figures are
    /// `call`: the server's (when measured) with the call's over them;
    /// `None` when there is nothing to report.
    pub(in crate::server) fn trailer(&self, call: &CallLoad) -> Option<HeaderValue> {
        let with_server = self.shared.settings.figures != Figures::Set;
        let Some(own) = call.encoded() else {
            return if with_server { self.shared.read().trailer.clone() } else { None };
        };
        if !with_server {
            return encode_trailer(&own);
        }
        let current = self.shared.read();
        let mut merged = Vec::with_capacity(current.encoded.len() + own.len());
        merged.extend_from_slice(&current.encoded);
        merged.extend_from_slice(&own);
        drop(current);
        encode_trailer(&merged)
    }

    /// Counts a call that ended with `code` (see `docs/server.md`, "Load
    /// reports", for what counts as an error).
    pub(in crate::server) fn count(&self, code: Code) {
        let counts = &self.shared.counts;
        counts.calls.fetch_add(1, Ordering::Relaxed);
        if self.shared.quiet.load(Ordering::Relaxed) {
            self.shared.early.notify_one();
        }
        if is_error(code) {
            counts.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut OrcaLoadReport)) {
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut current.report);
        let encoded = current.report.encode_to_vec();
        current.trailer = encode_trailer(&encoded);
        current.encoded = encoded.into();
    }
}

/// Measures the server's figures every [`sampler::SAMPLE_EVERY`] until the
/// reporter is dropped, and [`EARLY`] after a call ends while they show no
/// calls per second.
async fn measure(shared: Weak<Shared>, early: Arc<Notify>) {
    let mut ticks = tokio::time::interval(sampler::SAMPLE_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sampler = Sampler::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = early.notified() => tokio::time::sleep(EARLY).await,
        }
        let Some(shared) = shared.upgrade() else { return };
        let (calls, errors) = shared.counts.read();
        shared.update(sampler.sample(calls, errors));
        let quiet = shared.read().report.rps_fractional <= 0.0;
        shared.quiet.store(quiet, Ordering::Relaxed);
    }
}

/// Whether a call that ended with `code` counts as an error per second:
/// any status but OK, except CANCELLED, which the client chose.
fn is_error(code: Code) -> bool {
    !matches!(code, Code::Ok | Code::Cancelled)
}

/// An encoded report as a `-bin` trailer value: base64 without padding, as
/// tonic writes binary metadata; `None` for an empty report.
fn encode_trailer(encoded: &[u8]) -> Option<HeaderValue> {
    if encoded.is_empty() {
        return None;
    }
    let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(encoded);
    // Base64's alphabet is always a valid header value.
    HeaderValue::from_maybe_shared(Bytes::from(text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(value: &HeaderValue) -> OrcaLoadReport {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(value.as_bytes()).expect("base64");
        OrcaLoadReport::decode(bytes.as_slice()).expect("a report")
    }

    fn set() -> Orca {
        Orca::new(OrcaSettings { figures: Figures::Set, min_interval: Duration::from_secs(1) })
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_call_after_a_quiet_window_brings_figures_early() {
        let orca = Orca::new(OrcaSettings { figures: Figures::Measured, min_interval: Duration::from_secs(1) });
        orca.start_sampling();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let rps = || orca.shared.read().report.rps_fractional;
        assert!(rps() <= 0.0, "no call yet: {}", rps());
        orca.count(Code::Ok);
        // Well before the next sample (250 ms from the start).
        tokio::time::sleep(EARLY + Duration::from_millis(10)).await;
        assert!(rps() > 0.0, "figures {EARLY:?} after the first call, not at the next sample");
        assert!(!orca.shared.quiet.load(Ordering::Relaxed));
    }

    #[test]
    fn a_call_that_records_nothing_has_no_trailer_when_the_figures_are_set() {
        let orca = set();
        orca.update(|report| report.cpu_utilization = 0.5);
        assert_eq!(orca.trailer(&orca.call_started()), None);
    }

    #[test]
    fn a_call_reports_its_own_figures_only_when_the_figures_are_set() {
        let orca = set();
        orca.update(|report| report.cpu_utilization = 0.5);
        let call = orca.call_started();
        call.add_cost("lines", 3.0);
        call.add_cost("lines", 4.0);
        let report = decode(&orca.trailer(&call).expect("a trailer"));
        assert_eq!(report.request_cost.get("lines"), Some(&7.0));
        assert!(report.cpu_utilization.abs() < f64::EPSILON, "{report:?}");
    }

    #[test]
    fn a_measured_call_report_merges_the_server_figures_under_the_call_s_own() {
        let orca = Orca::new(OrcaSettings { figures: Figures::Measured, min_interval: Duration::from_secs(1) });
        orca.update(|report| {
            report.cpu_utilization = 0.25;
            report.named_metrics.insert("queue".into(), 2.0);
            report.named_metrics.insert("shared".into(), 1.0);
        });
        let call = orca.call_started();
        call.update(|report| {
            report.named_metrics.insert("shared".into(), 9.0);
            report.application_utilization = 0.75;
        });
        let report = decode(&orca.trailer(&call).expect("a trailer"));
        assert!((report.cpu_utilization - 0.25).abs() < f64::EPSILON, "{report:?}");
        assert!((report.application_utilization - 0.75).abs() < f64::EPSILON, "{report:?}");
        assert_eq!(report.named_metrics.get("queue"), Some(&2.0));
        assert_eq!(report.named_metrics.get("shared"), Some(&9.0));
        let quiet = decode(&orca.trailer(&orca.call_started()).expect("the server's figures"));
        assert_eq!(quiet.named_metrics.get("shared"), Some(&1.0));
    }

    #[test]
    fn errors_are_every_status_but_ok_and_cancelled() {
        let orca = set();
        for code in [Code::Ok, Code::Cancelled, Code::Unavailable, Code::InvalidArgument] {
            orca.count(code);
        }
        assert_eq!(orca.shared.counts.read(), (4, 2));
    }
}
