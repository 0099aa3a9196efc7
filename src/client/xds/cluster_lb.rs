//! A cluster's balancing policy: from `load_balancing_policy` (gRFC A52:
//! the first policy this client has, `wrr_locality` unwrapped) or else
//! the `lb_policy` enum; weighted round robin as gRFC A58 configures it,
//! ring hash within gRFC A42's bounds.

use std::time::Duration;

use prost::Message;
use prost_types::Any;
use serde::Serialize;

use super::fields::{duration_or, message};
use crate::pb::envoy::config::cluster::v3 as cds;
use crate::pb::envoy::extensions::load_balancing_policies as policies;

/// A42's bound on both ring sizes.
pub const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
/// How deep `wrr_locality` may nest policies, as grpc bounds it.
const MAX_DEPTH: usize = 16;

const PREFIX: &str = "type.googleapis.com/envoy.extensions.load_balancing_policies.";

/// A cluster's balancing policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    /// Round robin over the endpoints.
    RoundRobin,
    /// Weighted round robin from the endpoints' load reports (A58).
    WeightedRoundRobin(WrrConfig),
    /// Ring hash over the request's hash (A42).
    RingHash {
        /// The smallest ring (1024 by default).
        minimum_ring_size: u64,
        /// The largest ring (8M by default, and at most).
        maximum_ring_size: u64,
    },
}

/// A58's settings, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrrConfig {
    /// Load reports out of band rather than in each call's trailer.
    pub enable_oob_load_report: bool,
    /// How often out-of-band reports come (10 s).
    #[serde(serialize_with = "super::fields::human")]
    pub oob_reporting_period: Duration,
    /// How long a new weight waits before use (10 s).
    #[serde(serialize_with = "super::fields::human")]
    pub blackout_period: Duration,
    /// How long a weight lasts without a report (3 min).
    #[serde(serialize_with = "super::fields::human")]
    pub weight_expiration_period: Duration,
    /// How often weights are recomputed (1 s, at least 100 ms).
    #[serde(serialize_with = "super::fields::human")]
    pub weight_update_period: Duration,
    /// The weight's penalty for errors (1.0, not negative).
    pub error_utilization_penalty: f32,
}

/// The cluster's policy, A52's field first.
///
/// # Errors
/// No policy this client has, or one whose settings break a rule.
pub(super) fn lb_policy(cluster: &cds::Cluster) -> Result<LbPolicy, String> {
    if let Some(policy) = &cluster.load_balancing_policy {
        return first_supported(policy, 0);
    }
    match cds::cluster::LbPolicy::try_from(cluster.lb_policy) {
        Ok(cds::cluster::LbPolicy::RoundRobin) => Ok(LbPolicy::RoundRobin),
        Ok(cds::cluster::LbPolicy::RingHash) => {
            let (min, max) = match &cluster.ring_hash_lb_config {
                Some(c) => {
                    if c.hash_function != cds::cluster::ring_hash_lb_config::HashFunction::XxHash as i32 {
                        return Err("ring_hash_lb_config.hash_function is not XX_HASH".to_owned());
                    }
                    (c.minimum_ring_size, c.maximum_ring_size)
                }
                None => (None, None),
            };
            ring_hash(min, max)
        }
        Ok(other) => Err(format!("lb_policy {other:?} is not supported (ROUND_ROBIN, RING_HASH are)")),
        Err(_) => Err(format!("lb_policy {} is not a known policy", cluster.lb_policy)),
    }
}

fn ring_hash(min: Option<u64>, max: Option<u64>) -> Result<LbPolicy, String> {
    let minimum_ring_size = min.unwrap_or(1024);
    let maximum_ring_size = max.unwrap_or(MAX_RING_SIZE);
    if minimum_ring_size == 0 || minimum_ring_size > MAX_RING_SIZE || maximum_ring_size > MAX_RING_SIZE {
        return Err(format!("ring hash: ring sizes must be between 1 and {MAX_RING_SIZE}"));
    }
    if minimum_ring_size > maximum_ring_size {
        return Err(format!(
            "ring hash: minimum_ring_size {minimum_ring_size} above maximum_ring_size {maximum_ring_size}"
        ));
    }
    Ok(LbPolicy::RingHash { minimum_ring_size, maximum_ring_size })
}

/// The first policy of the list this client has; the others are skipped.
fn first_supported(list: &cds::LoadBalancingPolicy, depth: usize) -> Result<LbPolicy, String> {
    if depth > MAX_DEPTH {
        return Err(format!("load_balancing_policy nests deeper than {MAX_DEPTH}"));
    }
    let mut seen = Vec::new();
    for policy in &list.policies {
        let Some(any) = policy.typed_extension_config.as_ref().and_then(|c| c.typed_config.as_ref()) else { continue };
        if let Some(found) = one_policy(any, depth)? {
            return Ok(found);
        }
        seen.push(any.type_url.trim_start_matches(PREFIX).to_owned());
    }
    Err(format!("load_balancing_policy: no supported policy among [{}]", seen.join(", ")))
}

