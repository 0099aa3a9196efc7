//! What an `xds:///` channel holds besides its subchannels
//! ([`XdsChannel`]: the bootstrap, the xDS client, the configuration now,
//! each cluster's schedulers and sweeps in [`ClusterPolicies`]), and what
//! one call carries for its pick ([`CallRoute`]). The picks themselves are
//! `xds_channel.rs`, the clusters' policies `xds_policy.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HeaderValue};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::Status;

use super::dial::Address;
use super::edf::Schedule;
use super::outlier::OutlierDetection;
use super::subchannel::Subchannel;
use super::target::Target;
use super::weights::WeightSettings;
use super::xds_routes::XdsView;
use crate::client::Error;
use crate::client::xds::{Bootstrap, RetryPolicy, XdsClient};

/// What an `xds:///` channel holds besides the subchannels.
pub(super) struct XdsChannel {
    /// The target's name: the Listener's (through the bootstrap's
    /// template) and the virtual host's.
    pub(super) name: String,
    pub(super) bootstrap: Bootstrap,
    /// Started on the first call.
    pub(super) client: OnceLock<XdsClient>,
    /// The configuration now.
    pub(super) view: RwLock<Arc<XdsView>>,
    /// The task following the resources.
    pub(super) task: Mutex<Option<JoinHandle<()>>>,
    /// Round robin's position within localities.
    pub(super) cursor: AtomicUsize,
    /// The channel's identity, which a ring hash route may hash (A42).
    pub(super) channel_id: u64,
    /// The calls under way per cluster (A32).
    in_flight: Mutex<HashMap<String, Arc<AtomicU32>>>,
    /// Each cluster's weights and outlier detection.
    pub(super) policies: ClusterPolicies,
}

impl Drop for XdsChannel {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
    }
}

impl XdsChannel {
    /// The xDS part of `target`'s channel; `None` for a target that is not
    ///
    /// `xds:///`; `bootstrap`, else the environment's.
    ///
    /// # Errors
    /// [`Error::XdsBootstrap`] when there is no usable bootstrap.
    pub(super) fn new(target: &Target, bootstrap: Option<Bootstrap>) -> Result<Option<Self>, Error> {
        let Some(name) = target.xds_name() else { return Ok(None) };
        let bootstrap = match bootstrap {
            Some(bootstrap) => bootstrap,
            None => Bootstrap::from_env()
                .map_err(|err| Error::XdsBootstrap { target: target.to_string(), cause: err.to_string() })?,
        };
        Ok(Some(Self {
            name: name.to_owned(),
            bootstrap,
            client: OnceLock::new(),
            view: RwLock::default(),
            task: Mutex::new(None),
            cursor: AtomicUsize::new(0),
            channel_id: fastrand::u64(..),
            in_flight: Mutex::default(),
            policies: ClusterPolicies::default(),
        }))
    }

