//! What an `xds:///` channel holds of its xDS configuration ([`XdsView`]),
//! and per call the cluster it goes to: the first route of the target's
//! virtual host that the call's path and headers match (gRFC A27), then
//! one of the route's clusters, at random by weight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use super::dial::Address;
use super::outlier::OutlierDetection;
use super::ring_hash::Ring;
use super::weights::WeightSettings;
use crate::client::xds::{
    DropOverload, HashPolicy, HeaderMatch, HeaderRule, PathMatch, RetryPolicy, Route, RouteAction, RouteMatch,
    WeightedCluster,
};

/// A cluster's usable endpoints: by priority, the first first; in each,
/// the localities with their weights.
pub(super) type Priorities = Vec<Vec<(u32, Vec<Address>)>>;

/// The xDS configuration as the channel uses it.
#[derive(Debug, Clone, Default)]
pub(super) enum XdsView {
    /// The Listener or its routes are still awaited: calls wait.
    #[default]
    Waiting,
    /// Calls fail UNAVAILABLE with this (naming the resource).
    Failed(String),
    /// The routes of the target's virtual host, each cluster they name,
    /// and the Listener's cap on a call's deadline.
    Ready { routes: Vec<Route>, clusters: BTreeMap<String, ClusterView>, cap: Option<Duration> },
}

/// One cluster as the channel uses it.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per cluster, made once per update
pub(super) enum ClusterView {
    /// Its Cluster or its endpoints are still awaited.
    Waiting,
    /// Calls to it fail with this.
    Failed(String),
    /// Its usable endpoints (UNKNOWN or HEALTHY): by priority, the first
    /// first; in each, the localities with their weights. The most calls
    /// it may have under way (A32's `max_requests`), how a locality
    /// spreads its calls, its outlier detection (A50; `None`: off) and the
    /// shares of calls its endpoints' assignment drops (A27).
    Ready {
        priorities: Priorities,
        max_requests: u32,
        policy: ClusterPolicy,
        outlier: Option<OutlierDetection>,
        drops: Vec<DropOverload>,
    },
}

/// How a cluster spreads the calls of a priority over its endpoints.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ClusterPolicy {
    /// A locality by weight, round robin within it.
    RoundRobin,
    /// A locality by weight, weighted round robin by the endpoints' load
    /// reports within it (A58).
    Weighted(WeightSettings),
    /// By the call's hash on each priority's ring (A42).
    RingHash(Arc<[Ring]>),
}

impl ClusterView {
    /// Every address it has, in order.
    pub(super) fn addresses(&self) -> impl Iterator<Item = &Address> {
        let priorities: &[Vec<(u32, Vec<Address>)>] = match self {
            Self::Ready { priorities, .. } => priorities,
            _ => &[],
        };
        priorities.iter().flatten().flat_map(|(_, addresses)| addresses)
    }
}

/// Where a call goes, as far as the configuration says.
#[derive(Debug, PartialEq)]
pub(super) enum Routed<'a> {
    /// Not known yet: wait.
    Wait,
    /// The call fails UNAVAILABLE with this.
    Fail(String),
    /// This cluster, the call's deadline capped to this (A31), the
    /// route's retry policy (A44) and its hash policies (A42).
    Cluster(&'a str, Option<Duration>, Option<&'a RetryPolicy>, &'a [HashPolicy]),
}

impl XdsView {
    /// The cluster of a call to `path` with `headers`.
    pub(super) fn route(&self, path: &str, headers: &HeaderMap) -> Routed<'_> {
        let (routes, cap) = match self {
            Self::Waiting => return Routed::Wait,
            Self::Failed(why) => return Routed::Fail(why.clone()),
            Self::Ready { routes, cap, .. } => (routes, cap),
        };
        let Some(route) = routes.iter().find(|route| matches(&route.matcher, path, headers)) else {
            return Routed::Fail(format!("no xDS route matches {path}"));
        };
        match &route.action {
            RouteAction::Forward(forward) => match pick_weighted(&forward.clusters, fastrand::u64(..)) {
                Some(cluster) => {
                    // A31: the caller's cap takes over; zero is no cap.
                    let route_cap = forward.grpc_timeout_header_max.or(forward.max_stream_duration);
                    let cap = route_cap.or(*cap).filter(|cap| !cap.is_zero());
                    Routed::Cluster(cluster, cap, forward.retry_policy.as_ref(), &forward.hash_policies)
                }
                None => Routed::Fail(format!("the xDS route of {path} names no cluster")),
            },
            RouteAction::NonForwarding => Routed::Fail(format!("the xDS route of {path} does not forward calls")),
        }
    }

    /// The weighted round robin clusters: name, endpoints and settings.
    pub(super) fn weighted(&self) -> impl Iterator<Item = (&String, &Priorities, WeightSettings)> {
        let clusters = match self {
            Self::Ready { clusters, .. } => Some(clusters),
            _ => None,
        };
        clusters.into_iter().flatten().filter_map(|(name, cluster)| match cluster {
            ClusterView::Ready { priorities, policy: ClusterPolicy::Weighted(settings), .. } => {
                Some((name, priorities, *settings))
            }
            _ => None,
        })
    }

    /// The cluster named `name`, when the routes name it.
    pub(super) fn cluster(&self, name: &str) -> Option<&ClusterView> {
        match self {
            Self::Ready { clusters, .. } => clusters.get(name),
            _ => None,
        }
    }
}

/// The cluster `random` falls on, the clusters laid end to end by weight.
fn pick_weighted(clusters: &[WeightedCluster], random: u64) -> Option<&str> {
    let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
    if total == 0 {
        return clusters.first().map(|c| c.name.as_str());
    }
    let mut point = random % total;
    for cluster in clusters {
        if point < u64::from(cluster.weight) {
            return Some(&cluster.name);
        }
        point -= u64::from(cluster.weight);
    }
    None
}

