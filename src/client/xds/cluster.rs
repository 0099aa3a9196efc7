//! Cluster (CDS): an EDS cluster's endpoints' name, its balancing policy
//! (`cluster_lb.rs`), outlier detection (gRFC A50) and circuit breaking
//! (gRFC A32's `max_requests`).

use std::time::Duration;

use serde::Serialize;

use super::cluster_lb::{LbPolicy, lb_policy};
use super::fields::duration_or;
use crate::pb::envoy::config::cluster::v3 as cds;
use crate::pb::envoy::config::core::v3 as core;

/// gRFC A32's default for `max_requests`: calls in flight to a cluster.
pub const DEFAULT_MAX_REQUESTS: u32 = 1024;

/// A validated Cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// The ClusterLoadAssignment to subscribe to by EDS: `service_name`,
    /// or the cluster's own name when that is empty.
    pub eds_service_name: String,
    /// How calls are spread over its endpoints.
    pub lb_policy: LbPolicy,
    /// The most calls in flight (A32), 1024 unless the DEFAULT priority's
    /// threshold says otherwise.
    pub max_requests: u32,
    /// Outlier detection, when the cluster has it.
    pub outlier_detection: Option<OutlierSettings>,
    /// Load reports go to the management server (`lrs_server` is `self`).
    pub load_reporting: bool,
}

/// Outlier detection's settings (A50), defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlierSettings {
    /// How often ejections are decided (10 s).
    #[serde(serialize_with = "super::fields::human")]
    pub interval: Duration,
    /// The first ejection's length (30 s).
    #[serde(serialize_with = "super::fields::human")]
    pub base_ejection_time: Duration,
    /// The longest ejection (the larger of 300 s and the base).
    #[serde(serialize_with = "super::fields::human")]
    pub max_ejection_time: Duration,
    /// The most endpoints ejected at once, in percent (10).
    pub max_ejection_percent: u32,
    /// Success-rate ejection, unless `enforcing_success_rate` is 0.
    pub success_rate: Option<SuccessRate>,
    /// Failure-percentage ejection, when `enforcing_failure_percentage` is above 0.
    pub failure_percentage: Option<FailurePercentage>,
}

/// Success-rate ejection (A50).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuccessRate {
    /// `success_rate_stdev_factor`, in thousandths (1900).
    pub stdev_factor: u32,
    /// `enforcing_success_rate`, in percent (100).
    pub enforcement_percentage: u32,
    /// `success_rate_minimum_hosts` (5).
    pub minimum_hosts: u32,
    /// `success_rate_request_volume` (100).
    pub request_volume: u32,
}

/// Failure-percentage ejection (A50).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailurePercentage {
    /// `failure_percentage_threshold`, in percent (85).
    pub threshold: u32,
    /// `enforcing_failure_percentage`, in percent.
    pub enforcement_percentage: u32,
    /// `failure_percentage_minimum_hosts` (5).
    pub minimum_hosts: u32,
    /// `failure_percentage_request_volume` (50).
    pub request_volume: u32,
}

/// Validates a Cluster (A27): an EDS cluster over ADS, with a policy this
/// client has.
///
/// # Errors
/// The first rule broken, named.
pub(super) fn validate(cluster: &cds::Cluster) -> Result<Cluster, String> {
    use cds::cluster::ClusterDiscoveryType;
    match &cluster.cluster_discovery_type {
        Some(ClusterDiscoveryType::Type(t)) if *t == cds::cluster::DiscoveryType::Eds as i32 => {}
        Some(ClusterDiscoveryType::Type(t)) => {
            let name = cds::cluster::DiscoveryType::try_from(*t).map_or_else(|_| t.to_string(), |d| format!("{d:?}"));
            return Err(format!("type {name}: only EDS clusters are supported"));
        }
        _ => return Err("no type: only EDS clusters are supported".to_owned()),
    }
    let eds = cluster.eds_cluster_config.as_ref();
    config_source_is_ads(eds.and_then(|e| e.eds_config.as_ref()), "eds_cluster_config.eds_config")?;
    let service_name = eds.map(|e| e.service_name.clone()).unwrap_or_default();
    let eds_service_name = if service_name.is_empty() { cluster.name.clone() } else { service_name };
    let load_reporting = match &cluster.lrs_server {
        None => false,
        Some(source) => config_source_is_ads(Some(source), "lrs_server").map(|()| true)?,
    };
    let max_requests = cluster
        .circuit_breakers
        .as_ref()
        .and_then(|c| c.thresholds.iter().find(|t| t.priority == core::RoutingPriority::Default as i32))
        .and_then(|t| t.max_requests)
        .unwrap_or(DEFAULT_MAX_REQUESTS);
    let outlier_detection = cluster.outlier_detection.as_ref().map(outlier).transpose()?;
    Ok(Cluster { eds_service_name, lb_policy: lb_policy(cluster)?, max_requests, outlier_detection, load_reporting })
}

/// A config source must be `self`, or ADS (the one stream there is).
fn config_source_is_ads(source: Option<&core::ConfigSource>, field: &str) -> Result<(), String> {
    use core::config_source::ConfigSourceSpecifier as S;
    match source.and_then(|s| s.config_source_specifier.as_ref()) {
        Some(S::Ads(_) | S::Self_(_)) => Ok(()),
        _ => Err(format!("{field} is neither ads nor self")),
    }
}

fn percent(value: Option<u32>, default: u32, field: &str) -> Result<u32, String> {
    let value = value.unwrap_or(default);
    if value > 100 {
        return Err(format!("outlier_detection.{field} is {value}: a percentage is at most 100"));
    }
    Ok(value)
}

