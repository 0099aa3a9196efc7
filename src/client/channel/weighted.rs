//! Weighted round robin in the channel (gRFC A58): the load reports taken
//! into each subchannel's weight (`weights.rs`), from each call's
//! `endpoint-load-metrics-bin` trailer (read by `call/attempts.rs` and, for
//! a stream read to its end, `responses.rs`) or, when asked, from each server's
//! out-of-band stream (`OpenRcaService/StreamCoreMetrics`); the READY
//! subchannels' weights read into an earliest-deadline-first scheduler
//! (`edf.rs`) every update period, whenever a subchannel comes or goes and
//! as soon as a new weight counts;
//! picks from it; `-v`'s weight events.
//!
//! The scheduler holds the subchannels READY when it was made; a pick
//! skips one that is no longer READY, or that the call already went to, and
//! falls back to round robin when it finds none (or while fewer than two
//! weights are known). Health checking, outlier detection and hedging act
//! on the subchannels' states as under round robin: an unhealthy or
//! ejected subchannel is not READY, so it is skipped, and a hedge takes the
//! next READY subchannel the call has not been to. Under xDS the cluster's
//! policy decides instead of the client's (`xds_policy.rs`): the same
//! weights and reports, a scheduler per locality.

use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use prost::Message;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;

use super::balancer::Balancer;
use super::connectivity::ConnectivityState;
use super::edf::Schedule;
use super::events::Event;
use super::picker::LoadBalancing;
use super::subchannel::Subchannel;
use super::weights::{WeightSettings, WeightsDue};
use super::xds_state::ClusterPolicies;
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
        if self.xds.is_none() && self.policy() != LoadBalancing::WeightedRoundRobin {
            return;
        }
        let Some(bytes) = metadata.get_bin(LOAD_REPORT).and_then(|value| value.to_bytes().ok()) else { return };
        let Some(weights) = self.weighing(sub).filter(|weights| !weights.enable_oob_load_report) else { return };
        if let Ok(report) = OrcaLoadReport::decode(bytes) {
            self.weights_due.count_from(sub.weight.report(&report, &weights, Instant::now()));
        }
    }

    /// The settings `sub` is weighed by, when its policy weighs it: the
    /// client's under weighted round robin, its cluster's under xDS.
    fn weighing(&self, sub: &Subchannel) -> Option<WeightSettings> {
        match &self.xds {
            Some(xds) => xds.policies.weighing(&sub.address),
            None => (self.policy() == LoadBalancing::WeightedRoundRobin).then_some(self.settings.weights),
        }
    }

    /// Reads the READY subchannels' weights into a new scheduler (under
    /// xDS, one per locality of each weighted cluster).
    pub(super) fn reweigh(&self) {
        if let Some(xds) = &self.xds {
            self.reweigh_xds(xds);
        } else if self.policy() == LoadBalancing::WeightedRoundRobin {
            let ready: Vec<Arc<Subchannel>> =
                self.current().iter().filter(|sub| sub.state() == ConnectivityState::Ready).cloned().collect();
            self.weigh(ready, &self.settings.weights, Instant::now(), &self.schedule);
        }
    }

    /// Makes `schedule` over `ready` with their weights under `settings`,
    /// and tells `-v` of the weights that changed.
    pub(super) fn weigh(
        &self,
        ready: Vec<Arc<Subchannel>>,
        settings: &WeightSettings,
        now: Instant,
        schedule: &Schedule,
    ) {
        let weights: Vec<f64> = ready.iter().map(|sub| sub.weight.get(settings, now)).collect();
        if self.watched() {
            for (sub, &weight) in ready.iter().zip(&weights) {
                if let Some(weight) = sub.weight.to_show(weight) {
                    self.emit(&Event::Weight { address: sub.address.to_string(), weight });
                }
            }
        }
        schedule.set(ready, &weights);
    }

    /// Starts reading the weights every update period, and whenever a
    /// weight begins to count, while the channel lives (once; under
    /// weighted round robin or xDS).
    pub(super) fn start_weighing(self: &Arc<Self>) {
        if self.xds.is_none() && self.policy() != LoadBalancing::WeightedRoundRobin {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let balancer = Arc::downgrade(self);
        let due = Arc::clone(&self.weights_due);
        runtime.spawn(async move {
            let mut next = Instant::now();
            loop {
                if Instant::now() >= next {
                    let Some(period) = balancer.upgrade().map(|balancer| balancer.update_period()) else { return };
                    next = Instant::now() + period;
                }
                due.wait(next).await;
                let Some(balancer) = balancer.upgrade() else { return };
                if balancer.channel.state() == ConnectivityState::Shutdown {
                    return;
                }
                balancer.reweigh();
            }
        });
    }

    /// How often the weights are read again.
    fn update_period(&self) -> Duration {
        match &self.xds {
            Some(xds) => ClusterPolicies::update_period(&xds.view()),
            None => self.settings.weights.update_period(),
        }
    }

    /// Starts or stops following `sub`'s out-of-band load reports, as its
    /// policy asks.
    pub(super) fn follow_load_reports(&self, sub: &Arc<Subchannel>) {
        let wanted = self.weighing(sub).filter(|weights| weights.enable_oob_load_report);
        let mut following = sub.load_reports.lock().unwrap_or_else(PoisonError::into_inner);
        match wanted {
            // Dropping the guard ends the stream.
            None => *following = None,
            Some(_) if following.is_some() => {}
            Some(settings) => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
                let stop = CancellationToken::new();
                let backoff = self.settings.backoff;
                let due = Arc::clone(&self.weights_due);
                runtime.spawn(follow_reports(Arc::downgrade(sub), settings, backoff, due, stop.clone()));
                *following = Some(stop.drop_guard());
            }
        }
    }
}

/// Follows `sub`'s out-of-band load reports while it lives and `stop` is
/// not cancelled: a stream on each connection once it is READY, asking for
/// reports every `oob_reporting_period`; a stream that fails is opened
/// again after a backoff (a server without the service is asked again at
/// most every backoff's longest wait). A first weight is told to `due`.
pub(super) async fn follow_reports(
    sub: Weak<Subchannel>,
    settings: WeightSettings,
    backoff: Backoff,
    due: Arc<WeightsDue>,
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
                due.count_from(sub.weight.report(&report, &settings, Instant::now()));
            }
        }
        failures += 1;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff.delay(failures)) => {}
        }
    }
}
