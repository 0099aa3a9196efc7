//! Where a route sends a call: a cluster or weighted clusters, its
//! timeouts (gRFC A31), its retry policy (gRFC A44) and hash policy (gRFC
//! A42); or nowhere (a non-forwarding action fails the call).

use std::time::Duration;

use serde::Serialize;
use tonic::Code;

use super::fields::{duration, duration_or};
use super::route_match::Pattern;
use crate::pb::envoy::config::route::v3 as rds;

/// What a route does with a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// Forwards it to a cluster.
    Forward(Forward),
    /// Fails it (a redirect, a direct response, a non-forwarding action:
    /// nothing a gRPC client can do).
    NonForwarding,
}

/// A forwarding route's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forward {
    /// The clusters and their weights (one cluster: weight 1).
    pub clusters: Vec<WeightedCluster>,
    /// `max_stream_duration.max_stream_duration`: the call's deadline cap.
    #[serde(serialize_with = "super::fields::human_opt")]
    pub max_stream_duration: Option<Duration>,
    /// `max_stream_duration.grpc_timeout_header_max`: the caller's timeout
    /// cap, which takes over from `max_stream_duration` when set.
    #[serde(serialize_with = "super::fields::human_opt")]
    pub grpc_timeout_header_max: Option<Duration>,
    /// The retry policy (the virtual host's when the route has none).
    pub retry_policy: Option<RetryPolicy>,
    /// The hash policies, for ring hash.
    pub hash_policies: Vec<HashPolicy>,
}

/// A cluster of a route and its weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightedCluster {
    /// The cluster's name.
    pub name: String,
    /// Its weight among the route's clusters.
    pub weight: u32,
}

/// A route's retry policy, as gRFC A44 reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// The status codes retried (of `retry_on`: cancelled,
    /// deadline-exceeded, internal, resource-exhausted, unavailable).
    #[serde(serialize_with = "code_names")]
    pub retry_on: Vec<Code>,
    /// `num_retries + 1`.
    pub max_attempts: u32,
    /// `retry_back_off.base_interval` (25 ms by default).
    #[serde(serialize_with = "super::fields::human")]
    pub base_interval: Duration,
    /// `retry_back_off.max_interval` (ten base intervals by default).
    #[serde(serialize_with = "super::fields::human")]
    pub max_interval: Duration,
}

fn code_names<S: serde::Serializer>(codes: &[Code], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(codes.iter().map(|c| crate::rpc::code_name(*c)))
}

/// One hash policy (gRFC A42).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HashPolicy {
    /// What is hashed.
    pub source: HashSource,
    /// A hash found here ends the list.
    pub terminal: bool,
}

/// What a hash policy hashes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashSource {
    /// A request header's value, rewritten by a regex when given.
    Header {
        /// The header's name, lowercase.
        name: String,
        /// The pattern and its substitution.
        rewrite: Option<(Pattern, String)>,
    },
    /// The channel's identity (`filter_state` key `io.grpc.channel_id`).
    ChannelId,
}

/// A `retry_back_off.base_interval` of 0 or a `num_retries` of 0 is an
/// error; unknown `retry_on` names are ignored; a policy with no known
/// code is no policy, as A44 says.
///
/// # Errors
/// Which field breaks which rule.
pub(super) fn decode_retry(policy: &rds::RetryPolicy) -> Result<Option<RetryPolicy>, String> {
    let mut retry_on = Vec::new();
    for name in policy.retry_on.split(',').map(|s| s.trim().to_ascii_lowercase()) {
        let code = match name.as_str() {
            "cancelled" => Code::Cancelled,
            "deadline-exceeded" => Code::DeadlineExceeded,
            "internal" => Code::Internal,
            "resource-exhausted" => Code::ResourceExhausted,
            "unavailable" => Code::Unavailable,
            _ => continue,
        };
        if !retry_on.contains(&code) {
            retry_on.push(code);
        }
    }
    let num_retries = policy.num_retries.unwrap_or(1);
    if num_retries == 0 {
        return Err("retry_policy.num_retries is 0: must be at least 1".to_owned());
    }
    let back_off = policy.retry_back_off.as_ref();
    let base_interval = match back_off.and_then(|b| b.base_interval.as_ref()) {
        None => Duration::from_millis(25),
        Some(d) => duration(d, "retry_policy.retry_back_off.base_interval")?,
    };
    if base_interval.is_zero() {
        return Err("retry_policy.retry_back_off.base_interval is 0: must be more".to_owned());
    }
    let max_field = "retry_policy.retry_back_off.max_interval";
    let max_interval = duration_or(back_off.and_then(|b| b.max_interval.as_ref()), max_field, base_interval * 10)?;
    if max_interval < base_interval {
        return Err(format!("{max_field} ({max_interval:?}) is below base_interval ({base_interval:?})"));
    }
    if retry_on.is_empty() {
        return Ok(None);
    }
    Ok(Some(RetryPolicy { retry_on, max_attempts: num_retries.saturating_add(1), base_interval, max_interval }))
}

