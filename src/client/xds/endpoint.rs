//! ClusterLoadAssignment (EDS): a cluster's endpoints, in localities with
//! weights, in priorities (0 first, no gap), each endpoint with its health
//! and weight; and the share of calls to drop (gRFC A27).

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::fields::per_million;
use crate::pb::envoy::config::core::v3 as core;
use crate::pb::envoy::config::endpoint::v3 as eds;

/// A validated ClusterLoadAssignment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoints {
    /// The localities of each priority, priority 0 first.
    pub priorities: Vec<Vec<LocalityEndpoints>>,
    /// The shares of calls dropped, by category.
    pub drop_overloads: Vec<DropOverload>,
}

/// One locality's endpoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalityEndpoints {
    /// Where they are.
    pub locality: Locality,
    /// The locality's weight within its priority (never 0: a locality
    /// without a weight is left out, as A27 says).
    pub weight: u32,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// A locality's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Locality {
    /// `region`.
    pub region: String,
    /// `zone`.
    pub zone: String,
    /// `sub_zone`.
    pub sub_zone: String,
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Its address.
    pub address: SocketAddr,
    /// Its health as the management server says.
    pub health: Health,
    /// Its weight within the locality (1 by default).
    pub weight: u32,
}

/// An endpoint's health status (envoy's HealthStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    /// UNKNOWN: usable.
    Unknown,
    /// HEALTHY: usable.
    Healthy,
    /// UNHEALTHY.
    Unhealthy,
    /// DRAINING.
    Draining,
    /// TIMEOUT.
    Timeout,
    /// DEGRADED.
    Degraded,
}

impl Health {
    /// Whether calls may go to an endpoint in this state: UNKNOWN and
    /// HEALTHY only, as A27 says.
    #[must_use]
    pub fn usable(self) -> bool {
        matches!(self, Self::Unknown | Self::Healthy)
    }

    fn from_wire(value: i32) -> Self {
        match core::HealthStatus::try_from(value) {
            Ok(core::HealthStatus::Healthy) => Self::Healthy,
            Ok(core::HealthStatus::Unhealthy) => Self::Unhealthy,
            Ok(core::HealthStatus::Draining) => Self::Draining,
            Ok(core::HealthStatus::Timeout) => Self::Timeout,
            Ok(core::HealthStatus::Degraded) => Self::Degraded,
            _ => Self::Unknown,
        }
    }
}

/// A share of calls to drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DropOverload {
    /// The category, for load reports.
    pub category: String,
    /// Out of a million calls.
    pub per_million: u32,
}

/// Validates a ClusterLoadAssignment.
///
/// # Errors
/// A gap in the priorities, a locality twice in a priority, locality
/// weights over 2^32 - 1, an endpoint that is no IP address and port, of
/// weight 0, or listed twice.
pub(super) fn validate(assignment: &eds::ClusterLoadAssignment) -> Result<Endpoints, String> {
    let mut priorities: Vec<Vec<LocalityEndpoints>> = Vec::new();
    let mut addresses = std::collections::HashSet::new();
    for group in &assignment.endpoints {
        let weight = group.load_balancing_weight.unwrap_or(0);
        if weight == 0 {
            continue;
        }
        let locality = group.locality.as_ref().map_or_else(Locality::default, |l| Locality {
            region: l.region.clone(),
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
        });
        let at = format!("locality {}/{}/{}", locality.region, locality.zone, locality.sub_zone);
        let mut endpoints = Vec::with_capacity(group.lb_endpoints.len());
        for lb in &group.lb_endpoints {
            let endpoint = endpoint(lb).map_err(|e| format!("{at}: {e}"))?;
            if !addresses.insert(endpoint.address) {
                return Err(format!("{at}: endpoint {} listed twice", endpoint.address));
            }
            endpoints.push(endpoint);
        }
        let priority = usize::try_from(group.priority).unwrap_or(usize::MAX);
        if priority >= 1 << 16 {
            return Err(format!("{at}: priority {} is out of range", group.priority));
        }
        if priorities.len() <= priority {
            priorities.resize_with(priority + 1, Vec::new);
        }
        if priorities[priority].iter().any(|l| l.locality == locality) {
            return Err(format!("{at}: twice in priority {priority}"));
        }
        priorities[priority].push(LocalityEndpoints { locality, weight, endpoints });
    }
    for (priority, localities) in priorities.iter().enumerate() {
        if localities.is_empty() {
            return Err(format!("priority {priority} has no locality, though a higher one does"));
        }
        let total: u64 = localities.iter().map(|l| u64::from(l.weight)).sum();
        if total > u64::from(u32::MAX) {
            return Err(format!("priority {priority}: the locality weights add up to {total}, more than 2^32 - 1"));
        }
    }
    let drop_overloads = assignment.policy.as_ref().map_or_else(Vec::new, |p| {
        p.drop_overloads
            .iter()
            .map(|d| DropOverload {
                category: d.category.clone(),
                per_million: d.drop_percentage.as_ref().map_or(0, |f| per_million(f.numerator, f.denominator)),
            })
            .collect()
    });
    Ok(Endpoints { priorities, drop_overloads })
}