/// One policy of the list: `None` when this client does not have it.
fn one_policy(any: &Any, depth: usize) -> Result<Option<LbPolicy>, String> {
    let Some(kind) = any.type_url.strip_prefix(PREFIX) else { return Ok(None) };
    Ok(Some(match kind {
        "round_robin.v3.RoundRobin" => LbPolicy::RoundRobin,
        "ring_hash.v3.RingHash" => {
            let config: policies::ring_hash::v3::RingHash = message(&any.value, "RingHash")?;
            if config.hash_function != policies::ring_hash::v3::ring_hash::HashFunction::XxHash as i32
                && config.hash_function != policies::ring_hash::v3::ring_hash::HashFunction::DefaultHash as i32
            {
                return Err("ring_hash.hash_function is not XX_HASH".to_owned());
            }
            ring_hash(config.minimum_ring_size, config.maximum_ring_size)?
        }
        "wrr_locality.v3.WrrLocality" => {
            let config: policies::wrr_locality::v3::WrrLocality = message(&any.value, "WrrLocality")?;
            let child = config.endpoint_picking_policy.ok_or("wrr_locality: no endpoint_picking_policy")?;
            first_supported(&child, depth + 1)?
        }
        "client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin" => {
            LbPolicy::WeightedRoundRobin(wrr(&any.value)?)
        }
        _ => return Ok(None),
    }))
}

fn wrr(bytes: &[u8]) -> Result<WrrConfig, String> {
    type Wrr = policies::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin;
    let c = Wrr::decode(bytes).map_err(|e| format!("cannot decode ClientSideWeightedRoundRobin: {e}"))?;
    let at = |f: &str| format!("client_side_weighted_round_robin.{f}");
    let penalty = c.error_utilization_penalty.unwrap_or(1.0);
    if !(penalty >= 0.0 && penalty.is_finite()) {
        return Err(format!("{} is {penalty}: must be 0 or more", at("error_utilization_penalty")));
    }
    let update = duration_or(c.weight_update_period.as_ref(), &at("weight_update_period"), Duration::from_secs(1))?;
    Ok(WrrConfig {
        enable_oob_load_report: c.enable_oob_load_report.unwrap_or(false),
        oob_reporting_period: duration_or(
            c.oob_reporting_period.as_ref(),
            &at("oob_reporting_period"),
            Duration::from_secs(10),
        )?,
        blackout_period: duration_or(c.blackout_period.as_ref(), &at("blackout_period"), Duration::from_secs(10))?,
        weight_expiration_period: duration_or(
            c.weight_expiration_period.as_ref(),
            &at("weight_expiration_period"),
            Duration::from_secs(180),
        )?,
        // A58: shorter update periods are raised to 100 ms.
        weight_update_period: update.max(Duration::from_millis(100)),
        error_utilization_penalty: penalty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::config::core::v3 as core;

    fn any<M: Message>(kind: &str, m: &M) -> Any {
        Any { type_url: format!("{PREFIX}{kind}"), value: m.encode_to_vec() }
    }

    fn list(anys: Vec<Any>) -> cds::LoadBalancingPolicy {
        let policies = anys
            .into_iter()
            .map(|a| cds::load_balancing_policy::Policy {
                typed_extension_config: Some(core::TypedExtensionConfig { name: String::new(), typed_config: Some(a) }),
            })
            .collect();
        cds::LoadBalancingPolicy { policies }
    }

    #[test]
    fn the_first_supported_policy_wins_and_wrr_locality_is_unwrapped() {
        let unknown = Any { type_url: format!("{PREFIX}least_request.v3.LeastRequest"), value: Vec::new() };
        let wrr_config = policies::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin {
            weight_update_period: Some(prost_types::Duration { seconds: 0, nanos: 10_000_000 }),
            ..Default::default()
        };
        let inner = list(vec![any("client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin", &wrr_config)]);
        let locality = policies::wrr_locality::v3::WrrLocality { endpoint_picking_policy: Some(inner) };
        let policy = first_supported(&list(vec![unknown.clone(), any("wrr_locality.v3.WrrLocality", &locality)]), 0);
        let LbPolicy::WeightedRoundRobin(config) = policy.expect("valid") else { panic!("not wrr") };
        assert_eq!(config.weight_update_period, Duration::from_millis(100));
        assert_eq!(config.blackout_period, Duration::from_secs(10));
        assert_eq!(config.weight_expiration_period, Duration::from_secs(180));
        let none = first_supported(&list(vec![unknown]), 0).expect_err("refused");
        assert!(none.contains("no supported policy among [least_request.v3.LeastRequest]"), "{none}");
    }

    #[test]
    fn a_negative_error_penalty_is_refused() {
        let wrr_config = policies::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin {
            error_utilization_penalty: Some(-1.0),
            ..Default::default()
        };
        let err = wrr(&wrr_config.encode_to_vec()).expect_err("refused");
        assert!(err.contains("error_utilization_penalty is -1"), "{err}");
    }

    #[test]
    fn ring_sizes_keep_a42s_bounds() {
        assert_eq!(
            ring_hash(None, None),
            Ok(LbPolicy::RingHash { minimum_ring_size: 1024, maximum_ring_size: MAX_RING_SIZE })
        );
        assert!(ring_hash(Some(10), Some(5)).expect_err("refused").contains("above maximum_ring_size"));
        assert!(ring_hash(None, Some(MAX_RING_SIZE + 1)).is_err());
        assert!(ring_hash(Some(0), None).is_err());
    }

    #[test]
    fn the_lb_policy_enum_is_read_when_no_list_is_given() {
        let mut cluster = cds::Cluster { lb_policy: cds::cluster::LbPolicy::LeastRequest as i32, ..Default::default() };
        assert!(lb_policy(&cluster).expect_err("refused").contains("LeastRequest is not supported"));
        cluster.lb_policy = cds::cluster::LbPolicy::RingHash as i32;
        assert!(matches!(lb_policy(&cluster), Ok(LbPolicy::RingHash { .. })));
    }
}
