//! The channel over a target's addresses, as grpc builds it: the name is
//! resolved to every address it has (`resolver.rs`), each address is a
//! subchannel with a connection and a state of its own (`subchannel.rs`),
//! and a policy picks the subchannel of each call (`picker.rs`).
//!
//! A subchannel that fails to connect is in TRANSIENT_FAILURE, skipped while
//! others can be used, and dialed again in the background after a backoff
//! of its own (the client's `--retry-*` backoff, growing per failure) until
//! it is READY again; under round robin every address is connected from
//! the first call. The channel's state is grpc's aggregate: READY if any
//! subchannel is, else CONNECTING if any is, else IDLE if any is, else
//! TRANSIENT_FAILURE. A DNS name is resolved again when a connection is
//! lost (at most once a second) and every 30 s otherwise, so that replicas
//! that come and go are followed: new addresses get subchannels, gone ones
//! lose theirs, kept ones keep theirs (with their connection, health and
//! ejection, as gRFC A50 keeps an address's).
//!
//! tonic balances with `Channel::balance_channel` (tower's power of two
//! choices over a discovery stream): it has no pick_first, no per-address
//! connectivity state, no health or ejection, and does not say which
//! address a call went to, which a retry or a hedge needs to go elsewhere.
//! So the channel is built here from one tonic `Channel` per address.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::sync::{Notify, watch};
use tonic::transport::Endpoint;

use super::connectivity::{Connectivity, ConnectivityState};
use super::dial::{self, Address, Keepalive, TrackingConnector};
use super::edf::Schedule;
use super::events::{Event, SubchannelWatcher, Watchers};
use super::health::Health;
use super::outlier::OutlierDetection;
use super::picker::{self, LoadBalancing, Pick};
use super::preface::PrefaceConnector;
use super::resolver;
use super::secure::{self, SecureConnector};
use super::subchannel::{Backend, Subchannel};
use super::target::Target;
use super::weights::{WeightSettings, WeightsDue};
use super::xds_state::{CallRoute, XdsChannel, XdsPick};
use crate::client::Error;
use crate::client::backoff::Backoff;
use crate::client::stats::Stats;
use crate::client::token::BearerToken;
use crate::client::xds::Bootstrap;
use crate::tls::ClientTls;

/// What the channel takes of the client's options.
#[derive(Debug, Clone)]
pub(in crate::client) struct ChannelSettings {
    /// How long one dial (and one resolution) may take.
    pub(in crate::client) connect_timeout: Duration,
    /// The backoff between a subchannel's dials, and its health watches.
    pub(in crate::client) backoff: Backoff,
    /// TLS for `https://` targets.
    pub(in crate::client) tls: ClientTls,
    /// The policy.
    pub(in crate::client) lb: LoadBalancing,
    /// Client keepalive; `None`: no pings.
    pub(in crate::client) keepalive: Option<Keepalive>,
    /// The service whose health is watched (under round robin); `None`: off.
    pub(in crate::client) health_check: Option<String>,
    /// Outlier detection; `None`: off.
    pub(in crate::client) outlier_detection: Option<OutlierDetection>,
    /// Weighted round robin's settings (used under it only).
    pub(in crate::client) weights: WeightSettings,
    /// The token health watches carry; `None`: none.
    pub(in crate::client) token: Option<BearerToken>,
    /// The xDS bootstrap; `None`: the environment's.
    pub(in crate::client) xds_bootstrap: Option<Bootstrap>,
}

/// How long a pick waits for a change before it looks again (and makes
/// sure again that a subchannel is being dialed): a change missed between
/// two looks costs a call this, never its deadline.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

/// Waits for a change of the channel's subchannels, or [`LOOK_AGAIN`];
/// `false` when the channel is gone.
async fn changed(changes: &mut watch::Receiver<u64>) -> bool {
    match tokio::time::timeout(LOOK_AGAIN, changes.changed()).await {
        Ok(changed) => changed.is_ok(),
        Err(_) => true,
    }
}

