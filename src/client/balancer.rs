//! The channel over a target's addresses, as grpc builds it: the name is
//! resolved to every address it has, each address is a subchannel with a
//! connection and a connectivity state of its own, and a policy picks the
//! subchannel of each call:
//!
//! - `pick_first` (the default, as grpc's): the first address that works,
//!   in the resolver's order, until it stops working;
//! - `round_robin`: every READY subchannel in turn; all are connected from
//!   the first call.
//!
//! A subchannel that fails to connect is in TRANSIENT_FAILURE, skipped while
//! others can be used, and dialed again in the background after a backoff
//! of its own (the client's `--retry-*` backoff, growing per failure) until
//! it is READY again. The channel's state is grpc's aggregate: READY if any
//! subchannel is, else CONNECTING if any is, else IDLE if any is, else
//! TRANSIENT_FAILURE. A DNS name is resolved again when a connection is
//! lost (at most once a second) and every 30 s otherwise, so that replicas
//! that come and go are followed: new addresses get subchannels, gone ones
//! lose theirs.
//!
//! A subchannel's state, the one calls are picked by, is its connection's,
//! unless its health (`health.rs`) or an ejection (`outlier.rs`) says
//! otherwise; every change is an [`Event`], with its cause.
//!
//! tonic balances with `Channel::balance_channel` (tower's power of two
//! choices over a discovery stream): it has no pick_first, no per-address
//! connectivity state, no health or ejection, and does not say which
//! address a call went to, which a retry or a hedge needs to go elsewhere.
//! So the channel is built here from one tonic `Channel` per address.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use http::Uri;
use rustls::pki_types::ServerName;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::connectivity::{Address, TrackingConnector};
use super::health::{self, Health, HealthCell};
use super::outlier::{self, Counted, Tally, Verdict};
use super::secure::SecureConnector;
use super::stats::Stats;
use super::target::Kind;
use super::{ClientOptions, Connectivity, ConnectivityState, Error, Target};

/// How calls are spread over the subchannels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LoadBalancing {
    /// The first address that works (grpc's default).
    #[default]
    #[value(name = "pick_first")]
    PickFirst,
    /// Every READY address in turn.
    #[value(name = "round_robin")]
    RoundRobin,
}

/// How often a DNS name is resolved again while nothing is lost.
const RERESOLVE_EVERY: Duration = Duration::from_secs(30);
/// The least time between two resolutions of a name.
const MIN_RERESOLVE: Duration = Duration::from_secs(1);

/// One address with its connection.
pub(super) struct Subchannel {
    pub(super) address: Address,
    /// The transport new calls go on, and its number: a tonic channel that
    /// keeps one connection (and dials it again when it breaks). A
    /// connection that got a GOAWAY goes on serving its calls but takes no
    /// new one, and tonic keeps handing it new calls until it closes, so
    /// the first call it turns away makes the subchannel a new transport
    /// ([`Subchannel::renew`]), as a grpc subchannel makes a new one on a
    /// GOAWAY.
    transport: RwLock<(u64, Channel)>,
    /// What makes a new transport: the endpoint and the connector that
    /// reports to `connectivity` (none for a test's subchannel).
    renewal: Option<(Endpoint, SecureConnector<TrackingConnector>)>,
    /// The connection's own state (dialing, connected, closed).
    pub(super) connectivity: Connectivity,
    /// What the health service says of the connection (gRFC A17).
    health: HealthCell,
    /// Outlier detection's counts and ejection (gRFC A50).
    pub(super) outlier: Tally,
    /// The state calls are picked by and `-v` shows: the connection's,
    /// then the health's, then the ejection's.
    state: AtomicU8,
    /// Serialises the changes of `state`, so that they are reported in order.
    reporting: Mutex<()>,
    /// Calls (attempts) sent on it.
    calls: AtomicU64,
    /// Whether a background reconnection is under way.
    reconnecting: AtomicBool,
    /// Stops the health watch when the subchannel goes.
    watching: Mutex<Option<DropGuard>>,
}

impl fmt::Debug for Subchannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subchannel")
            .field("address", &self.address)
            .field("state", &self.state())
            .field("connection", &self.connectivity.state())
            .field("health", &self.health.get())
            .finish_non_exhaustive()
    }
}

