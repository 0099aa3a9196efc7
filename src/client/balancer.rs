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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::connectivity::{Address, TrackingConnector};
use super::failure::root_cause;
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
#[derive(Debug)]
pub(super) struct Subchannel {
    pub(super) address: Address,
    pub(super) channel: Channel,
    pub(super) connectivity: Connectivity,
    /// Calls (attempts) sent on it.
    calls: AtomicU64,
    /// Whether a background reconnection is under way.
    reconnecting: AtomicBool,
}

/// A subchannel's state, address and calls, as `client -v` and `client
/// bench` show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The address (`127.0.0.1:8101`, `unix:/run/search.sock`).
    pub address: String,
    /// Its connectivity state now.
    pub state: ConnectivityState,
    /// Attempts sent to it.
    pub calls: u64,
}

/// Called with each subchannel's change of state: its address, from, to.
pub type SubchannelWatcher = Box<dyn Fn(&str, ConnectivityState, ConnectivityState) + Send + Sync>;

/// The channel: see the module documentation.
pub(super) struct Balancer {
    target: Target,
    endpoint: Endpoint,
    options: Arc<ClientOptions>,
    /// The subchannels, in the resolver's order; swapped whole when the name
    /// resolves to other addresses. Empty until the first resolution.
    subchannels: RwLock<Arc<[Arc<Subchannel>]>>,
    /// Round robin's position.
    cursor: AtomicUsize,
    /// The channel's aggregate state.
    channel: Connectivity,
    /// A connection was lost: resolve again.
    lost: Arc<Notify>,
    /// The re-resolving task was started.
    resolving: AtomicBool,
    /// Called at every subchannel's transition, as it happens (`client -v`).
    watchers: Mutex<Vec<SubchannelWatcher>>,
    /// The first call was picked: round robin has connected everything.
    started: AtomicBool,
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
    /// The channel for `target`; reports its aggregate state to `channel`.
    pub(super) fn new(target: &Target, options: Arc<ClientOptions>, channel: Connectivity) -> Result<Arc<Self>, Error> {
        let mut endpoint = Endpoint::from(target.uri()).tcp_nodelay(true);
        if target.is_tls() {
            endpoint = endpoint.tls_config(options.tls.config(target.host())).map_err(|err| Error::Connect {
                target: target.to_string(),
                cause: format!("invalid TLS settings: {}", root_cause(&err)),
            })?;
        }
        let balancer = Arc::new(Self {
            target: target.clone(),
            endpoint,
            options,
            subchannels: RwLock::new(Arc::from(Vec::new())),
            cursor: AtomicUsize::new(0),
            channel,
            lost: Arc::new(Notify::new()),
            resolving: AtomicBool::new(false),
            watchers: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
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
        let mut subchannels = self.current();
        if subchannels.is_empty() {
            let addresses = self.resolve().await?;
            self.update(addresses);
            self.start_resolving();
            subchannels = self.current();
        }
        if !self.started.swap(true, Ordering::AcqRel) && self.options.lb == LoadBalancing::RoundRobin {
            // Round robin uses every address: all connect from the first call.
            for sub in subchannels.iter() {
                self.connect_in_background(Arc::clone(sub), false);
            }
        }
        let chosen = choose(self.options.lb, &subchannels, &self.cursor).ok_or_else(|| Error::Connect {
            target: self.target.to_string(),
            cause: "no address to connect to".into(),
        })?;
        chosen.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::clone(chosen))
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
                state: sub.connectivity.state(),
                calls: sub.calls.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Calls `watcher` at every subchannel transition from now on.
    pub(super) fn watch(&self, watcher: SubchannelWatcher) {
        self.watchers.lock().unwrap_or_else(PoisonError::into_inner).push(watcher);
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
    /// the ones whose address stays.
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
        if self.options.lb == LoadBalancing::RoundRobin && self.started.load(Ordering::Acquire) {
            // Round robin uses every address: new ones connect at once.
            for sub in added {
                self.connect_in_background(sub, false);
            }
        }
    }

    /// A new subchannel for `address`, its transitions reported here.
    fn subchannel(self: &Arc<Self>, address: Address) -> Arc<Subchannel> {
        let connectivity = Connectivity::default();
        let connector = TrackingConnector::new(address.clone(), connectivity.clone(), self.options.connect_timeout);
        let channel = self.endpoint.clone().connect_with_connector_lazy(connector);
        let sub = Arc::new(Subchannel {
            address,
            channel,
            connectivity,
            calls: AtomicU64::new(0),
            reconnecting: AtomicBool::new(false),
        });
        // Each change is seen as it happens, in order: the channel's state
        // goes through the same steps as its subchannels'.
        let (balancer, watched) = (Arc::downgrade(self), Arc::downgrade(&sub));
        sub.connectivity.on_change(Box::new(move |from, to| {
            if let (Some(balancer), Some(sub)) = (balancer.upgrade(), watched.upgrade()) {
                balancer.changed(&sub, from, to);
            }
        }));
        sub
    }

    /// A subchannel changed state.
    fn changed(self: &Arc<Self>, sub: &Arc<Subchannel>, from: ConnectivityState, to: ConnectivityState) {
        let address = sub.address.to_string();
        tracing::debug!(%address, %from, %to, "subchannel");
        for watcher in self.watchers.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            watcher(&address, from, to);
        }
        self.aggregate();
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

    /// The channel's state from its subchannels' (grpc's aggregation).
    fn aggregate(&self) {
        let states: Vec<ConnectivityState> = self.current().iter().map(|sub| sub.connectivity.state()).collect();
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
}

/// Connects `sub` with one health check (any answer proves the connection);
/// whether it worked.
async fn probe(sub: &Subchannel, timeout: Duration) -> bool {
    let mut health = HealthClient::new(sub.channel.clone());
    let request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    match tokio::time::timeout(timeout, health.check(request)).await {
        Ok(Ok(_)) => true,
        // A status from the server (UNIMPLEMENTED, say) proves it too.
        Ok(Err(status)) => std::error::Error::source(&status).is_none(),
        Err(_) => false,
    }
}

/// The subchannel of the next call under `policy`; none when there are none.
fn choose<'a>(
    policy: LoadBalancing,
    subchannels: &'a [Arc<Subchannel>],
    cursor: &AtomicUsize,
) -> Option<&'a Arc<Subchannel>> {
    let state = |sub: &Arc<Subchannel>| sub.connectivity.state();
    let usable = |sub: &&Arc<Subchannel>| state(sub) != ConnectivityState::TransientFailure;
    let ready = |sub: &&Arc<Subchannel>| state(sub) == ConnectivityState::Ready;
    // The nth of those that `keep`, turning with the cursor.
    let turn = |keep: &dyn Fn(&&Arc<Subchannel>) -> bool| {
        let n = subchannels.iter().filter(|sub| keep(sub)).count();
        (n > 0)
            .then(|| cursor.fetch_add(1, Ordering::Relaxed) % n)
            .and_then(|i| subchannels.iter().filter(|sub| keep(sub)).nth(i))
    };
    match policy {
        LoadBalancing::PickFirst => subchannels
            .iter()
            .find(ready)
            .or_else(|| subchannels.iter().find(usable))
            // All failing: each in turn, so that a retry tries another.
            .or_else(|| turn(&|_| true)),
        LoadBalancing::RoundRobin => turn(&ready).or_else(|| turn(&usable)).or_else(|| turn(&|_| true)),
    }
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
                Arc::new(Subchannel {
                    address,
                    channel,
                    connectivity,
                    calls: AtomicU64::new(0),
                    reconnecting: AtomicBool::new(false),
                })
            })
            .collect()
    }

    fn picks(policy: LoadBalancing, states: &[ConnectivityState], n: usize) -> Vec<u16> {
        let subs = subchannels(states);
        let cursor = AtomicUsize::new(0);
        (0..n)
            .map(|_| match choose(policy, &subs, &cursor).expect("one").address {
                Address::Tcp(addr) => addr.port() - 1000,
                Address::Unix(_) => u16::MAX,
            })
            .collect()
    }

    use ConnectivityState::{Connecting, Idle, Ready, TransientFailure as Failing};

    #[tokio::test]
    async fn new_addresses_get_subchannels_and_kept_ones_keep_theirs() {
        let target: Target = "ipv4:127.0.0.1:1001,127.0.0.1:1002".parse().expect("a target");
        let balancer = Balancer::new(&target, Arc::default(), Connectivity::default()).expect("a channel");
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
}