/// The channel: see the module documentation.
pub(in crate::client) struct Balancer {
    pub(super) target: Target,
    endpoint: Endpoint,
    /// The TLS settings and the server's name, for `https://` targets.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub(super) settings: ChannelSettings,
    /// The subchannels, in the resolver's order; swapped whole when the name
    /// resolves to other addresses. Empty until the first resolution.
    pub(super) subchannels: RwLock<Arc<[Arc<Subchannel>]>>,
    /// The policy in effect, decided when the target first resolved.
    pub(super) policy: OnceLock<LoadBalancing>,
    /// Counts every change of a subchannel's state or of the subchannels:
    /// picks waiting for a READY subchannel wait for it.
    pub(super) changes: watch::Sender<u64>,
    /// pick_first is dialing the addresses in order (gRFC A61).
    pub(super) connecting_first: AtomicBool,
    /// Round robin's position.
    cursor: AtomicUsize,
    /// The hedges' own turn, so that hedging leaves round robin's even.
    hedge_cursor: AtomicUsize,
    /// The channel's aggregate state.
    pub(super) channel: Connectivity,
    /// A connection was lost: resolve again.
    pub(super) lost: Arc<Notify>,
    /// The re-resolving task was started.
    pub(super) resolving: AtomicBool,
    /// Told of every event, as it happens (`client -v`).
    watchers: Watchers,
    /// The first call was picked: round robin has connected everything,
    /// health watches and the outlier sweep run.
    pub(super) started: AtomicBool,
    /// The client's counts: state changes and ejections are counted here.
    pub(super) stats: Arc<Stats>,
    /// Weighted round robin's scheduler, when it has one.
    pub(super) schedule: Schedule,
    /// When a new weight begins to count: the scheduler is made again then.
    pub(super) weights_due: Arc<WeightsDue>,
    /// An `xds:///` target's routes and clusters (`xds_channel.rs`).
    pub(super) xds: Option<XdsChannel>,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("target", &self.target)
            .field("subchannels", &self.current())
            .finish_non_exhaustive()
    }
}

impl Balancer {
    /// The channel for `target`; reports its aggregate state to `channel`
    /// and counts into `stats`.
    ///
    /// # Errors
    /// [`Error::Connect`] when the TLS settings are refused;
    /// [`Error::XdsBootstrap`] for an `xds:///` target without a bootstrap.
    pub(in crate::client) fn new(
        target: &Target,
        settings: ChannelSettings,
        channel: Connectivity,
        stats: Arc<Stats>,
    ) -> Result<Arc<Self>, Error> {
        let xds = XdsChannel::new(target, settings.xds_bootstrap.clone())?;
        let balancer = Arc::new(Self {
            target: target.clone(),
            endpoint: dial::endpoint(target, settings.keepalive),
            tls: secure::client_config(target, &settings.tls)?,
            settings,
            subchannels: RwLock::new(Arc::from(Vec::new())),
            policy: OnceLock::new(),
            changes: watch::Sender::new(0),
            connecting_first: AtomicBool::new(false),
            cursor: AtomicUsize::new(0),
            hedge_cursor: AtomicUsize::new(0),
            channel,
            lost: Arc::new(Notify::new()),
            resolving: AtomicBool::new(false),
            watchers: Watchers::default(),
            started: AtomicBool::new(false),
            stats,
            schedule: Schedule::default(),
            weights_due: Arc::default(),
            xds,
        });
        if let Some(addresses) = resolver::fixed(target) {
            balancer.update(addresses);
        }
        Ok(balancer)
    }

    /// The target, as the user wrote it.
    pub(in crate::client) fn target(&self) -> &Target {
        &self.target
    }

    /// The settings it was made with.
    pub(in crate::client) fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    /// The channel's aggregate state.
    pub(in crate::client) fn state(&self) -> ConnectivityState {
        self.channel.state()
    }