impl Subchannel {
    fn new(address: Address, channel: Channel, connectivity: Connectivity, health: Health) -> Self {
        Self {
            address,
            transport: RwLock::new((0, channel)),
            renewal: None,
            state: AtomicU8::new(encode(connectivity.state())),
            connectivity,
            health: HealthCell::new(health),
            outlier: Tally::default(),
            reporting: Mutex::new(()),
            calls: AtomicU64::new(0),
            reconnecting: AtomicBool::new(false),
            watching: Mutex::new(None),
        }
    }

    /// The transport for a new call, and its number (for [`Subchannel::renew`]).
    pub(super) fn channel(&self) -> (u64, Channel) {
        self.transport.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The transport numbered `used` turned a call away because its
    /// connection is going away: new calls get a new transport (once per
    /// transport, however many calls it turned away). The old one serves
    /// the calls it has until they end.
    pub(super) fn renew(&self, used: u64) {
        let Some((endpoint, connector)) = &self.renewal else { return };
        let mut transport = self.transport.write().unwrap_or_else(PoisonError::into_inner);
        if transport.0 == used {
            *transport = (used + 1, endpoint.clone().connect_with_connector_lazy(connector.clone()));
        }
    }

    /// The state the policy picks by.
    pub(super) fn state(&self) -> ConnectivityState {
        decode(self.state.load(Ordering::Acquire))
    }

    /// The state its connection, health and ejection make together: an
    /// ejected subchannel is TRANSIENT_FAILURE whatever its connection (gRFC
    /// A50); a connected one waits for its first health answer as
    /// CONNECTING and is TRANSIENT_FAILURE while not SERVING (gRFC A17).
    fn derived(&self) -> ConnectivityState {
        if self.outlier.ejected() {
            return ConnectivityState::TransientFailure;
        }
        match self.connectivity.state() {
            ConnectivityState::Ready => match self.health.get().takes_calls() {
                Some(true) => ConnectivityState::Ready,
                Some(false) => ConnectivityState::TransientFailure,
                None => ConnectivityState::Connecting,
            },
            other => other,
        }
    }
}

fn encode(state: ConnectivityState) -> u8 {
    match state {
        ConnectivityState::Idle => 0,
        ConnectivityState::Connecting => 1,
        ConnectivityState::Ready => 2,
        ConnectivityState::TransientFailure => 3,
        ConnectivityState::Shutdown => 4,
    }
}

fn decode(state: u8) -> ConnectivityState {
    match state {
        1 => ConnectivityState::Connecting,
        2 => ConnectivityState::Ready,
        3 => ConnectivityState::TransientFailure,
        4 => ConnectivityState::Shutdown,
        _ => ConnectivityState::Idle,
    }
}

/// A subchannel's state, address and calls, as `client -v` and `client
/// bench` show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The address (`127.0.0.1:8101`, `unix:/run/search.sock`).
    pub address: String,
    /// Its state now, as calls are picked by it (its connection's, unless
    /// its health or an ejection says otherwise).
    pub state: ConnectivityState,
    /// Attempts sent to it.
    pub calls: u64,
    /// Whether outlier detection has it ejected now.
    pub ejected: bool,
}

/// What the channel did, as it happened: what `client -v` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A subchannel changed state.
    Subchannel {
        /// Its address.
        address: String,
        /// The state it left.
        from: ConnectivityState,
        /// The state it is in.
        to: ConnectivityState,
        /// Why, when it is more than its connection coming or going: a
        /// dial's error, an unanswered keepalive ping, the health service's
        /// answer, an ejection and its figures.
        why: Option<String>,
    },
    /// A call the server never took went out again (grpc's transparent
    /// retry).
    Resent {
        /// The method.
        method: String,
        /// The subchannel whose server did not take it.
        address: String,
        /// How that attempt ended.
        why: String,
    },
    /// A hedged attempt went out.
    Hedge {
        /// The method.
        method: String,
        /// Its attempt number (2 for the first hedge).
        attempt: u32,
        /// The subchannel it went to.
        address: String,
        /// How long after the call began.
        after: Duration,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Subchannel { address, from, to, why: None } => write!(f, "subchannel {address} {from} -> {to}"),
            Self::Subchannel { address, from, to, why: Some(why) } => {
                write!(f, "subchannel {address} {from} -> {to} ({why})")
            }
            Self::Resent { method, address, why } => {
                write!(f, "sent again: {method}, which {address} did not take ({why})")
            }
            Self::Hedge { method, attempt, address, after } => {
                write!(f, "hedge: attempt {attempt} of {method} to {address}, {after:.1?} after the first")
            }
        }
    }
}

