//! Each xDS cluster's own balancing and outlier detection, as its Cluster
//! resource says (gRFC A52, A58, A50), rather than the client's flags:
//! - a weighted round robin cluster (A58, under A52's `wrr_locality`)
//!   weighs each locality's READY endpoints by their load reports
//!   (`weights.rs`) into a scheduler per locality (`edf.rs`), rebuilt every
//!   update period and whenever an endpoint changes state; reports come in
//!   each call's trailer or, when the cluster asks, out of band
//!   (`weighted.rs`). A round robin cluster takes its localities'
//!   endpoints in turn; a ring hash one has a ring per priority
//!   (`ring_hash.rs`), built here when its endpoints change.
//! - a cluster with outlier detection has a sweep of its own over its
//!   endpoints, with its settings; a cluster without has none, and what a
//!   sweep had ejected returns to service when the cluster loses it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use tokio::time::Instant;

use super::balancer::Balancer;
use super::connectivity::ConnectivityState;
use super::dial::Address;
use super::edf::Schedule;
use super::ejection::Ejection;
use super::outlier::{FailurePercentageEjection, OutlierDetection, SuccessRateEjection};
use super::ring_hash::Ring;
use super::weights::WeightSettings;
use super::xds_routes::{ClusterPolicy, ClusterView, Priorities, XdsView};
use super::xds_state::XdsChannel;
use crate::client::xds::{LbPolicy, OutlierSettings};

impl Balancer {
    /// Takes the policies of a new configuration: which endpoints are
    /// weighed and how (before the subchannels are updated, so that new
    /// ones start their out-of-band reports at once).
    pub(super) fn weigh_by(&self, xds: &XdsChannel, view: &XdsView) {
        let mut weighing = HashMap::new();
        for (_, priorities, settings) in view.weighted() {
            for address in priorities.iter().flatten().flat_map(|(_, addresses)| addresses) {
                weighing.entry(address.clone()).or_insert(settings);
            }
        }
        *xds.policies.weighing.write().unwrap_or_else(PoisonError::into_inner) = weighing;
    }

    /// Reads the READY endpoints' weights of every weighted cluster into
    /// new schedulers, one per locality.
    pub(super) fn reweigh_xds(&self, xds: &XdsChannel) {
        let view = xds.view();
        let subchannels = self.current();
        let now = Instant::now();
        let mut schedules = HashMap::new();
        for (name, priorities, settings) in view.weighted() {
            let per_priority = priorities
                .iter()
                .map(|localities| {
                    localities
                        .iter()
                        .map(|(_, addresses)| {
                            let ready = addresses
                                .iter()
                                .filter_map(|a| subchannels.iter().find(|sub| &sub.address == a))
                                .filter(|sub| sub.state() == ConnectivityState::Ready)
                                .cloned()
                                .collect();
                            let schedule = Schedule::default();
                            self.weigh(ready, &settings, now, &schedule);
                            schedule
                        })
                        .collect()
                })
                .collect();
            schedules.insert(name.clone(), per_priority);
        }
        *xds.policies.schedules.write().unwrap_or_else(PoisonError::into_inner) = schedules;
    }

    /// Runs each cluster's outlier detection as its Cluster says (see the
    /// module documentation).
    pub(super) fn follow_outliers(self: &Arc<Self>, xds: &XdsChannel, view: &XdsView) {
        let mut wanted: HashMap<&str, (OutlierDetection, Vec<&Address>)> = HashMap::new();
        if let XdsView::Ready { clusters, .. } = view {
            for (name, cluster) in clusters {
                if let ClusterView::Ready { outlier: Some(config), .. } = cluster {
                    wanted.insert(name, (*config, cluster.addresses().collect()));
                }
            }
        }
        let mut sweeps = xds.policies.sweeps.lock().unwrap_or_else(PoisonError::into_inner);
        let before = sweeps.len();
        sweeps.retain(|name, (config, task)| {
            let kept = wanted.get(name.as_str()).is_some_and(|(wanted, _)| wanted == config);
            if !kept {
                task.abort();
            }
            kept
        });
        let stopped = sweeps.len() < before;
        for (name, (config, _)) in &wanted {
            if !sweeps.contains_key(*name)
                && let Some(task) = self.sweeping(*config, Some((*name).to_owned()))
            {
                sweeps.insert((*name).to_owned(), (*config, task));
            }
        }
        drop(sweeps);
        if stopped {
            let guarded: Vec<&Address> = wanted.values().flat_map(|(_, addresses)| addresses.iter().copied()).collect();
            for sub in self.current().iter().filter(|sub| sub.outlier.ejected() && !guarded.contains(&&sub.address)) {
                sub.outlier.set_ejection(Ejection::default());
                self.refresh(sub, Some("its cluster no longer has outlier detection"));
            }
        }
    }
}