/// Whether a call to `path` with `headers` matches `route` (A27): the
/// path's rule, every header rule, and the route's share of calls.
pub(super) fn matches(route: &RouteMatch, path: &str, headers: &HeaderMap) -> bool {
    let folded = |text: &str| if route.case_sensitive { text.to_owned() } else { text.to_ascii_lowercase() };
    let path_ok = match &route.path {
        PathMatch::Prefix(prefix) => folded(path).starts_with(&folded(prefix)),
        PathMatch::Exact(exact) => folded(path) == folded(exact),
        PathMatch::Regex(pattern) => pattern.matches(path),
    };
    path_ok
        && route.headers.iter().all(|rule| header_matches(rule, headers))
        && route.fraction_per_million.is_none_or(|share| fastrand::u32(..1_000_000) < share)
}

/// One header rule; a binary header (`-bin`) is never seen, and several
/// values of a header are seen joined by commas, as A27 says.
fn header_matches(rule: &HeaderMatch, headers: &HeaderMap) -> bool {
    let values: Vec<&str> = if rule.name.ends_with("-bin") {
        Vec::new()
    } else {
        headers.get_all(rule.name.as_str()).iter().filter_map(|v| v.to_str().ok()).collect()
    };
    let value = (!values.is_empty()).then(|| values.join(","));
    let eq = |a: &str, b: &str, fold: bool| if fold { a.eq_ignore_ascii_case(b) } else { a == b };
    let lower = |s: &str, fold: bool| if fold { s.to_ascii_lowercase() } else { s.to_owned() };
    let held = match (&rule.rule, value.as_deref()) {
        (HeaderRule::Present(present), value) => value.is_some() == *present,
        (_, None) => false,
        (HeaderRule::Exact(want, fold), Some(v)) => eq(v, want, *fold),
        (HeaderRule::Prefix(want, fold), Some(v)) => lower(v, *fold).starts_with(&lower(want, *fold)),
        (HeaderRule::Suffix(want, fold), Some(v)) => lower(v, *fold).ends_with(&lower(want, *fold)),
        (HeaderRule::Contains(want, fold), Some(v)) => lower(v, *fold).contains(&lower(want, *fold)),
        (HeaderRule::Regex(pattern), Some(v)) => pattern.matches(v),
        (HeaderRule::Range(start, end), Some(v)) => v.parse::<i64>().is_ok_and(|n| *start <= n && n < *end),
    };
    held != rule.invert
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::xds::Pattern;

    fn route(path: PathMatch, headers: Vec<HeaderMatch>) -> RouteMatch {
        RouteMatch { path, case_sensitive: true, headers, fraction_per_million: None }
    }

    fn header(rule: HeaderRule, invert: bool) -> HeaderMatch {
        HeaderMatch { name: "x-shard".into(), rule, invert }
    }

    #[test]
    fn the_path_rules_match_as_a27_says() {
        let none = HeaderMap::new();
        let prefix = route(PathMatch::Prefix("/search.v1.".into()), vec![]);
        assert!(matches(&prefix, "/search.v1.SearchService/Search", &none));
        assert!(!matches(&prefix, "/other/Search", &none));
        let mut folded = route(PathMatch::Exact("/A/b".into()), vec![]);
        assert!(!matches(&folded, "/a/B", &none));
        folded.case_sensitive = false;
        assert!(matches(&folded, "/a/B", &none));
        let regex = route(PathMatch::Regex(Pattern::new("/s/S.*").expect("a regex")), vec![]);
        assert!(matches(&regex, "/s/Search", &none));
        assert!(!matches(&regex, "/s/Other", &none));
    }

    #[test]
    fn header_rules_see_joined_values_and_never_binary_headers() {
        let mut headers = HeaderMap::new();
        headers.append("x-shard", "7".parse().expect("a value"));
        let path = PathMatch::Prefix(String::new());
        let exact =
            |want: &str, invert| route(path.clone(), vec![header(HeaderRule::Exact(want.into(), false), invert)]);
        assert!(matches(&exact("7", false), "/", &headers));
        assert!(!matches(&exact("8", false), "/", &headers));
        assert!(matches(&exact("8", true), "/", &headers));
        headers.append("x-shard", "9".parse().expect("a value"));
        assert!(matches(&exact("7,9", false), "/", &headers));
        let range = route(path.clone(), vec![header(HeaderRule::Range(0, 8), false)]);
        assert!(!matches(&range, "/", &headers));
        let absent = route(path.clone(), vec![header(HeaderRule::Present(false), false)]);
        assert!(matches(&absent, "/", &HeaderMap::new()));
        let mut binary = HeaderMap::new();
        binary.append("x-shard-bin", "AA==".parse().expect("a value"));
        let rule = HeaderMatch { name: "x-shard-bin".into(), rule: HeaderRule::Present(true), invert: false };
        assert!(!matches(&route(path, vec![rule]), "/", &binary));
    }

    #[test]
    fn a_weighted_cluster_takes_its_share_of_the_line() {
        let clusters = vec![
            WeightedCluster { name: "main".into(), weight: 80 },
            WeightedCluster { name: "canary".into(), weight: 20 },
        ];
        assert_eq!(pick_weighted(&clusters, 0), Some("main"));
        assert_eq!(pick_weighted(&clusters, 79), Some("main"));
        assert_eq!(pick_weighted(&clusters, 80), Some("canary"));
        assert_eq!(pick_weighted(&clusters, 199), Some("canary"));
        assert_eq!(pick_weighted(&[], 3), None);
    }
}
