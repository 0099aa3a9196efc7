//! Ring hash (gRFC A42), an xDS cluster's policy for calls that should
//! keep going to the same endpoint: each endpoint has points on a ring of
//! 64-bit hashes in proportion to its weight, each call carries a hash
//! (from its route's hash policies: a header's value, or the channel's
//! identity; a random one when none applies), and the call goes to the
//! first endpoint at or after its hash round the ring that is READY.
//!
//! The ring is built as grpc builds it, so that grpc's clients and this one
//! send a given hash to the same endpoint: XXH64 (seed 0) of
//! `"{address}_{n}"` for each of an endpoint's points, its share of points
//! its weight's share, the ring's size `min_ring_size` scaled up until the
//! lightest endpoint has a point, at most `max_ring_size`, both capped at
//! 4,096 as grpc caps them by default.

use http::HeaderMap;
use xxhash_rust::xxh64::xxh64;

use super::dial::Address;
use crate::client::xds::{HashPolicy, HashSource};

/// grpc's default cap on both ring sizes.
pub(super) const RING_SIZE_CAP: u64 = 4096;

/// The points of a ring, in the order of their hashes.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Ring(Vec<(u64, Address)>);

impl Ring {
    /// The ring of `endpoints` with their weights (a locality's weight
    /// times the endpoint's), between `min` and `max` points.
    pub(super) fn new(endpoints: &[(Address, u64)], min: u64, max: u64) -> Self {
        let (min, max) = (min.clamp(1, RING_SIZE_CAP), max.clamp(1, RING_SIZE_CAP));
        let total: u64 = endpoints.iter().map(|(_, weight)| *weight).sum();
        if total == 0 {
            return Self::default();
        }
        #[allow(clippy::cast_precision_loss)] // weights far below 2^52
        let shares: Vec<f64> = endpoints.iter().map(|(_, weight)| *weight as f64 / total as f64).collect();
        let lightest = shares.iter().copied().filter(|share| *share > 0.0).fold(1.0, f64::min);
        #[allow(clippy::cast_precision_loss)] // ring sizes of at most 4,096
        let scale = ((lightest * min as f64).ceil() / lightest).min(max as f64);
        let mut points = Vec::new();
        let (mut made, mut due) = (0.0, 0.0);
        for ((address, _), share) in endpoints.iter().zip(&shares) {
            due += scale * share;
            let mut n = 0u64;
            while made < due {
                points.push((xxh64(format!("{address}_{n}").as_bytes(), 0), address.clone()));
                n += 1;
                made += 1.0;
            }
        }
        points.sort_by_key(|(hash, _)| *hash);
        Self(points)
    }

    /// The points' endpoints from the first whose hash is at least `hash`,
    /// once round the ring.
    pub(super) fn from(&self, hash: u64) -> impl Iterator<Item = &Address> {
        let start = self.0.partition_point(|(point, _)| *point < hash);
        let start = if start == self.0.len() { 0 } else { start };
        self.0[start..].iter().chain(&self.0[..start]).map(|(_, address)| address)
    }

