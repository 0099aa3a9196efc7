//! The channel of an `xds:///NAME` target (gRFC A27): the xDS client is
//! started on the first call, `xds_watch.rs` follows NAME's resources, and
//! every endpoint of every cluster the routes name is a subchannel of the
//! channel, of the same kind as any other target's (keepalive, health
//! checking, outlier detection, tokens). Each call is routed by its path
//! and headers to a cluster (`xds_routes.rs`), and within the cluster goes
//! to the first priority that has an endpoint READY or still connecting,
//! a locality picked by weight among those with a READY endpoint, and
//! within it the endpoint the cluster's policy picks (`xds_policy.rs`:
//! round robin, or weighted round robin by load reports), or under ring
//! hash the first READY endpoint from the call's hash on the priority's
//! ring, whatever its locality (`ring_hash.rs`). While the resources are awaited calls wait, as they
//! wait for a READY subchannel; a resource that does not exist fails them
//! UNAVAILABLE, naming it.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, PoisonError};

use super::balancer::Balancer;
use super::dial::Address;
use super::picker::{self, LoadBalancing, Pick};
use super::ring_hash;
use super::subchannel::Subchannel;
use super::xds_routes::{ClusterPolicy, ClusterView, Priorities, Routed, XdsView};
use super::xds_state::{CallRoute, XdsChannel, XdsPick, unavailable};
use super::xds_watch;
use crate::client::Error;
use crate::client::xds::{DropOverload, DumpEntry, XdsClient, XdsSettings};

impl Balancer {
    /// Starts the xDS client and the task following the target's
    /// resources, once.
    pub(super) fn start_xds(self: &Arc<Self>, xds: &XdsChannel) {
        if xds.client.get().is_some() {
            return;
        }
        let settings = XdsSettings { connect_timeout: self.settings.connect_timeout, ..XdsSettings::default() };
        let client = xds.client.get_or_init(|| XdsClient::start(xds.bootstrap.clone(), &settings)).clone();
        let listener = xds.bootstrap.listener_name(&xds.name);
        let me = Arc::downgrade(self);
        let follow = xds_watch::follow(client, listener, xds.name.clone(), move |view| {
            me.upgrade().is_some_and(|balancer| {
                balancer.publish(view);
                true
            })
        });
        *xds.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(tokio::spawn(follow));
    }

    /// Takes a new configuration: every cluster's endpoints become the
    /// subchannels (kept ones keep theirs), then the calls see it.
    fn publish(self: &Arc<Self>, view: XdsView) {
        let Some(xds) = &self.xds else { return };
        let mut addresses: Vec<Address> = Vec::new();
        if let XdsView::Ready { clusters, .. } = &view {
            for address in clusters.values().flat_map(ClusterView::addresses) {
                if !addresses.contains(address) {
                    addresses.push(address.clone());
                }
            }
        }
        // `client -v` shows each change.
        tracing::debug!(target = %self.target, ?view, "xDS configuration");
        self.weigh_by(xds, &view);
        self.update(addresses);
        for sub in self.current().iter() {
            self.follow_load_reports(sub);
        }
        self.follow_outliers(xds, &view);
        *xds.view.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(view);
        self.reweigh_xds(xds);
        self.changes.send_modify(|n| *n += 1);
    }