/// Called with each event of the channel, as it happens.
pub type SubchannelWatcher = Box<dyn Fn(&Event) + Send + Sync>;

/// The channel: see the module documentation.
pub(super) struct Balancer {
    target: Target,
    endpoint: Endpoint,
    /// The TLS settings and the server's name, for `https://` targets.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    options: Arc<ClientOptions>,
    /// The subchannels, in the resolver's order; swapped whole when the name
    /// resolves to other addresses. Empty until the first resolution.
    subchannels: RwLock<Arc<[Arc<Subchannel>]>>,
    /// Round robin's position.
    cursor: AtomicUsize,
    /// The hedges' own turn, so that hedging leaves round robin's even.
    hedge_cursor: AtomicUsize,
    /// The channel's aggregate state.
    channel: Connectivity,
    /// A connection was lost: resolve again.
    lost: Arc<Notify>,
    /// The re-resolving task was started.
    resolving: AtomicBool,
    /// Called at every event, as it happens (`client -v`).
    watchers: Mutex<Vec<SubchannelWatcher>>,
    /// The first call was picked: round robin has connected everything,
    /// health watches and the outlier sweep run.
    started: AtomicBool,
    /// The client's counts: state changes and ejections are counted here.
    stats: Arc<Stats>,
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
    pub(super) fn new(
        target: &Target,
        options: Arc<ClientOptions>,
        channel: Connectivity,
        stats: Arc<Stats>,
    ) -> Result<Arc<Self>, Error> {
        // TLS is set up over each dialed socket by `secure.rs`, not by
        // tonic: the channel speaks HTTP/2 to what the connector returns,
        // its requests saying https.
        let mut endpoint = if target.is_tls() {
            let plain = Uri::builder()
                .scheme("http")
                .authority(target.uri().authority().map_or("localhost", |a| a.as_str()))
                .path_and_query("/")
                .build()
                .unwrap_or_else(|_| Uri::from_static("http://localhost/"));
            Endpoint::from(plain).origin(target.uri())
        } else {
            Endpoint::from(target.uri())
        }
        .tcp_nodelay(true);
        if let Some(keepalive) = options.keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(keepalive.time)
                .keep_alive_timeout(keepalive.timeout)
                .keep_alive_while_idle(keepalive.without_calls);
        }
        let tls = if target.is_tls() {
            let invalid = |cause: String| Error::Connect {
                target: target.to_string(),
                cause: format!("invalid TLS settings: {cause}"),
            };
            let config = options.tls.rustls_config(vec![b"h2".to_vec()]).map_err(|err| invalid(err.to_string()))?;
            let name = ServerName::try_from(target.host().to_owned()).map_err(|err| invalid(err.to_string()))?;
            Some((config, name))
        } else {
            None
        };
        let balancer = Arc::new(Self {
            target: target.clone(),
            endpoint,
            tls,
            options,
            subchannels: RwLock::new(Arc::from(Vec::new())),
            cursor: AtomicUsize::new(0),
            hedge_cursor: AtomicUsize::new(0),
            channel,
            lost: Arc::new(Notify::new()),
            resolving: AtomicBool::new(false),
            watchers: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            stats,
        });
        let fixed = match target.kind() {
            Kind::Dns { .. } => None,
            Kind::Addresses(addresses) => Some(addresses.iter().copied().map(Address::Tcp).collect()),
            Kind::Unix(path) => Some(vec![Address::Unix(path.clone())]),
        };
        if let Some(addresses) = fixed {
            balancer.update(addresses);
        }
        Ok(balancer)
    }

    /// The subchannels now.
    fn current(&self) -> Arc<[Arc<Subchannel>]> {
        Arc::clone(&self.subchannels.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The subchannel for the next call, resolving the name first if it
    /// never was.
    pub(super) async fn pick(self: &Arc<Self>) -> Result<Arc<Subchannel>, Error> {
        self.pick_avoiding(&[]).await
    }

    /// The subchannel for the next attempt of a call that already went to
    /// `tried`: one of the others if any can take it, else as [`pick`].
    ///
    /// [`pick`]: Balancer::pick
    pub(super) async fn pick_avoiding(self: &Arc<Self>, tried: &[Arc<Subchannel>]) -> Result<Arc<Subchannel>, Error> {
        let subchannels = self.subchannels().await?;
        let chosen = choose(self.options.lb, &subchannels, &self.cursor, tried)
            .or_else(|| choose(self.options.lb, &subchannels, &self.cursor, &[]))
            .ok_or_else(|| Error::Connect {
                target: self.target.to_string(),
                cause: "no address to connect to".into(),
            })?;
        chosen.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::clone(chosen))
    }

    /// A READY subchannel the call has not been to, for a hedge; none when
    /// there is none (a hedge to where the call already waits is no hedge).
    pub(super) fn pick_hedge(&self, tried: &[Arc<Subchannel>]) -> Option<Arc<Subchannel>> {
        let subchannels = self.current();
        let fresh = |sub: &&Arc<Subchannel>| {
            sub.state() == ConnectivityState::Ready && !tried.iter().any(|t| Arc::ptr_eq(t, sub))
        };
        let chosen = turn(&subchannels, &self.hedge_cursor, &fresh)?;
        chosen.calls.fetch_add(1, Ordering::Relaxed);
        Some(Arc::clone(chosen))
    }

    /// Whether a READY subchannel the call has not been to is there.
    pub(super) fn has_ready(&self, tried: &[Arc<Subchannel>]) -> bool {
        self.current()
            .iter()
            .any(|sub| sub.state() == ConnectivityState::Ready && !tried.iter().any(|t| Arc::ptr_eq(t, sub)))
    }

    /// The subchannels, resolved and started on the first call.
    async fn subchannels(self: &Arc<Self>) -> Result<Arc<[Arc<Subchannel>]>, Error> {
        let mut subchannels = self.current();
        if subchannels.is_empty() {
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
        }
        Ok(subchannels)
    }

    /// Starts what a subchannel runs once the channel is in use: its health
    /// watch, and under round robin its connection (every address is used).
    fn start(self: &Arc<Self>, sub: &Arc<Subchannel>) {
        if let (Some(service), Ok(runtime)) = (self.health_service(), tokio::runtime::Handle::try_current()) {
            let stop = CancellationToken::new();
            let balancer = Arc::downgrade(self);
            let report: health::Report = Arc::new(move |sub, health, why| {
                if let Some(balancer) = balancer.upgrade() {
                    sub.health.set(health);
                    balancer.refresh(sub, Some(why));
                }
            });
            let watch =
                health::watch(Arc::downgrade(sub), service.to_owned(), self.options.backoff, stop.clone(), report);
            runtime.spawn(watch);
            *sub.watching.lock().unwrap_or_else(PoisonError::into_inner) = Some(stop.drop_guard());
        }
        if self.options.lb == LoadBalancing::RoundRobin {
            self.connect_in_background(Arc::clone(sub), false);
        }
    }

    /// The service whose health the subchannels watch, if they do: only
    /// under round robin, as in grpc (pick_first leaves a connection only
    /// when it breaks, and a single call should not wait for a health answer).
    fn health_service(&self) -> Option<&str> {
        self.options.health_check.as_deref().filter(|_| self.options.lb == LoadBalancing::RoundRobin)
    }

    /// How many subchannels there are.
    pub(super) fn len(&self) -> usize {
        self.current().len()
    }

    /// Every subchannel's address, state and calls.
    pub(super) fn backends(&self) -> Vec<Backend> {
        self.current()
            .iter()
            .map(|sub| Backend {
                address: sub.address.to_string(),
                state: sub.state(),
                calls: sub.calls.load(Ordering::Relaxed),
                ejected: sub.outlier.ejected(),
            })
            .collect()
    }

    /// Calls `watcher` at every event from now on.
    pub(super) fn watch(&self, watcher: SubchannelWatcher) {
        self.watchers.lock().unwrap_or_else(PoisonError::into_inner).push(watcher);
    }

    /// Tells every watcher of `event`.
    pub(super) fn emit(&self, event: &Event) {
        for watcher in self.watchers.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            watcher(event);
        }
    }

    /// Whether anyone watches the events (so that they are only built then).
    pub(super) fn watched(&self) -> bool {
        !self.watchers.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    /// The addresses the target's name resolves to now.
    async fn resolve(&self) -> Result<Vec<Address>, Error> {
        let Kind::Dns { host, port } = self.target.kind() else {
            return Ok(self.current().iter().map(|sub| sub.address.clone()).collect());
        };
        let failed = |cause: String| Error::Connect { target: self.target.to_string(), cause };
        let found = tokio::time::timeout(self.options.connect_timeout, tokio::net::lookup_host((host.as_str(), *port)))
            .await
            .map_err(|_| failed(format!("{host} did not resolve within the connect timeout")))?
            .map_err(|err| failed(format!("cannot resolve {host}: {err}")))?;
        let mut addresses: Vec<Address> = Vec::new();
        for address in found.map(Address::Tcp) {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        if addresses.is_empty() {
            return Err(failed(format!("{host} resolves to no address")));
        }
        Ok(addresses)
    }

    /// Makes the subchannels those of `addresses`, in their order, keeping
    /// the ones whose address stays (with their connection, health and
    /// ejection, as gRFC A50 keeps an address's).
    fn update(self: &Arc<Self>, addresses: Vec<Address>) {
        let old = self.current();
        let mut added = Vec::new();
        let subchannels: Vec<Arc<Subchannel>> = addresses
            .into_iter()
            .map(|address| {
                old.iter().find(|sub| sub.address == address).cloned().unwrap_or_else(|| {
                    let sub = self.subchannel(address);
                    added.push(Arc::clone(&sub));
                    sub
                })
            })
            .collect();
        if old.len() != subchannels.len() || !added.is_empty() {
            tracing::debug!(target = %self.target, addresses = subchannels.len(), "subchannels");
        }
        *self.subchannels.write().unwrap_or_else(PoisonError::into_inner) = Arc::from(subchannels);
        self.aggregate();
        if self.started.load(Ordering::Acquire) {
            for sub in &added {
                self.start(sub);
            }
        }
    }

    /// A new subchannel for `address`, its transitions reported here.
    fn subchannel(self: &Arc<Self>, address: Address) -> Arc<Subchannel> {
        let connectivity = Connectivity::default();
        let mut connector = TrackingConnector::new(address.clone(), connectivity.clone(), self.options.connect_timeout);
        if let Some(keepalive) = self.options.keepalive {
            connector = connector.with_keepalive_timeout(keepalive.timeout);
        }
        let connector = SecureConnector::new(connector, self.tls.clone(), connectivity.clone());
        let channel = self.endpoint.clone().connect_with_connector_lazy(connector.clone());
        let health = if self.health_service().is_some() { Health::Unknown } else { Health::Unchecked };
        let sub = Subchannel::new(address, channel, connectivity, health);
        let sub = Arc::new(Subchannel { renewal: Some((self.endpoint.clone(), connector)), ..sub });
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

    /// A subchannel's connection changed state.
    fn connection_changed(
        self: &Arc<Self>,
        sub: &Arc<Subchannel>,
        from: ConnectivityState,
        to: ConnectivityState,
        why: Option<&str>,
    ) {
        if to == ConnectivityState::Ready && self.health_service().is_some() {
            // A new connection's health is not known until it is asked.
            sub.health.set(Health::Unknown);
        }
        self.refresh(sub, why);
        let lost = from == ConnectivityState::Ready && to == ConnectivityState::Idle;
        if lost || to == ConnectivityState::TransientFailure {
            self.lost.notify_one();
        }
        if to == ConnectivityState::TransientFailure {
            self.connect_in_background(Arc::clone(sub), true);
        } else if lost && self.options.lb == LoadBalancing::RoundRobin {
            // Round robin keeps every address connected.
            self.connect_in_background(Arc::clone(sub), false);
        }
    }

    /// Recomputes `sub`'s state from its connection, health and ejection,
    /// and reports a change (with `why`) to the watchers and the channel.
    fn refresh(&self, sub: &Arc<Subchannel>, why: Option<&str>) {
        let changed = {
            let _order = sub.reporting.lock().unwrap_or_else(PoisonError::into_inner);
            let to = sub.derived();
            let from = decode(sub.state.swap(encode(to), Ordering::AcqRel));
            if from != to {
                let address = sub.address.to_string();
                tracing::debug!(%address, %from, %to, why, "subchannel");
                self.stats.state_changed();
                self.emit(&Event::Subchannel { address, from, to, why: why.map(str::to_owned) });
            }
            from != to
        };
        if changed {
            self.aggregate();
        }
    }

    /// The channel's state from its subchannels' (grpc's aggregation).
    fn aggregate(&self) {
        let states: Vec<ConnectivityState> = self.current().iter().map(|sub| sub.state()).collect();
        let any = |state| states.contains(&state);
        let state = if any(ConnectivityState::Ready) {
            ConnectivityState::Ready
        } else if any(ConnectivityState::Connecting) {
            ConnectivityState::Connecting
        } else if any(ConnectivityState::Idle) || states.is_empty() {
            ConnectivityState::Idle
        } else {
            ConnectivityState::TransientFailure
        };
        self.channel.set(state);
    }

    /// Dials `sub` in the background (after a growing backoff when
    /// `backing_off`), until it is READY or no longer a subchannel here.
    fn connect_in_background(self: &Arc<Self>, sub: Arc<Subchannel>, backing_off: bool) {
        if sub.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            sub.reconnecting.store(false, Ordering::Release);
            return;
        };
        let balancer = Arc::downgrade(self);
        let backoff = self.options.backoff;
        let timeout = self.options.connect_timeout;
        runtime.spawn(async move {
            let mut failures = u32::from(backing_off);
            loop {
                if failures > 0 {
                    tokio::time::sleep(backoff.delay(failures)).await;
                }
                let listed = |balancer: &Weak<Balancer>| {
                    balancer.upgrade().is_some_and(|b| b.current().iter().any(|s| Arc::ptr_eq(s, &sub)))
                };
                if !listed(&balancer) || sub.connectivity.state() == ConnectivityState::Ready {
                    break;
                }
                if probe(&sub, timeout).await {
                    break;
                }
                failures += 1;
            }
            sub.reconnecting.store(false, Ordering::Release);
        });
    }

    /// Starts the task that resolves the name again (DNS names only, once).
    fn start_resolving(self: &Arc<Self>) {
        if !matches!(self.target.kind(), Kind::Dns { .. }) || self.resolving.swap(true, Ordering::AcqRel) {
            return;
        }
        // The task holds the channel weakly: a client dropped closes its
        // connections at once, and the task ends at its next wake.
        let balancer = Arc::downgrade(self);
        let lost = Arc::clone(&self.lost);
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                let _ = tokio::time::timeout(RERESOLVE_EVERY, lost.notified()).await;
                tokio::time::sleep_until(last + MIN_RERESOLVE).await;
                last = Instant::now();
                let Some(balancer) = balancer.upgrade() else { return };
                if balancer.channel.state() == ConnectivityState::Shutdown {
                    return;
                }
                match balancer.resolve().await {
                    Ok(addresses) => balancer.update(addresses),
                    Err(err) => tracing::debug!(error = %err, "re-resolving failed; keeping the addresses"),
                }
            }
        });
    }

    /// Starts outlier detection's sweep, every interval, while the channel
    /// lives (once; only when it is on).
    fn start_sweeping(self: &Arc<Self>) {
        let Some(config) = self.options.outlier_detection else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let balancer = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + config.interval, config.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let now = ticks.tick().await;
                let Some(balancer) = balancer.upgrade() else { return };
                if balancer.channel.state() == ConnectivityState::Shutdown {
                    return;
                }
                balancer.sweep(&config, now);
            }
        });
    }

    /// One sweep of outlier detection over the subchannels now.
    fn sweep(&self, config: &outlier::OutlierDetection, now: Instant) {
        let subchannels = self.current();
        let mut counted: Vec<Counted> = subchannels
            .iter()
            .map(|sub| {
                let (successes, failures) = sub.outlier.take();
                Counted { successes, failures, ejection: sub.outlier.ejection() }
            })
            .collect();
        let verdicts = outlier::sweep(config, now, &mut counted, || fastrand::u32(0..100));
        for (sub, counted) in subchannels.iter().zip(&counted) {
            sub.outlier.set_ejection(counted.ejection);
        }
        for verdict in verdicts {
            match verdict {
                Verdict::Eject { index, time, why } => {
                    self.stats.ejected();
                    let why = format!("ejected for {}: {why}", humantime::format_duration(time));
                    self.refresh(&subchannels[index], Some(&why));
                }
                Verdict::Return { index } => self.refresh(&subchannels[index], Some("its ejection is over")),
            }
        }
    }
}