/// Decodes a route's action; `None` for a route this client skips (a
/// cluster chosen by a header, or by a plugin).
///
/// # Errors
/// Weighted clusters whose weights are all 0 or overflow, a retry policy or
/// a duration that breaks a rule.
pub(super) fn decode_action(action: Option<&rds::route::Action>) -> Result<Option<RouteAction>, String> {
    use rds::route_action::ClusterSpecifier;
    let Some(rds::route::Action::Route(route)) = action else { return Ok(Some(RouteAction::NonForwarding)) };
    let clusters = match &route.cluster_specifier {
        Some(ClusterSpecifier::Cluster(name)) if name.is_empty() => return Err("cluster: empty name".to_owned()),
        Some(ClusterSpecifier::Cluster(name)) => vec![WeightedCluster { name: name.clone(), weight: 1 }],
        Some(ClusterSpecifier::WeightedClusters(weighted)) => weighted_clusters(weighted)?,
        #[allow(unreachable_patterns)]
        _ => return Ok(None),
    };
    let (max_stream_duration, grpc_timeout_header_max) = match &route.max_stream_duration {
        None => (None, None),
        Some(m) => (
            m.max_stream_duration.as_ref().map(|d| duration(d, "max_stream_duration")).transpose()?,
            m.grpc_timeout_header_max.as_ref().map(|d| duration(d, "grpc_timeout_header_max")).transpose()?,
        ),
    };
    let retry_policy = match &route.retry_policy {
        Some(policy) => decode_retry(policy)?,
        None => None,
    };
    let hash_policies =
        route.hash_policy.iter().filter_map(|h| hash_policy(h).transpose()).collect::<Result<_, _>>()?;
    Ok(Some(RouteAction::Forward(Forward {
        clusters,
        max_stream_duration,
        grpc_timeout_header_max,
        retry_policy,
        hash_policies,
    })))
}

fn weighted_clusters(weighted: &rds::WeightedCluster) -> Result<Vec<WeightedCluster>, String> {
    let mut total: u64 = 0;
    let mut clusters = Vec::with_capacity(weighted.clusters.len());
    for cluster in &weighted.clusters {
        let weight = cluster.weight.unwrap_or(0);
        if cluster.name.is_empty() {
            return Err("weighted_clusters: a cluster with no name".to_owned());
        }
        total += u64::from(weight);
        if weight > 0 {
            clusters.push(WeightedCluster { name: cluster.name.clone(), weight });
        }
    }
    if total == 0 {
        return Err("weighted_clusters: the weights add up to 0".to_owned());
    }
    if total > u64::from(u32::MAX) {
        return Err(format!("weighted_clusters: the weights add up to {total}, more than 2^32 - 1"));
    }
    Ok(clusters)
}

/// A rewrite's substitution, written for RE2 as Envoy and grpc read it
/// (`\1` a group, `\\` a backslash), as Rust's regex takes one (`${1}`,
/// `$$` a dollar sign).
fn substitution(re2: &str) -> String {
    let mut rust = String::with_capacity(re2.len());
    let mut chars = re2.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                chars.next();
                rust.push_str(&format!("${{{d}}}"));
            }
            ('\\', Some('\\')) => {
                chars.next();
                rust.push('\\');
            }
            ('$', _) => rust.push_str("$$"),
            (c, _) => rust.push(c),
        }
    }
    rust
}