    /// The pick of a call routed by xDS (see the module documentation).
    pub(super) fn pick_xds(&self, xds: &XdsChannel, route: &mut CallRoute, tried: &[Arc<Subchannel>]) -> XdsPick {
        let view = xds.view();
        let subchannels = self.current();
        let Some(path) = route.path else {
            return match &*view {
                XdsView::Waiting => XdsPick::Wait,
                XdsView::Failed(why) => XdsPick::Fail(unavailable(why.clone())),
                XdsView::Ready { clusters, .. } => {
                    let pick = picker::pick(LoadBalancing::RoundRobin, &subchannels, &xds.cursor, tried);
                    match pick {
                        // Endpoints may yet come with a cluster awaited.
                        Pick::Fail if clusters.values().any(|c| *c == ClusterView::Waiting) => XdsPick::Wait,
                        pick => settle(pick, || picker::unreachable(&self.target, &subchannels)),
                    }
                }
            };
        };
        if route.cluster.is_none() {
            match view.route(path, &route.headers) {
                Routed::Wait => return XdsPick::Wait,
                Routed::Fail(why) => return XdsPick::Fail(unavailable(why)),
                Routed::Cluster(name, cap, retry, hashing) => {
                    route.cluster = Some(name.to_owned());
                    route.cap = cap;
                    route.retry = retry.cloned();
                    route.hash = ring_hash::request_hash(hashing, &route.headers, xds.channel_id);
                }
            }
        }
        let name = route.cluster.clone().unwrap_or_default();
        match view.cluster(&name) {
            None | Some(ClusterView::Waiting) => XdsPick::Wait,
            Some(ClusterView::Failed(why)) => XdsPick::Fail(unavailable(why.clone())),
            Some(ClusterView::Ready { priorities, max_requests, policy, drops, .. }) => {
                if let Some(err) = dropped(&name, drops) {
                    return XdsPick::Drop(err);
                }
                if let Err(err) = route.hold(xds, &name, *max_requests) {
                    return XdsPick::Drop(err);
                }
                let choose = |priority, localities: &[Locality]| {
                    choose(xds, (&name, policy), route.hash, tried, priority, localities)
                };
                pick_by_priority(priorities, &subchannels, &xds.cursor, tried, choose).unwrap_or_else(|| {
                    let cause = format!("no endpoint of xDS cluster {name:?} can be reached");
                    XdsPick::Fail(Error::Connect { target: self.target.to_string(), cause })
                })
            }
        }
    }

    /// The subchannels a call may go to: under xDS, those of its cluster.
    pub(super) fn candidates(&self, route: &CallRoute) -> Arc<[Arc<Subchannel>]> {
        match route.cluster.as_deref() {
            Some(name) if self.xds.is_some() => self.in_cluster(name),
            _ => self.current(),
        }
    }

    /// The subchannels of xDS cluster `name`'s endpoints.
    pub(super) fn in_cluster(&self, name: &str) -> Arc<[Arc<Subchannel>]> {
        let all = self.current();
        let Some(xds) = &self.xds else { return all };
        let view = xds.view();
        let Some(cluster) = view.cluster(name) else { return Arc::from(Vec::new()) };
        let mine: Vec<Arc<Subchannel>> = cluster.addresses().filter_map(|a| find(&all, a)).collect();
        Arc::from(mine)
    }

    /// What the xDS client holds (grpc's CSDS); `None` for a target that
    /// is not `xds:///`, or before its first call.
    pub(in crate::client) fn xds_dump(&self) -> Option<Vec<DumpEntry>> {
        self.xds.as_ref().and_then(|xds| xds.client.get()).map(XdsClient::dump)
    }
}

/// A27's drops: each category in turn drops its share of the calls, which
/// fail UNAVAILABLE naming it (as a circuit breaker's, never retried).
fn dropped(cluster: &str, drops: &[DropOverload]) -> Option<Error> {
    let drop = drops.iter().find(|drop| fastrand::u32(..1_000_000) < drop.per_million)?;
    let percent = f64::from(drop.per_million) / 10_000.0;
    Some(unavailable(format!(
        "dropped by xDS cluster {cluster:?}'s drop_overloads (category {:?}: {percent}% of calls)",
        drop.category
    )))
}

/// A pick made into an [`XdsPick`].
fn settle(pick: Pick<'_>, failed: impl FnOnce() -> Error) -> XdsPick {
    match pick {
        Pick::Ready(sub) => XdsPick::Ready(Arc::clone(sub)),
        Pick::Wait => XdsPick::Wait,
        Pick::Fail => XdsPick::Fail(failed()),
    }
}