/// Connects `sub` with one health check (any answer proves the connection);
/// whether it worked.
async fn probe(sub: &Subchannel, timeout: Duration) -> bool {
    let mut health = HealthClient::new(sub.channel().1);
    let request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    match tokio::time::timeout(timeout, health.check(request)).await {
        Ok(Ok(_)) => true,
        // A status from the server (UNIMPLEMENTED, say) proves it too.
        Ok(Err(status)) => std::error::Error::source(&status).is_none(),
        Err(_) => false,
    }
}

/// The subchannel of the next call under `policy`, avoiding those in
/// `avoid`; none when no other is left.
fn choose<'a>(
    policy: LoadBalancing,
    subchannels: &'a [Arc<Subchannel>],
    cursor: &AtomicUsize,
    avoid: &[Arc<Subchannel>],
) -> Option<&'a Arc<Subchannel>> {
    let fresh = |sub: &&Arc<Subchannel>| !avoid.iter().any(|a| Arc::ptr_eq(a, sub));
    let usable = |sub: &&Arc<Subchannel>| sub.state() != ConnectivityState::TransientFailure && fresh(sub);
    let ready = |sub: &&Arc<Subchannel>| sub.state() == ConnectivityState::Ready && fresh(sub);
    match policy {
        LoadBalancing::PickFirst => subchannels
            .iter()
            .find(ready)
            .or_else(|| subchannels.iter().find(usable))
            // All failing: each in turn, so that a retry tries another.
            .or_else(|| turn(subchannels, cursor, &fresh)),
        LoadBalancing::RoundRobin => turn(subchannels, cursor, &ready)
            .or_else(|| turn(subchannels, cursor, &usable))
            .or_else(|| turn(subchannels, cursor, &fresh)),
    }
}