    /// The subchannels now.
    pub(super) fn current(&self) -> Arc<[Arc<Subchannel>]> {
        Arc::clone(&self.subchannels.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A READY subchannel, resolving the name first if it never was:
    /// waiting while none is READY but one may become so (see `picker.rs`),
    /// failing when none may, unless `wait_for_ready`. No call is counted:
    /// for a client that makes sure it can reach its server.
    ///
    /// # Errors
    /// [`Error::Connect`] when the name does not resolve, or every
    /// subchannel has failed (naming why).
    pub(in crate::client) async fn ready(self: &Arc<Self>, wait_for_ready: bool) -> Result<Arc<Subchannel>, Error> {
        self.wait_for_pick(&[], wait_for_ready, &mut CallRoute::any()).await
    }

    /// The subchannel for the next attempt of a call that already went to
    /// `tried`: one of the others if any is READY, else as
    /// [`Balancer::ready`]; counted as a call of that subchannel's. Under
    /// xDS, `route` says where the call goes (its cluster, once chosen).
    ///
    /// # Errors
    /// As [`Balancer::ready`].
    pub(in crate::client) async fn pick_avoiding(
        self: &Arc<Self>,
        tried: &[Arc<Subchannel>],
        wait_for_ready: bool,
        route: &mut CallRoute,
    ) -> Result<Arc<Subchannel>, Error> {
        let chosen = self.wait_for_pick(tried, wait_for_ready, route).await?;
        chosen.count_call();
        Ok(chosen)
    }

    /// The policy's pick, once there is one.
    async fn wait_for_pick(
        self: &Arc<Self>,
        tried: &[Arc<Subchannel>],
        wait_for_ready: bool,
        route: &mut CallRoute,
    ) -> Result<Arc<Subchannel>, Error> {
        let mut changes = self.changes.subscribe();
        loop {
            let subchannels = self.subchannels().await?;
            if let Some(xds) = &self.xds {
                match self.pick_xds(xds, route, tried) {
                    XdsPick::Ready(chosen) => return Ok(chosen),
                    XdsPick::Drop(err) => return Err(err),
                    XdsPick::Fail(err) if !wait_for_ready => return Err(err),
                    XdsPick::Wait | XdsPick::Fail(_) => self.connect_for_picks(tried),
                }
                if !changed(&mut changes).await {
                    return Err(picker::unreachable(&self.target, &subchannels));
                }
                continue;
            }
            if let Some(chosen) = self.pick_weighted(tried) {
                return Ok(chosen);
            }
            match picker::pick(self.policy(), &subchannels, &self.cursor, tried) {
                Pick::Ready(chosen) => return Ok(Arc::clone(chosen)),
                Pick::Fail if !wait_for_ready => return Err(picker::unreachable(&self.target, &subchannels)),
                Pick::Wait | Pick::Fail => self.connect_for_picks(tried),
            }
            // A subchannel changed state, or the addresses changed.
            if !changed(&mut changes).await {
                return Err(picker::unreachable(&self.target, &subchannels));
            }
        }
    }

    /// The policy calls are picked by: the one asked for, `auto` made
    /// `round_robin` or `pick_first` when the target first resolved.
    pub(in crate::client) fn policy(&self) -> LoadBalancing {
        self.policy.get().copied().unwrap_or(self.settings.lb.for_addresses(1))
    }

    /// Why no subchannel is READY now, for a call that waited for one until
    /// its deadline.
    pub(in crate::client) fn why_not_ready(&self) -> String {
        picker::why_not_ready(&self.current())
    }

    /// A READY subchannel the call has not been to, for a hedge; none when
    /// there is none (a hedge to where the call already waits is no hedge).
    /// Under pick_first, which keeps one connection, none may be READY: the
    /// next address is dialed for the hedge to follow, so that a call stuck
    /// on a server that stopped answering fails over within its deadline.
    pub(in crate::client) fn pick_hedge(
        self: &Arc<Self>,
        tried: &[Arc<Subchannel>],
        route: &CallRoute,
    ) -> Option<Arc<Subchannel>> {
        let subchannels = self.candidates(route);
        let Some(chosen) = picker::choose_ready(&subchannels, &self.hedge_cursor, tried) else {
            if self.policy() == LoadBalancing::PickFirst {
                self.connect_for_picks(tried);
            }
            return None;
        };
        chosen.count_call();
        Some(Arc::clone(chosen))
    }

    /// Whether a READY subchannel the call has not been to is there.
    pub(in crate::client) fn has_ready(&self, tried: &[Arc<Subchannel>], route: &CallRoute) -> bool {
        self.candidates(route).iter().any(|sub| picker::ready_elsewhere(sub, tried))
    }

    /// How many subchannels there are.
    pub(in crate::client) fn len(&self) -> usize {
        self.current().len()
    }

    /// Every subchannel's address, state and calls.
    pub(in crate::client) fn backends(&self) -> Vec<Backend> {
        self.current().iter().map(|sub| sub.backend()).collect()
    }

    /// Calls `watcher` at every event from now on.
    pub(in crate::client) fn watch(&self, watcher: SubchannelWatcher) {
        self.watchers.add(watcher);
    }

    /// Tells every watcher of `event`.
    pub(in crate::client) fn emit(&self, event: &Event) {
        self.watchers.emit(event);
    }

    /// Whether anyone watches the events (so that they are only built then).
    pub(in crate::client) fn watched(&self) -> bool {
        self.watchers.any()
    }

    /// The subchannels, resolved and started on the first call.
    async fn subchannels(self: &Arc<Self>) -> Result<Arc<[Arc<Subchannel>]>, Error> {
        let mut subchannels = self.current();
        if let Some(xds) = &self.xds {
            self.start_xds(xds);
        } else if subchannels.is_empty() {
            let addresses = self.resolve().await?;
            self.update(addresses);
            self.start_resolving();
            subchannels = self.current();
        }
        if !self.started.swap(true, Ordering::AcqRel) {
            for sub in subchannels.iter() {
                self.start(sub);
            }
            self.start_sweeping();
            self.start_weighing();
        }
        Ok(subchannels)
    }

    /// The service whose health the subchannels watch, if they do: only
    /// under (weighted) round robin, as in grpc (pick_first leaves a connection only
    /// when it breaks, and a single call should not wait for a health answer).
    pub(super) fn health_service(&self) -> Option<&str> {
        self.settings.health_check.as_deref().filter(|_| self.policy().spreads())
    }

    /// A new subchannel for `address`, its transitions reported here.
    pub(super) fn subchannel(self: &Arc<Self>, address: Address) -> Arc<Subchannel> {
        let connectivity = Connectivity::default();
        let mut connector =
            TrackingConnector::new(address.clone(), connectivity.clone(), self.settings.connect_timeout);
        if let Some(keepalive) = self.settings.keepalive {
            connector = connector.with_keepalive_timeout(keepalive.timeout);
        }
        let connector = SecureConnector::new(connector, self.tls.clone(), connectivity.clone());
        let plaintext = self.tls.is_none();
        let connector =
            PrefaceConnector::new(connector, connectivity.clone(), self.settings.connect_timeout, plaintext);
        let channel = self.endpoint.clone().connect_with_connector_lazy(connector.clone());
        let health = if self.health_service().is_some() { Health::Unknown } else { Health::Unchecked };
        let renewal = Some((self.endpoint.clone(), connector));
        let sub = Arc::new(Subchannel::new(address, channel, renewal, connectivity, health));
        // Each change is seen as it happens, in order: the channel's state
        // goes through the same steps as its subchannels'.
        let (balancer, watched) = (Arc::downgrade(self), Arc::downgrade(&sub));
        sub.connectivity.on_change(Box::new(move |from, to, why| {
            if let (Some(balancer), Some(sub)) = (balancer.upgrade(), watched.upgrade()) {
                balancer.connection_changed(&sub, from, to, why);
            }
        }));
        sub
    }
}