fn endpoint(lb: &eds::LbEndpoint) -> Result<Endpoint, String> {
    let socket = lb
        .endpoint
        .as_ref()
        .and_then(|e| e.address.as_ref())
        .and_then(|a| a.socket_address.as_ref())
        .ok_or("an endpoint without a socket address")?;
    let ip: IpAddr =
        socket.address.parse().map_err(|_| format!("endpoint address {:?} is not an IP address", socket.address))?;
    let port = socket.port_value;
    let port = u16::try_from(port).map_err(|_| format!("endpoint port {port} is out of range"))?;
    let address = SocketAddr::new(ip, port);
    let weight = lb.load_balancing_weight.unwrap_or(1);
    if weight == 0 {
        return Err(format!("endpoint {address} has weight 0"));
    }
    Ok(Endpoint { address, health: Health::from_wire(lb.health_status), weight })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn lb_endpoint(ip: &str, port: u32, health: core::HealthStatus) -> eds::LbEndpoint {
        let socket = core::SocketAddress { address: ip.to_owned(), port_value: port };
        let address = core::Address { socket_address: Some(socket) };
        eds::LbEndpoint {
            endpoint: Some(eds::Endpoint { address: Some(address) }),
            health_status: health as i32,
            ..Default::default()
        }
    }

    fn group(
        zone: &str,
        weight: Option<u32>,
        priority: u32,
        endpoints: Vec<eds::LbEndpoint>,
    ) -> eds::LocalityLbEndpoints {
        eds::LocalityLbEndpoints {
            locality: Some(core::Locality { zone: zone.to_owned(), ..Default::default() }),
            lb_endpoints: endpoints,
            load_balancing_weight: weight,
            priority,
        }
    }

    fn assignment(groups: Vec<eds::LocalityLbEndpoints>) -> eds::ClusterLoadAssignment {
        eds::ClusterLoadAssignment { cluster_name: "c".to_owned(), endpoints: groups, ..Default::default() }
    }

    #[test]
    fn priorities_localities_and_health_are_kept() {
        let a = assignment(vec![
            group("b", Some(1), 1, vec![lb_endpoint("127.0.0.1", 3, core::HealthStatus::Unhealthy)]),
            group("a", Some(2), 0, vec![lb_endpoint("127.0.0.1", 1, core::HealthStatus::Healthy)]),
            group("unweighted", None, 0, vec![lb_endpoint("127.0.0.1", 2, core::HealthStatus::Unknown)]),
        ]);
        let e = validate(&a).expect("valid");
        assert_eq!(e.priorities.len(), 2);
        assert_eq!(e.priorities[0].len(), 1, "a locality without weight is left out");
        assert_eq!(e.priorities[0][0].weight, 2);
        assert_eq!(e.priorities[1][0].endpoints[0].health, Health::Unhealthy);
        assert!(!Health::Unhealthy.usable() && !Health::Draining.usable() && Health::Unknown.usable());
    }

    #[test]
    fn a_gap_in_the_priorities_is_refused() {
        let a =
            assignment(vec![group("a", Some(1), 1, vec![lb_endpoint("127.0.0.1", 1, core::HealthStatus::Unknown)])]);
        assert!(validate(&a).expect_err("refused").contains("priority 0 has no locality"));
    }

    #[test]
    fn an_endpoint_must_be_an_ip_and_port_of_some_weight_listed_once() {
        let one = |e| assignment(vec![group("a", Some(1), 0, vec![e])]);
        let host = lb_endpoint("localhost", 1, core::HealthStatus::Unknown);
        assert!(validate(&one(host)).expect_err("refused").contains("not an IP address"));
        let port = lb_endpoint("127.0.0.1", 70_000, core::HealthStatus::Unknown);
        assert!(validate(&one(port)).expect_err("refused").contains("out of range"));
        let mut weightless = lb_endpoint("127.0.0.1", 1, core::HealthStatus::Unknown);
        weightless.load_balancing_weight = Some(0);
        assert!(validate(&one(weightless)).expect_err("refused").contains("weight 0"));
        let twice = vec![
            lb_endpoint("127.0.0.1", 1, core::HealthStatus::Unknown),
            lb_endpoint("127.0.0.1", 1, core::HealthStatus::Unknown),
        ];
        assert!(validate(&assignment(vec![group("a", Some(1), 0, twice)])).expect_err("refused").contains("twice"));
    }

    #[test]
    fn locality_weights_must_fit_and_localities_be_unique() {
        let e = |port| vec![lb_endpoint("127.0.0.1", port, core::HealthStatus::Unknown)];
        let big = assignment(vec![group("a", Some(u32::MAX), 0, e(1)), group("b", Some(1), 0, e(2))]);
        assert!(validate(&big).expect_err("refused").contains("more than 2^32 - 1"));
        let same = assignment(vec![group("a", Some(1), 0, e(1)), group("a", Some(1), 0, e(2))]);
        assert!(validate(&same).expect_err("refused").contains("twice in priority 0"));
    }

    #[test]
    fn drops_are_per_million() {
        let mut a = assignment(Vec::new());
        a.policy = Some(eds::cluster_load_assignment::Policy {
            drop_overloads: vec![eds::cluster_load_assignment::policy::DropOverload {
                category: "lb".to_owned(),
                drop_percentage: Some(crate::pb::envoy::r#type::v3::FractionalPercent { numerator: 5, denominator: 0 }),
            }],
        });
        assert_eq!(
            validate(&a).expect("valid").drop_overloads,
            [DropOverload { category: "lb".to_owned(), per_million: 50_000 }]
        );
    }
}