/// The next of the subchannels that `keep`, turning with the cursor.
fn turn<'a>(
    subchannels: &'a [Arc<Subchannel>],
    cursor: &AtomicUsize,
    keep: &dyn Fn(&&Arc<Subchannel>) -> bool,
) -> Option<&'a Arc<Subchannel>> {
    let n = subchannels.iter().filter(|sub| keep(sub)).count();
    (n > 0)
        .then(|| cursor.fetch_add(1, Ordering::Relaxed) % n)
        .and_then(|i| subchannels.iter().filter(|sub| keep(sub)).nth(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subchannels(states: &[ConnectivityState]) -> Vec<Arc<Subchannel>> {
        states
            .iter()
            .enumerate()
            .map(|(i, &state)| {
                let connectivity = Connectivity::default();
                connectivity.set(state);
                let address =
                    Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 1000 + u16::try_from(i).expect("few"))));
                let channel = Endpoint::from_static("http://localhost").connect_lazy();
                Arc::new(Subchannel::new(address, channel, connectivity, Health::Unchecked))
            })
            .collect()
    }

    fn port(sub: &Subchannel) -> u16 {
        match sub.address {
            Address::Tcp(addr) => addr.port() - 1000,
            Address::Unix(_) => u16::MAX,
        }
    }

    fn picks(policy: LoadBalancing, states: &[ConnectivityState], n: usize) -> Vec<u16> {
        let subs = subchannels(states);
        let cursor = AtomicUsize::new(0);
        (0..n).map(|_| port(choose(policy, &subs, &cursor, &[]).expect("one"))).collect()
    }

    use ConnectivityState::{Connecting, Idle, Ready, TransientFailure as Failing};

    #[tokio::test]
    async fn new_addresses_get_subchannels_and_kept_ones_keep_theirs() {
        let target: Target = "ipv4:127.0.0.1:1001,127.0.0.1:1002".parse().expect("a target");
        let balancer =
            Balancer::new(&target, Arc::default(), Connectivity::default(), Arc::default()).expect("a channel");
        let before = balancer.current();
        let address = |port| Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        balancer.update(vec![address(1002), address(1003)]);
        let after = balancer.current();
        let ports: Vec<String> = after.iter().map(|sub| sub.address.to_string()).collect();
        assert_eq!(ports, ["127.0.0.1:1002", "127.0.0.1:1003"]);
        assert!(Arc::ptr_eq(&before[1], &after[0]), "a kept address keeps its subchannel (and connection)");
        assert!(!before.iter().any(|old| Arc::ptr_eq(old, &after[1])), "a new address gets a new one");
    }

    #[tokio::test]
    async fn pick_first_takes_the_first_ready_else_the_first_not_failing() {
        use LoadBalancing::PickFirst;
        assert_eq!(picks(PickFirst, &[Idle, Ready, Ready], 3), [1, 1, 1]);
        assert_eq!(picks(PickFirst, &[Failing, Idle, Connecting], 2), [1, 1]);
        assert_eq!(picks(PickFirst, &[Failing, Failing], 4), [0, 1, 0, 1], "all failing: each in turn");
    }

    #[tokio::test]
    async fn round_robin_turns_over_the_ready_ones_only() {
        use LoadBalancing::RoundRobin;
        assert_eq!(picks(RoundRobin, &[Ready, Failing, Ready, Ready], 6), [0, 2, 3, 0, 2, 3]);
        assert_eq!(picks(RoundRobin, &[Failing, Idle, Connecting], 4), [1, 2, 1, 2], "none ready: the usable ones");
        assert_eq!(picks(RoundRobin, &[], 0), Vec::<u16>::new());
    }

    #[tokio::test]
    async fn a_later_attempt_avoids_the_subchannels_the_call_went_to() {
        let subs = subchannels(&[Ready, Ready, Ready]);
        let cursor = AtomicUsize::new(0);
        for policy in [LoadBalancing::PickFirst, LoadBalancing::RoundRobin] {
            let tried = [Arc::clone(&subs[0]), Arc::clone(&subs[2])];
            for _ in 0..3 {
                assert_eq!(port(choose(policy, &subs, &cursor, &tried).expect("one left")), 1, "{policy:?}");
            }
            let all: Vec<Arc<Subchannel>> = subs.clone();
            assert!(choose(policy, &subs, &cursor, &all).is_none(), "{policy:?}: none left");
        }
    }

    #[tokio::test]
    async fn health_and_ejection_decide_over_a_ready_connection() {
        let subs = subchannels(&[Ready]);
        let sub = &subs[0];
        let state = |health| {
            sub.health.set(health);
            sub.derived()
        };
        assert_eq!(state(Health::Unchecked), Ready);
        assert_eq!(state(Health::Unknown), Connecting, "no answer yet: CONNECTING (gRFC A17)");
        assert_eq!(state(Health::Serving), Ready);
        assert_eq!(state(Health::NotServing), Failing);
        assert_eq!(state(Health::Failed), Failing);
        assert_eq!(state(Health::Unimplemented), Ready, "no health service: healthy, as grpc");
        sub.outlier.set_ejection(outlier::Ejection { since: Some(Instant::now()), multiplier: 1 });
        assert_eq!(state(Health::Serving), Failing, "ejected: TRANSIENT_FAILURE (gRFC A50)");
        sub.connectivity.set(Idle);
        assert_eq!(sub.derived(), Failing, "ejected whatever its connection");
        sub.outlier.set_ejection(outlier::Ejection::default());
        assert_eq!(sub.derived(), Idle);
    }
}
