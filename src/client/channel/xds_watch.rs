//! The task of an `xds:///NAME` channel that follows its resources (gRFC
//! A27): the Listener NAME, its RouteConfiguration (by RDS, or inline),
//! every Cluster its routes name, and each one's endpoints (EDS), watched
//! through the [`XdsClient`], each subscribed while it is needed and
//! dropped when it no longer is. After every change it hands the channel
//! a new [`XdsView`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::future::select_all;

use super::dial::Address;
use super::xds_policy::{outlier_of, policy_of};
use super::xds_routes::{ClusterView, XdsView};
use crate::client::xds::{
    Endpoints, Resource, ResourceType, ResourceWatch, RouteAction, RouteSource, Status, Watched, XdsClient,
};

/// Follows `listener` until `publish` says the channel is gone (or the
/// client's task ends): the virtual host is the one for `authority`.
pub(super) async fn follow(client: XdsClient, listener: String, authority: String, publish: impl Fn(XdsView) -> bool) {
    let mut walk = Walk { client, watches: BTreeMap::new(), needed: BTreeSet::new() };
    loop {
        let view = walk.view(&listener, &authority);
        let needed = std::mem::take(&mut walk.needed);
        walk.watches.retain(|key, _| needed.contains(key));
        if !publish(view) {
            return;
        }
        let changes = walk.watches.values_mut().map(|watch| Box::pin(watch.receiver().changed()));
        let (changed, _, _) = select_all(changes).await;
        if changed.is_err() {
            return;
        }
    }
}

/// The watches held, and those the last walk needed.
struct Walk {
    client: XdsClient,
    watches: BTreeMap<(ResourceType, String), ResourceWatch>,
    needed: BTreeSet<(ResourceType, String)>,
}

impl Walk {
    /// A resource's state now, watched from now on.
    fn state(&mut self, kind: ResourceType, name: &str) -> Watched {
        let key = (kind, name.to_owned());
        self.needed.insert(key.clone());
        let client = &self.client;
        let watch = self.watches.entry(key).or_insert_with(|| client.watch(kind, name));
        watch.receiver().borrow_and_update().clone()
    }

    /// The view from the Listener down.
    fn view(&mut self, listener: &str, authority: &str) -> XdsView {
        let found = match present(&self.state(ResourceType::Listener, listener), "Listener", listener) {
            Err(why) => return XdsView::Failed(why),
            Ok(None) => return XdsView::Waiting,
            Ok(Some(found)) => found,
        };
        let Resource::Listener(found) = &*found else { return XdsView::Failed(format!("{listener} is no Listener")) };
        let config = match &found.routes {
            RouteSource::Inline(config) => config.clone(),
            RouteSource::Rds(name) => {
                let state = self.state(ResourceType::RouteConfiguration, name);
                match present(&state, "RouteConfiguration", name) {
                    Err(why) => return XdsView::Failed(why),
                    Ok(None) => return XdsView::Waiting,
                    Ok(Some(found)) => match &*found {
                        Resource::RouteConfiguration(config) => config.clone(),
                        _ => return XdsView::Failed(format!("{name} is no RouteConfiguration")),
                    },
                }
            }
        };
        let Some(host) = config.virtual_host(authority) else {
            return XdsView::Failed(format!("no virtual host of Listener {listener:?}'s routes is for {authority}"));
        };
        let mut clusters = BTreeMap::new();
        for route in &host.routes {
            let RouteAction::Forward(forward) = &route.action else { continue };
            for cluster in &forward.clusters {
                if !clusters.contains_key(&cluster.name) {
                    let view = self.cluster(&cluster.name);
                    clusters.insert(cluster.name.clone(), view);
                }
            }
        }
        XdsView::Ready { routes: host.routes.clone(), clusters, cap: found.max_stream_duration }
    }

    /// One cluster and its endpoints.
    fn cluster(&mut self, name: &str) -> ClusterView {
        let found = match present(&self.state(ResourceType::Cluster, name), "Cluster", name) {
            Err(why) => return ClusterView::Failed(why),
            Ok(None) => return ClusterView::Waiting,
            Ok(Some(found)) => found,
        };
        let Resource::Cluster(cluster) = &*found else { return ClusterView::Failed(format!("{name} is no Cluster")) };
        let service = if cluster.eds_service_name.is_empty() { name } else { cluster.eds_service_name.as_str() };
        let state = self.state(ResourceType::ClusterLoadAssignment, service);
        match present(&state, "ClusterLoadAssignment", service) {
            Err(why) => ClusterView::Failed(why),
            Ok(None) => ClusterView::Waiting,
            Ok(Some(found)) => match &*found {
                Resource::ClusterLoadAssignment(endpoints) => {
                    let priorities = usable(endpoints);
                    let weights: HashMap<Address, u32> = endpoints
                        .priorities
                        .iter()
                        .flatten()
                        .flat_map(|locality| &locality.endpoints)
                        .map(|e| (Address::Tcp(e.address), e.weight))
                        .collect();
                    let weight = |address: &Address| weights.get(address).copied().unwrap_or(1);
                    ClusterView::Ready {
                        policy: policy_of(&cluster.lb_policy, &priorities, weight),
                        priorities,
                        max_requests: cluster.max_requests,
                        outlier: cluster.outlier_detection.as_ref().map(outlier_of),
                        drops: endpoints.drop_overloads.clone(),
                    }
                }
                _ => ClusterView::Failed(format!("{service} is no ClusterLoadAssignment")),
            },
        }
    }
}

/// The resource of `state`: `None` while awaited; an error naming it when
/// it does not exist, or was refused with nothing good before it.
fn present(state: &Watched, what: &str, name: &str) -> Result<Option<Arc<Resource>>, String> {
    match (state.status, &state.resource) {
        (Status::DoesNotExist, _) => Err(format!("xDS {what} {name:?} does not exist")),
        (_, Some(resource)) => Ok(Some(Arc::clone(resource))),
        (Status::Nacked, None) => {
            Err(format!("xDS {what} {name:?} was refused: {}", state.error.as_deref().unwrap_or("invalid")))
        }
        (_, None) => Ok(None),
    }
}

/// The endpoints calls may go to (UNKNOWN or HEALTHY, A27), by priority
/// and locality; a locality or a priority left with none is left out.
fn usable(endpoints: &Endpoints) -> Vec<Vec<(u32, Vec<Address>)>> {
    endpoints
        .priorities
        .iter()
        .map(|localities| {
            localities
                .iter()
                .map(|locality| {
                    let addresses =
                        locality.endpoints.iter().filter(|e| e.health.usable()).map(|e| Address::Tcp(e.address));
                    (locality.weight, addresses.collect::<Vec<_>>())
                })
                .filter(|(_, addresses)| !addresses.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|localities| !localities.is_empty())
        .collect()
}