/// A Cluster's policy as the channel applies it to `priorities`, its
/// endpoints; `weight` an endpoint's weight within its locality.
pub(super) fn policy_of(policy: &LbPolicy, priorities: &Priorities, weight: impl Fn(&Address) -> u32) -> ClusterPolicy {
    match policy {
        LbPolicy::RoundRobin => ClusterPolicy::RoundRobin,
        // A42: an endpoint weighs its locality's weight times its own.
        LbPolicy::RingHash { minimum_ring_size, maximum_ring_size } => ClusterPolicy::RingHash(
            priorities
                .iter()
                .map(|localities| {
                    let endpoints: Vec<(Address, u64)> = localities
                        .iter()
                        .flat_map(|(locality, addresses)| {
                            addresses.iter().map(|a| (a.clone(), u64::from(*locality) * u64::from(weight(a))))
                        })
                        .collect();
                    Ring::new(&endpoints, *minimum_ring_size, *maximum_ring_size)
                })
                .collect(),
        ),
        LbPolicy::WeightedRoundRobin(config) => ClusterPolicy::Weighted(WeightSettings {
            blackout_period: config.blackout_period,
            weight_expiration_period: config.weight_expiration_period,
            weight_update_period: config.weight_update_period,
            error_utilization_penalty: f64::from(config.error_utilization_penalty),
            enable_oob_load_report: config.enable_oob_load_report,
            oob_reporting_period: config.oob_reporting_period,
        }),
    }
}

/// A Cluster's outlier detection as the channel's sweep takes it.
pub(super) fn outlier_of(settings: &OutlierSettings) -> OutlierDetection {
    OutlierDetection {
        interval: settings.interval,
        base_ejection_time: settings.base_ejection_time,
        max_ejection_time: settings.max_ejection_time,
        max_ejection_percent: settings.max_ejection_percent,
        success_rate: settings.success_rate.as_ref().map(|rate| SuccessRateEjection {
            stdev_factor: rate.stdev_factor,
            enforcement_percentage: rate.enforcement_percentage,
            minimum_hosts: rate.minimum_hosts,
            request_volume: rate.request_volume,
        }),
        failure_percentage: settings.failure_percentage.as_ref().map(|failure| FailurePercentageEjection {
            threshold: failure.threshold,
            enforcement_percentage: failure.enforcement_percentage,
            minimum_hosts: failure.minimum_hosts,
            request_volume: failure.request_volume,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::client::xds::{FailurePercentage, WrrConfig};

    #[test]
    fn a_clusters_policy_becomes_the_channels() {
        let address = |port| Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        let priorities = vec![vec![(1, vec![address(1)]), (3, vec![address(2)])], vec![(1, vec![address(3)])]];
        let policy = |lb: &LbPolicy| policy_of(lb, &priorities, |a| if *a == address(2) { 2 } else { 1 });
        assert_eq!(policy(&LbPolicy::RoundRobin), ClusterPolicy::RoundRobin);
        let ring = LbPolicy::RingHash { minimum_ring_size: 7, maximum_ring_size: 4096 };
        let ClusterPolicy::RingHash(rings) = policy(&ring) else { panic!("ring hash") };
        let first = Ring::new(&[(address(1), 1), (address(2), 6)], 7, 4096);
        assert_eq!(
            &rings[..],
            [first, Ring::new(&[(address(3), 1)], 7, 4096)],
            "a ring per priority, weights multiplied"
        );
        let config = WrrConfig {
            enable_oob_load_report: true,
            oob_reporting_period: Duration::from_secs(2),
            blackout_period: Duration::from_secs(3),
            weight_expiration_period: Duration::from_secs(4),
            weight_update_period: Duration::from_millis(500),
            error_utilization_penalty: 0.5,
        };
        let ClusterPolicy::Weighted(settings) = policy(&LbPolicy::WeightedRoundRobin(config)) else {
            panic!("weighted round robin")
        };
        assert!(settings.enable_oob_load_report);
        assert_eq!(
            (settings.oob_reporting_period, settings.blackout_period, settings.weight_expiration_period),
            (Duration::from_secs(2), Duration::from_secs(3), Duration::from_secs(4))
        );
        assert_eq!(settings.update_period(), Duration::from_millis(500));
        assert!((settings.error_utilization_penalty - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn a_clusters_outlier_detection_becomes_the_sweeps() {
        let settings = OutlierSettings {
            interval: Duration::from_millis(200),
            base_ejection_time: Duration::from_secs(7),
            max_ejection_time: Duration::from_secs(70),
            max_ejection_percent: 50,
            success_rate: None,
            failure_percentage: Some(FailurePercentage {
                threshold: 60,
                enforcement_percentage: 100,
                minimum_hosts: 2,
                request_volume: 10,
            }),
        };
        let config = outlier_of(&settings);
        assert_eq!(config.check(), Ok(()));
        assert_eq!((config.interval, config.base_ejection_time), (Duration::from_millis(200), Duration::from_secs(7)));
        assert_eq!((config.max_ejection_time, config.max_ejection_percent), (Duration::from_secs(70), 50));
        assert_eq!(config.success_rate, None);
        let failure = config.failure_percentage.expect("failure-percentage ejection");
        assert_eq!((failure.threshold, failure.minimum_hosts, failure.request_volume), (60, 2, 10));
    }
}