fn find(subchannels: &[Arc<Subchannel>], address: &Address) -> Option<Arc<Subchannel>> {
    subchannels.iter().find(|sub| &sub.address == address).cloned()
}

/// A locality's weight and its endpoints' subchannels.
type Locality = (u32, Vec<Arc<Subchannel>>);

/// The first priority with an endpoint READY or still connecting takes
/// the call: the endpoint `choose` picks of it (given the priority's index
/// and its localities), else the first READY one. `None`: every priority
/// has failed.
fn pick_by_priority(
    priorities: &Priorities,
    subchannels: &[Arc<Subchannel>],
    cursor: &AtomicUsize,
    tried: &[Arc<Subchannel>],
    choose: impl Fn(usize, &[Locality]) -> Option<Arc<Subchannel>>,
) -> Option<XdsPick> {
    for (priority, localities) in priorities.iter().enumerate() {
        let localities: Vec<Locality> = localities
            .iter()
            .map(|(weight, addresses)| (*weight, addresses.iter().filter_map(|a| find(subchannels, a)).collect()))
            .collect();
        if let Some(sub) = choose(priority, &localities) {
            return Some(XdsPick::Ready(sub));
        }
        let all: Vec<Arc<Subchannel>> = localities.into_iter().flat_map(|(_, subs)| subs).collect();
        match picker::pick(LoadBalancing::RoundRobin, &all, cursor, tried) {
            Pick::Ready(sub) => return Some(XdsPick::Ready(Arc::clone(sub))),
            Pick::Wait => return Some(XdsPick::Wait),
            Pick::Fail => {}
        }
    }
    None
}

/// The endpoint of priority `priority` that `cluster`'s policy picks for a
/// call with `hash` that went to `tried` already, if one is READY: on the
/// ring, the first READY one from the call's hash; otherwise a locality by
/// weight among those with a READY endpoint, and within it the scheduler's
/// pick under weighted round robin, round robin otherwise or while it has
/// none.
fn choose(
    xds: &XdsChannel,
    (cluster, policy): (&str, &ClusterPolicy),
    hash: u64,
    tried: &[Arc<Subchannel>],
    priority: usize,
    localities: &[Locality],
) -> Option<Arc<Subchannel>> {
    if let ClusterPolicy::RingHash(rings) = policy {
        let subs: Vec<&Arc<Subchannel>> = localities.iter().flat_map(|(_, subs)| subs).collect();
        let ready =
            |address: &Address| subs.iter().find(|s| &s.address == address && picker::ready_elsewhere(s, tried));
        return rings.get(priority)?.from(hash).find_map(ready).map(|sub| Arc::clone(sub));
    }
    let ready: Vec<(usize, u32, &[Arc<Subchannel>])> = localities
        .iter()
        .enumerate()
        .filter(|(_, (weight, subs))| *weight > 0 && subs.iter().any(|sub| picker::ready_elsewhere(sub, tried)))
        .map(|(locality, (weight, subs))| (locality, *weight, subs.as_slice()))
        .collect();
    let total: u64 = ready.iter().map(|(_, weight, _)| u64::from(*weight)).sum();
    if total == 0 {
        return None;
    }
    let mut point = fastrand::u64(..total);
    for (locality, weight, subs) in ready {
        if point < u64::from(weight) {
            let fresh =
                |sub: &Arc<Subchannel>| picker::ready_elsewhere(sub, tried) && subs.iter().any(|s| Arc::ptr_eq(s, sub));
            let scheduled = match policy {
                ClusterPolicy::Weighted(_) => xds.policies.pick(cluster, (priority, locality), fresh),
                _ => None,
            };
            return scheduled.or_else(|| picker::choose_ready(subs, &xds.cursor, tried).cloned());
        }
        point -= u64::from(weight);
    }
    None
}