    /// How many points it has.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// A call's hash (A42): each hash policy's in turn, combined as grpc
/// combines them (the hash so far rotated left by one, XOR the new one),
/// up to the first terminal policy that gave one; a random hash when none
/// gave any.
pub(super) fn request_hash(policies: &[HashPolicy], headers: &HeaderMap, channel_id: u64) -> u64 {
    let mut hash: Option<u64> = None;
    for policy in policies {
        let found = match &policy.source {
            HashSource::Header { name, rewrite } => header(headers, name).map(|value| {
                let value = match rewrite {
                    Some((pattern, substitution)) => {
                        pattern.regex().replace_all(&value, substitution.as_str()).into_owned()
                    }
                    None => value,
                };
                xxh64(value.as_bytes(), 0)
            }),
            HashSource::ChannelId => Some(channel_id),
        };
        if let Some(new) = found {
            hash = Some(hash.map_or(new, |hash| hash.rotate_left(1) ^ new));
            if policy.terminal {
                break;
            }
        }
    }
    hash.unwrap_or_else(|| fastrand::u64(..))
}

/// A header's values joined by commas; never a binary (`-bin`) one.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    if name.ends_with("-bin") {
        return None;
    }
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::client::xds::Pattern;

    fn address(port: u16) -> Address {
        Address::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn xxh64_is_the_one_grpc_uses() {
        // The reference vectors of XXH64 with seed 0.
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
    }

    #[test]
    fn each_endpoint_has_points_in_proportion_to_its_weight() {
        let ring = Ring::new(&[(address(1), 1), (address(2), 3)], 1024, 8 * 1024 * 1024);
        assert_eq!(ring.len(), 1024, "the minimum size already gives the lighter one points");
        let ones = ring.0.iter().filter(|(_, a)| *a == address(1)).count();
        assert_eq!(ones, 256);
        assert!(ring.0.windows(2).all(|pair| pair[0].0 <= pair[1].0), "in the order of their hashes");
        let capped = Ring::new(&[(address(1), 1), (address(2), 10_000)], 1024, 8 * 1024 * 1024);
        assert_eq!(capped.len(), 4096, "scaled up for the lightest, then capped at 4,096");
        assert!(capped.0.iter().any(|(_, a)| *a == address(1)));
        assert_eq!(Ring::new(&[], 1024, 4096).len(), 0);
    }

    #[test]
    fn a_hash_goes_to_the_first_point_at_or_after_it_round_the_ring() {
        let ring = Ring::new(&[(address(1), 1), (address(2), 1), (address(3), 1)], 3, 3);
        let points = ring.0.clone();
        let first = |hash| ring.from(hash).next().cloned();
        assert_eq!(first(points[1].0), Some(points[1].1.clone()), "a point's own hash");
        assert_eq!(first(points[1].0 - 1), Some(points[1].1.clone()));
        assert_eq!(first(points[2].0 + 1), Some(points[0].1.clone()), "past the last: round to the first");
        assert_eq!(ring.from(0).count(), 3, "once round");
        // The point of "127.0.0.1:1_0" is its own endpoint's.
        let own = xxh64(b"127.0.0.1:1_0", 0);
        assert_eq!(first(own), Some(address(1)));
    }

    #[test]
    fn a_calls_hash_comes_from_its_policies() {
        let header = |name: &str, terminal| HashPolicy {
            source: HashSource::Header { name: name.into(), rewrite: None },
            terminal,
        };
        let channel = HashPolicy { source: HashSource::ChannelId, terminal: false };
        let mut headers = HeaderMap::new();
        headers.append("x-user", "ann".parse().expect("a value"));
        assert_eq!(request_hash(&[header("x-user", false)], &headers, 7), xxh64(b"ann", 0));
        assert_eq!(request_hash(std::slice::from_ref(&channel), &headers, 7), 7);
        let both = request_hash(&[header("x-user", false), channel.clone()], &headers, 7);
        assert_eq!(both, xxh64(b"ann", 0).rotate_left(1) ^ 7, "combined");
        let first_only = request_hash(&[header("x-user", true), channel.clone()], &headers, 7);
        assert_eq!(first_only, xxh64(b"ann", 0), "a terminal policy that gave a hash ends the list");
        assert_eq!(request_hash(&[header("x-absent", true), channel], &headers, 7), 7, "a missing header gives none");
        headers.append("x-user", "bob".parse().expect("a value"));
        assert_eq!(request_hash(&[header("x-user", false)], &headers, 7), xxh64(b"ann,bob", 0));
        let rewrite = HashPolicy {
            source: HashSource::Header {
                name: "x-user".into(),
                rewrite: Some((Pattern::unanchored("b.b").expect("a regex"), "X".into())),
            },
            terminal: false,
        };
        assert_eq!(request_hash(&[rewrite], &headers, 7), xxh64(b"ann,X", 0), "every match rewritten");
    }
}