/// A hash policy; `None` for one this client ignores (a cookie, a query
/// parameter, another filter state key), as A42 says.
fn hash_policy(h: &rds::route_action::HashPolicy) -> Result<Option<HashPolicy>, String> {
    use rds::route_action::hash_policy::PolicySpecifier as P;
    let source = match &h.policy_specifier {
        Some(P::Header(header)) => {
            let rewrite = match &header.regex_rewrite {
                Some(r) => {
                    let pattern = r.pattern.as_ref().map(|p| p.regex.as_str()).unwrap_or_default();
                    let pattern = Pattern::unanchored(pattern).map_err(|e| format!("hash_policy: {e}"))?;
                    Some((pattern, substitution(&r.substitution)))
                }
                None => None,
            };
            HashSource::Header { name: header.header_name.to_ascii_lowercase(), rewrite }
        }
        Some(P::FilterState(state)) if state.key == "io.grpc.channel_id" => HashSource::ChannelId,
        _ => return Ok(None),
    };
    Ok(Some(HashPolicy { source, terminal: h.terminal }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(retry_on: &str) -> rds::RetryPolicy {
        rds::RetryPolicy { retry_on: retry_on.to_owned(), ..Default::default() }
    }

    #[test]
    fn a_retry_policy_takes_a27_defaults_and_known_codes() {
        let policy = decode_retry(&retry("unavailable, Cancelled,5xx")).expect("valid").expect("a policy");
        assert_eq!(policy.retry_on, [Code::Unavailable, Code::Cancelled]);
        assert_eq!(policy.max_attempts, 2);
        assert_eq!(policy.base_interval, Duration::from_millis(25));
        assert_eq!(policy.max_interval, Duration::from_millis(250));
        assert_eq!(decode_retry(&retry("5xx,reset")), Ok(None));
    }

    #[test]
    fn a_retry_policy_breaking_a44_is_refused() {
        let mut zero_retries = retry("unavailable");
        zero_retries.num_retries = Some(0);
        assert!(decode_retry(&zero_retries).expect_err("refused").contains("num_retries is 0"));
        let mut zero_base = retry("unavailable");
        zero_base.retry_back_off = Some(rds::retry_policy::RetryBackOff {
            base_interval: Some(prost_types::Duration { seconds: 0, nanos: 0 }),
            max_interval: None,
        });
        assert!(decode_retry(&zero_base).expect_err("refused").contains("base_interval is 0"));
        let mut below = retry("unavailable");
        below.retry_back_off = Some(rds::retry_policy::RetryBackOff {
            base_interval: Some(prost_types::Duration { seconds: 2, nanos: 0 }),
            max_interval: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
        });
        assert!(decode_retry(&below).expect_err("refused").contains("is below base_interval"));
    }

    fn weighted(weights: &[u32]) -> rds::WeightedCluster {
        let clusters = weights
            .iter()
            .enumerate()
            .map(|(i, w)| rds::weighted_cluster::ClusterWeight { name: format!("c{i}"), weight: Some(*w) })
            .collect();
        rds::WeightedCluster { clusters }
    }

    #[test]
    fn weighted_clusters_must_add_up_to_something_that_fits() {
        let kept = weighted_clusters(&weighted(&[80, 0, 20])).expect("valid");
        assert_eq!(kept.iter().map(|c| (c.name.as_str(), c.weight)).collect::<Vec<_>>(), [("c0", 80), ("c2", 20)]);
        assert!(weighted_clusters(&weighted(&[0, 0])).expect_err("refused").contains("add up to 0"));
        assert!(weighted_clusters(&weighted(&[u32::MAX, 1])).expect_err("refused").contains("more than 2^32 - 1"));
    }

    #[test]
    fn other_actions_do_not_forward() {
        assert_eq!(decode_action(None), Ok(Some(RouteAction::NonForwarding)));
    }

    #[test]
    fn hash_policies_keep_headers_and_the_channel_id_only() {
        use rds::route_action::hash_policy::{FilterState, Header, PolicySpecifier as P};
        let policy = |p| rds::route_action::HashPolicy { policy_specifier: Some(p), terminal: true };
        let header = Header { header_name: "X-User".to_owned(), regex_rewrite: None };
        let kept = hash_policy(&policy(P::Header(header))).expect("valid").expect("kept");
        assert_eq!(kept.source, HashSource::Header { name: "x-user".to_owned(), rewrite: None });
        assert!(kept.terminal);
        let channel = FilterState { key: "io.grpc.channel_id".to_owned() };
        assert_eq!(
            hash_policy(&policy(P::FilterState(channel))).expect("valid").map(|h| h.source),
            Some(HashSource::ChannelId)
        );
        let other = FilterState { key: "other".to_owned() };
        assert_eq!(hash_policy(&policy(P::FilterState(other))), Ok(None));
    }

    #[test]
    fn a_rewrites_re2_groups_become_rusts() {
        assert_eq!(substitution(r"\2-\1 \\ $5"), "${2}-${1} \\ $$5");
        let pattern = Pattern::unanchored("(a+)(b)").expect("a regex");
        let rewritten = pattern.regex().replace_all("aab ab", substitution(r"\2\1").as_str());
        assert_eq!(rewritten, "baa ba", "every match, its groups swapped");
    }
}
