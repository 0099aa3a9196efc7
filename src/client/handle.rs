//! [`Client`]: building one, connecting it, and what it tells of its
//! channel: the connectivity state as grpc.aio gives it, the subchannels,
//! their events, the counts. Its methods, one per RPC, are `methods.rs`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use super::Error;
use super::call::Caller;
use super::channel::{Backend, Balancer, Connectivity, ConnectivityState, SubchannelWatcher, Target};
use super::options::ClientOptions;
use super::stats::{CallStats, Stats};
use super::xds::DumpEntry;

/// A Search client: one method per RPC of `search.v1.SearchService`.
///
/// The channel resolves the target and connects on the first call, over
/// one subchannel per address (see `channel/balancer.rs`), and reconnects
/// after a lost connection. Cloning is cheap; clones share the connections,
/// their connectivity states, the retry budget and the counts.
#[derive(Debug, Clone)]
pub struct Client {
    /// What every call shares, the channel among it.
    pub(super) caller: Arc<Caller>,
    /// The channel's aggregate state.
    connectivity: Connectivity,
    stats: Arc<Stats>,
}

impl Client {
    /// A client for `target`. Nothing is dialed until the first call.
    ///
    /// # Errors
    /// [`Error::Connect`] when the TLS settings are refused (a bad CA or
    /// client certificate); [`Error::TokenOverPlaintext`] when a token
    /// would go over plaintext to a target that is not loopback (see
    /// [`Target::is_loopback`]) and does not allow it, as grpc refuses call
    /// credentials on an insecure channel; [`Error::AuthorizationTwice`]
    /// for a token and an `authorization` header in the metadata.
    pub fn new(target: &Target, options: ClientOptions) -> Result<Self, Error> {
        let plaintext = !target.is_tls() && !target.is_loopback();
        if options.token.as_ref().is_some_and(|token| plaintext && !token.plaintext_allowed()) {
            return Err(Error::TokenOverPlaintext { target: target.to_string() });
        }
        if options.token.is_some() && options.metadata.contains("authorization") {
            return Err(Error::AuthorizationTwice);
        }
        let connectivity = Connectivity::default();
        let stats = Arc::<Stats>::default();
        let channel = Balancer::new(target, options.channel(), connectivity.clone(), Arc::clone(&stats))?;
        let caller = Arc::new(Caller::new(channel, options.call(), Arc::clone(&stats)));
        Ok(Self { caller, connectivity, stats })
    }

    /// A client with the default options, connected now, so that an
    /// unreachable server is reported before anything else happens.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached.
    pub async fn connect(target: &Target) -> Result<Self, Error> {
        Self::connect_with(target, ClientOptions::default()).await
    }

    /// [`Client::connect`] with `options`.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached.
    pub async fn connect_with(target: &Target, options: ClientOptions) -> Result<Self, Error> {
        let client = Self::new(target, options)?;
        client.reach().await?;
        Ok(client)
    }

    /// Connects now, so that an unreachable server is reported before
    /// anything else happens: a subchannel READY (its server has spoken
    /// HTTP/2, and answered its health check where health is checked), no
    /// call made; waiting for it (within the deadline) with
    /// `wait_for_ready`, else failing as soon as no address can be reached.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached;
    /// [`Error::DeadlineExceeded`] when none was READY by the deadline.
    pub async fn reach(&self) -> Result<(), Error> {
        let settings = self.caller.settings();
        self.ready_within(settings.timeout, settings.wait_for_ready).await
    }

    /// The channel's connectivity state; with `try_to_connect`, an IDLE
    /// channel starts connecting (as grpc.aio's `get_state(True)`).
    #[must_use]
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        let state = self.connectivity.state();
        if try_to_connect && state == ConnectivityState::Idle {
            let client = self.clone();
            tokio::spawn(async move {
                let _ = client.ready_within(client.caller.channel.settings().connect_timeout, false).await;
            });
        }
        state
    }

    /// Waits until the state is no longer `last` and returns the new one
    /// (as grpc.aio's `wait_for_state_change`).
    pub async fn wait_for_state_change(&self, last: ConnectivityState) -> ConnectivityState {
        self.connectivity.wait_for_state_change(last).await
    }

    /// The connectivity handle, to watch the state from elsewhere.
    #[must_use]
    pub fn connectivity(&self) -> &Connectivity {
        &self.connectivity
    }

    /// Shuts the client down: SHUTDOWN, and every later call fails.
    pub fn shutdown(&self) {
        self.connectivity.shutdown();
    }

    /// Every subchannel: its address, its state, the attempts sent to it.
    #[must_use]
    pub fn backends(&self) -> Vec<Backend> {
        self.caller.channel.backends()
    }

    /// What the xDS client of an `xds:///` target holds, by type then name
    /// (grpc's CSDS); `None` for another target, or before the first call.
    #[must_use]
    pub fn xds_dump(&self) -> Option<Vec<DumpEntry>> {
        self.caller.channel.xds_dump()
    }

    /// Calls `watcher` with every event of the channel from now on, as it
    /// happens, in order: subchannel transitions with their causes (a dial,
    /// keepalive, health, an ejection) and hedges (`client -v`).
    pub fn watch_subchannels(&self, watcher: SubchannelWatcher) {
        self.caller.channel.watch(watcher);
    }

    /// Connects every subchannel the policy uses (round_robin: all of them;
    /// pick_first: the first that works) and waits, within `within`, until
    /// none is still connecting: so that a load test starts its clock on a
    /// settled channel.
    pub async fn settle(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let _ = self.ready_within(within, false).await;
        while Instant::now() < deadline {
            let settling = self.backends().iter().any(|backend| match backend.state {
                ConnectivityState::Connecting => true,
                ConnectivityState::Idle => self.caller.channel.policy().spreads(),
                _ => false,
            });
            if !settling {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The hedging delay now (the automatic one moves with the latency).
    #[must_use]
    pub fn hedging_delay(&self) -> Option<Duration> {
        self.caller.hedging_delay()
    }

    /// The client's counts so far: calls, attempts, attempt durations,
    /// hedges, ejections, state changes.
    #[must_use]
    pub fn stats(&self) -> CallStats {
        self.stats.snapshot()
    }

    /// Waits, within `within`, for a READY subchannel.
    async fn ready_within(&self, within: Duration, wait_for_ready: bool) -> Result<(), Error> {
        let channel = &self.caller.channel;
        match timeout_at(Instant::now() + within, channel.ready(wait_for_ready)).await {
            Ok(ready) => ready.map(|_| ()),
            Err(_) => Err(self.caller.deadline_exceeded(1, Some(channel.why_not_ready()))),
        }
    }
}