    /// The configuration now.
    pub(super) fn view(&self) -> Arc<XdsView> {
        Arc::clone(&self.view.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The per-cluster state an `xds:///` channel keeps for its policies.
#[derive(Debug, Default)]
pub(super) struct ClusterPolicies {
    /// Per weighted cluster, per priority, per locality: its scheduler.
    pub(super) schedules: RwLock<HashMap<String, Vec<Vec<Schedule>>>>,
    /// The settings each weighed endpoint's reports are read with.
    pub(super) weighing: RwLock<HashMap<Address, WeightSettings>>,
    /// Per cluster with outlier detection: its settings and its sweep.
    pub(super) sweeps: Mutex<HashMap<String, (OutlierDetection, JoinHandle<()>)>>,
}

impl Drop for ClusterPolicies {
    fn drop(&mut self) {
        for (_, task) in self.sweeps.get_mut().unwrap_or_else(PoisonError::into_inner).values() {
            task.abort();
        }
    }
}

impl ClusterPolicies {
    /// The weighted round robin settings of `address`'s cluster, if it is
    /// weighed.
    pub(super) fn weighing(&self, address: &Address) -> Option<WeightSettings> {
        self.weighing.read().unwrap_or_else(PoisonError::into_inner).get(address).copied()
    }

    /// The scheduler's next subchannel of locality `locality` of priority
    /// `priority` of `cluster` that `fresh` keeps; `None`: round robin
    /// decides (no weights known yet, or none kept).
    pub(super) fn pick(
        &self,
        cluster: &str,
        (priority, locality): (usize, usize),
        fresh: impl Fn(&Arc<Subchannel>) -> bool,
    ) -> Option<Arc<Subchannel>> {
        let schedules = self.schedules.read().unwrap_or_else(PoisonError::into_inner);
        schedules.get(cluster)?.get(priority)?.get(locality)?.pick(fresh)
    }

    /// The shortest update period of the weighted clusters of `view`; 1 s
    /// when none is weighted.
    pub(super) fn update_period(view: &XdsView) -> Duration {
        view.weighted().map(|(_, _, settings)| settings.update_period()).min().unwrap_or(Duration::from_secs(1))
    }
}

/// Where one call goes under xDS: its path and headers, and the cluster
/// it was routed to (once, for all its attempts).
#[derive(Debug)]
pub(in crate::client) struct CallRoute {
    /// The method's path; `None` for no call (making sure the channel
    /// can reach a server): any READY subchannel does.
    pub(super) path: Option<&'static str>,
    pub(super) headers: HeaderMap,
    pub(super) cluster: Option<String>,
    /// The route's cap on the call's deadline (A31).
    pub(super) cap: Option<Duration>,
    /// The route's retry policy (A44).
    pub(super) retry: Option<RetryPolicy>,
    /// The call's hash, for a ring hash cluster (A42).
    pub(super) hash: u64,
    /// The call counted under way in its cluster, until it ends.
    held: Option<InFlight>,
}

/// One call counted under way in its cluster; uncounted when dropped.
#[derive(Debug)]
struct InFlight(Arc<AtomicU32>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl CallRoute {
    /// The route of a call to `path` with the caller's `headers` and those
    /// every call carries.
    pub(in crate::client) fn call(path: &'static str, headers: &HeaderMap) -> Self {
        let mut headers = headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        Self { path: Some(path), headers, cluster: None, cap: None, retry: None, hash: 0, held: None }
    }

    /// No call: any READY subchannel.
    pub(in crate::client) fn any() -> Self {
        Self { path: None, headers: HeaderMap::new(), cluster: None, cap: None, retry: None, hash: 0, held: None }
    }

    /// The route's retry policy, which the call follows instead of the
    /// client's (gRFC A44).
    pub(in crate::client) fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }

    /// Counts the call under way in `cluster`, once.
    ///
    /// # Errors
    /// UNAVAILABLE when `max_requests` calls are under way there already
    /// (gRFC A32's circuit breaking).
    pub(super) fn hold(&mut self, xds: &XdsChannel, cluster: &str, max_requests: u32) -> Result<(), Error> {
        if self.held.is_some() {
            return Ok(());
        }
        let counter = {
            let mut in_flight = xds.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(in_flight.entry(cluster.to_owned()).or_default())
        };
        if counter.fetch_add(1, Ordering::AcqRel) >= max_requests {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(unavailable(format!(
                "xDS cluster {cluster:?} has its max_requests ({max_requests}) calls under way"
            )));
        }
        self.held = Some(InFlight(counter));
        Ok(())
    }

    /// The deadline of a call that `began` with `deadline`, capped by its
    /// xDS route (gRFC A31).
    pub(in crate::client) fn capped(&self, began: Instant, deadline: Instant) -> Instant {
        self.cap.map_or(deadline, |cap| deadline.min(began + cap))
    }
}

/// What an xDS pick found.
pub(super) enum XdsPick {
    /// This subchannel.
    Ready(Arc<Subchannel>),
    /// Wait for a change.
    Wait,
    /// Fail the call with this (unless it waits for ready).
    Fail(Error),
    /// Fail the call with this at once, even one that waits for ready, and
    /// never retry it: a drop (gRFC A32's circuit breaking).
    Drop(Error),
}

/// An UNAVAILABLE failure saying why.
pub(super) fn unavailable(why: String) -> Error {
    Error::Rpc(Status::unavailable(why))
}

impl std::fmt::Debug for XdsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdsChannel").field("name", &self.name).finish_non_exhaustive()
    }
}