/// A50's reading of envoy's OutlierDetection.
fn outlier(o: &cds::OutlierDetection) -> Result<OutlierSettings, String> {
    let at = |field: &str| format!("outlier_detection.{field}");
    let interval = duration_or(o.interval.as_ref(), &at("interval"), Duration::from_secs(10))?;
    let base_ejection_time =
        duration_or(o.base_ejection_time.as_ref(), &at("base_ejection_time"), Duration::from_secs(30))?;
    let default_max = base_ejection_time.max(Duration::from_secs(300));
    let max_ejection_time = duration_or(o.max_ejection_time.as_ref(), &at("max_ejection_time"), default_max)?;
    let max_ejection_percent = percent(o.max_ejection_percent, 10, "max_ejection_percent")?;
    let enforcing_success = percent(o.enforcing_success_rate, 100, "enforcing_success_rate")?;
    let success_rate = (enforcing_success > 0).then(|| SuccessRate {
        stdev_factor: o.success_rate_stdev_factor.unwrap_or(1900),
        enforcement_percentage: enforcing_success,
        minimum_hosts: o.success_rate_minimum_hosts.unwrap_or(5),
        request_volume: o.success_rate_request_volume.unwrap_or(100),
    });
    let enforcing_failure = percent(o.enforcing_failure_percentage, 0, "enforcing_failure_percentage")?;
    let threshold = percent(o.failure_percentage_threshold, 85, "failure_percentage_threshold")?;
    let failure_percentage = (enforcing_failure > 0).then(|| FailurePercentage {
        threshold,
        enforcement_percentage: enforcing_failure,
        minimum_hosts: o.failure_percentage_minimum_hosts.unwrap_or(5),
        request_volume: o.failure_percentage_request_volume.unwrap_or(50),
    });
    Ok(OutlierSettings {
        interval,
        base_ejection_time,
        max_ejection_time,
        max_ejection_percent,
        success_rate,
        failure_percentage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ads() -> Option<core::ConfigSource> {
        let ads = core::config_source::ConfigSourceSpecifier::Ads(core::AggregatedConfigSource::default());
        Some(core::ConfigSource { config_source_specifier: Some(ads), ..Default::default() })
    }

    pub(super) fn eds_cluster(name: &str) -> cds::Cluster {
        cds::Cluster {
            name: name.to_owned(),
            cluster_discovery_type: Some(cds::cluster::ClusterDiscoveryType::Type(
                cds::cluster::DiscoveryType::Eds as i32,
            )),
            eds_cluster_config: Some(cds::cluster::EdsClusterConfig { eds_config: ads(), service_name: String::new() }),
            ..Default::default()
        }
    }

    #[test]
    fn an_eds_cluster_takes_the_defaults() {
        let cluster = validate(&eds_cluster("c")).expect("valid");
        assert_eq!(cluster.eds_service_name, "c");
        assert_eq!(cluster.lb_policy, LbPolicy::RoundRobin);
        assert_eq!(cluster.max_requests, 1024);
        assert_eq!(cluster.outlier_detection, None);
        assert!(!cluster.load_reporting);
    }

    #[test]
    fn only_eds_clusters_over_ads_are_taken() {
        let mut logical = eds_cluster("c");
        logical.cluster_discovery_type =
            Some(cds::cluster::ClusterDiscoveryType::Type(cds::cluster::DiscoveryType::LogicalDns as i32));
        assert!(validate(&logical).expect_err("refused").contains("only EDS"));
        let mut elsewhere = eds_cluster("c");
        elsewhere.eds_cluster_config = Some(cds::cluster::EdsClusterConfig::default());
        assert!(validate(&elsewhere).expect_err("refused").contains("neither ads nor self"));
    }

    #[test]
    fn max_requests_comes_from_the_default_priority() {
        let mut cluster = eds_cluster("c");
        let threshold = |priority: core::RoutingPriority, max| cds::circuit_breakers::Thresholds {
            priority: priority as i32,
            max_requests: Some(max),
        };
        cluster.circuit_breakers = Some(cds::CircuitBreakers {
            thresholds: vec![threshold(core::RoutingPriority::High, 7), threshold(core::RoutingPriority::Default, 3)],
        });
        assert_eq!(validate(&cluster).expect("valid").max_requests, 3);
    }

    #[test]
    fn outlier_detection_takes_a50s_defaults_and_bounds() {
        let mut cluster = eds_cluster("c");
        cluster.outlier_detection = Some(cds::OutlierDetection::default());
        let o = validate(&cluster).expect("valid").outlier_detection.expect("present");
        assert_eq!(
            (o.interval, o.base_ejection_time, o.max_ejection_time),
            (Duration::from_secs(10), Duration::from_secs(30), Duration::from_secs(300))
        );
        assert_eq!(o.max_ejection_percent, 10);
        assert_eq!(o.success_rate.map(|s| (s.stdev_factor, s.request_volume)), Some((1900, 100)));
        assert_eq!(o.failure_percentage, None);
        cluster.outlier_detection = Some(cds::OutlierDetection {
            enforcing_success_rate: Some(0),
            enforcing_failure_percentage: Some(50),
            ..Default::default()
        });
        let o = validate(&cluster).expect("valid").outlier_detection.expect("present");
        assert_eq!(o.success_rate, None);
        assert_eq!(o.failure_percentage.map(|f| (f.threshold, f.enforcement_percentage)), Some((85, 50)));
        cluster.outlier_detection =
            Some(cds::OutlierDetection { max_ejection_percent: Some(101), ..Default::default() });
        assert!(validate(&cluster).expect_err("refused").contains("max_ejection_percent is 101"));
    }
}
