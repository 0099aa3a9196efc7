//! Weighted round robin in the channel (gRFC A58): the load reports taken
//! into each subchannel's weight (`weights.rs`), from each call's
//! `endpoint-load-metrics-bin` trailer (read by `call/attempts.rs` and, for
//! a stream read to its end, `responses.rs`) or, when asked, from each server's
//! out-of-band stream (`OpenRcaService/StreamCoreMetrics`); the READY
//! subchannels' weights read into an earliest-deadline-first scheduler
//! (`edf.rs`) every update period and whenever a subchannel comes or goes;
//! picks from it; `-v`'s weight events.
//!
//! The scheduler holds the subchannels READY when it was made; a pick
//! skips one that is no longer READY, or that the call already went to, and
//! falls back to round robin when it finds none (or while fewer than two
//! weights are known). Health checking, outlier detection and hedging act
//! on the subchannels' states as under round robin: an unhealthy or
//! ejected subchannel is not READY, so it is skipped, and a hedge takes the
//! next READY subchannel the call has not been to.

use std::sync::{Arc, Weak};

use prost::Message;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;

use super::balancer::Balancer;
use super::connectivity::ConnectivityState;
use super::events::Event;
use super::picker::LoadBalancing;
use super::subchannel::Subchannel;
use super::weights::WeightSettings;
use crate::client::backoff::Backoff;
use crate::pb::xds::data::orca::v3::OrcaLoadReport;
use crate::pb::xds::service::orca::v3::OrcaLoadReportRequest;
use crate::pb::xds::service::orca::v3::open_rca_service_client::OpenRcaServiceClient;

/// The trailer that carries a call's load report (gRFC A51).
const LOAD_REPORT: &str = "endpoint-load-metrics-bin";

impl Balancer {
    /// Under weighted round robin, the scheduler's READY subchannel not in
    /// `tried`; `None`: the round robin fallback decides.
    pub(super) fn pick_weighted(&self, tried: &[Arc<Subchannel>]) -> Option<Arc<Subchannel>> {
        if self.policy() != LoadBalancing::WeightedRoundRobin {
            return None;
        }
        self.schedule.pick(|sub| sub.state() == ConnectivityState::Ready && !tried.iter().any(|t| Arc::ptr_eq(t, sub)))
    }

    /// An attempt on `sub` ended with `metadata` (an answer's, with its
    /// trailers, or a status's): its load report, under weighted round robin
    /// without the out-of-band stream.
    pub(in crate::client) fn load_reported(&self, sub: &Subchannel, metadata: &MetadataMap) {
        let weights = &self.settings.weights;
        if self.policy() != LoadBalancing::WeightedRoundRobin || weights.enable_oob_load_report {
            return;
        }
        let Some(bytes) = metadata.get_bin(LOAD_REPORT).and_then(|value| value.to_bytes().ok()) else { return };
        if let Ok(report) = OrcaLoadReport::decode(bytes) {
            sub.weight.report(&report, weights.error_utilization_penalty, Instant::now());
        }
    }

    /// Reads the READY subchannels' weights into a new scheduler, and tells
    /// `-v` of the weights that changed.
    pub(super) fn reweigh(&self) {
        if self.policy() != LoadBalancing::WeightedRoundRobin {
            return;
        }
        let now = Instant::now();
        let ready: Vec<Arc<Subchannel>> =
            self.current().iter().filter(|sub| sub.state() == ConnectivityState::Ready).cloned().collect();
        let weights: Vec<f64> = ready.iter().map(|sub| sub.weight.get(&self.settings.weights, now)).collect();
        if self.watched() {
            for (sub, &weight) in ready.iter().zip(&weights) {
                if let Some(weight) = sub.weight.to_show(weight) {
                    self.emit(&Event::Weight { address: sub.address.to_string(), weight });
                }
            }
        }
        self.schedule.set(ready, &weights);
    }

    /// Starts reading the weights every update period while the channel
    /// lives (once; only under weighted round robin).
    pub(super) fn start_weighing(self: &Arc<Self>) {
        if self.policy() != LoadBalancing::WeightedRoundRobin {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let balancer = Arc::downgrade(self);
        let period = self.settings.weights.update_period();
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(balancer) = balancer.upgrade() else { return };
                if balancer.channel.state() == ConnectivityState::Shutdown {
                    return;
                }
                balancer.reweigh();
            }
        });
    }

    /// Whether `sub`'s load reports come on an out-of-band stream.
    pub(super) fn reports_out_of_band(&self) -> bool {
        self.policy() == LoadBalancing::WeightedRoundRobin && self.settings.weights.enable_oob_load_report
    }
}

/// Follows `sub`'s out-of-band load reports while it lives and `stop` is
/// not cancelled: a stream on each connection once it is READY, asking for
/// reports every `oob_reporting_period`; a stream that fails is opened
/// again after a backoff (a server without the service is asked again at
/// most every backoff's longest wait).
pub(super) async fn follow_reports(
    sub: Weak<Subchannel>,
    settings: WeightSettings,
    backoff: Backoff,
    stop: CancellationToken,
) {
    let interval = prost_types::Duration::try_from(settings.oob_reporting_period).unwrap_or_default();
    let mut failures = 0u32;
    loop {
        let Some(mut state) = sub.upgrade().map(|sub| sub.connectivity.subscribe()) else { return };
        tokio::select! {
            () = stop.cancelled() => return,
            ready = state.wait_for(|state| *state == ConnectivityState::Ready) => if ready.is_err() { return },
        }
        let Some(channel) = sub.upgrade().map(|sub| sub.channel().1) else { return };
        let ask = OrcaLoadReportRequest { report_interval: Some(interval), request_cost_names: vec![] };
        let mut client = OpenRcaServiceClient::new(channel);
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            opened = client.stream_core_metrics(ask) => opened,
        };
        if let Ok(reports) = opened {
            let mut reports = reports.into_inner();
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => return,
                    next = reports.message() => next,
                };
                let (Ok(Some(report)), Some(sub)) = (next, sub.upgrade()) else { break };
                failures = 0;
                sub.weight.report(&report, settings.error_utilization_penalty, Instant::now());
            }
        }
        failures += 1;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff.delay(failures)) => {}
        }
    }
}
