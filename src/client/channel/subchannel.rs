//! One address of the channel with its connection: the transport calls go
//! on (renewed after a GOAWAY), and the one state calls are picked by,
//! made from the connection's, the health's and outlier detection's.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio_util::sync::DropGuard;
use tonic::transport::{Channel, Endpoint};

use super::connectivity::{Connectivity, ConnectivityState};
use super::dial::{Address, TrackingConnector};
use super::ejection::Tally;
use super::health::{Health, HealthCell};
use super::preface::PrefaceConnector;
use super::secure::SecureConnector;
use super::weights::Weight;

/// What makes a subchannel's new transport: the endpoint, and the connector
/// that reports to its connectivity.
pub(super) type Renewal = (Endpoint, PrefaceConnector<SecureConnector<TrackingConnector>>);

/// One address with its connection.
pub(in crate::client) struct Subchannel {
    /// Where it connects.
    pub(in crate::client) address: Address,
    /// The transport new calls go on, and its number: a tonic channel that
    /// keeps one connection (and dials it again when it breaks). A
    /// connection that got a GOAWAY goes on serving its calls but takes no
    /// new one, and tonic keeps handing it new calls until it closes, so
    /// the first call it turns away makes the subchannel a new transport
    /// ([`Subchannel::renew`]), as a grpc subchannel makes a new one on a
    /// GOAWAY.
    transport: RwLock<(u64, Channel)>,
    /// What makes a new transport (none for a test's subchannel).
    renewal: Option<Renewal>,
    /// The connection's own state (dialing, connected, closed).
    pub(in crate::client) connectivity: Connectivity,
    /// What the health service says of the connection (gRFC A17).
    pub(super) health: HealthCell,
    /// Outlier detection's counts and ejection (gRFC A50).
    pub(in crate::client) outlier: Tally,
    /// The state calls are picked by and `-v` shows: the connection's,
    /// then the health's, then the ejection's.
    state: AtomicU8,
    /// Serialises the changes of `state`, so that they are reported in order.
    reporting: Mutex<()>,
    /// Calls (attempts) sent on it.
    calls: AtomicU64,
    /// Whether it failed since it was last READY: a subchannel dialing again
    /// after a failure is still taken as failing (grpc's sticky
    /// TRANSIENT_FAILURE), so that calls fail fast rather than wait for it.
    failed: AtomicBool,
    /// Why it last went TRANSIENT_FAILURE, for the error of a call that
    /// found no subchannel to take it.
    last_failure: Mutex<Option<String>>,
    /// Whether a background reconnection is under way.
    pub(super) reconnecting: AtomicBool,
    /// Stops the health watch when the subchannel goes.
    pub(super) watching: Mutex<Option<DropGuard>>,
    /// Stops the out-of-band load reports' stream when the subchannel goes.
    pub(super) load_reports: Mutex<Option<DropGuard>>,
    /// Its weight under weighted round robin, from its load reports.
    pub(super) weight: Weight,
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

impl Subchannel {
    /// A subchannel for `address` over `channel`, its connection reporting
    /// to `connectivity`.
    pub(super) fn new(
        address: Address,
        channel: Channel,
        renewal: Option<Renewal>,
        connectivity: Connectivity,
        health: Health,
    ) -> Self {
        Self {
            address,
            transport: RwLock::new((0, channel)),
            renewal,
            state: AtomicU8::new(encode(connectivity.state())),
            connectivity,
            health: HealthCell::new(health),
            outlier: Tally::default(),
            reporting: Mutex::new(()),
            calls: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            last_failure: Mutex::new(None),
            reconnecting: AtomicBool::new(false),
            watching: Mutex::new(None),
            load_reports: Mutex::new(None),
            weight: Weight::default(),
        }
    }

    /// The transport for a new call, and its number (for [`Subchannel::renew`]).
    pub(in crate::client) fn channel(&self) -> (u64, Channel) {
        self.transport.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The transport numbered `used` turned a call away because its
    /// connection is going away: new calls get a new transport (once per
    /// transport, however many calls it turned away). The old one serves
    /// the calls it has until they end.
    pub(in crate::client) fn renew(&self, used: u64) {
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

    /// Takes the state its connection, health and ejection make now, and
    /// calls `report` with the change, if it is one; returns whether it was.
    /// Changes are made one at a time, so that they are reported in order.
    pub(super) fn update_state(&self, report: impl FnOnce(ConnectivityState, ConnectivityState)) -> bool {
        let _order = self.reporting.lock().unwrap_or_else(PoisonError::into_inner);
        let to = self.derived();
        match to {
            ConnectivityState::TransientFailure => self.failed.store(true, Ordering::Release),
            ConnectivityState::Ready => self.failed.store(false, Ordering::Release),
            _ => {}
        }
        let from = decode(self.state.swap(encode(to), Ordering::AcqRel));
        if from != to {
            report(from, to);
        }
        from != to
    }

    /// Whether it may yet take calls without a new failure of its own: it is
    /// READY, IDLE (it has not been dialed), or CONNECTING without having
    /// failed since it was last READY.
    pub(super) fn may_become_ready(&self) -> bool {
        match self.state() {
            ConnectivityState::Ready | ConnectivityState::Idle => true,
            ConnectivityState::Connecting => !self.failed.load(Ordering::Acquire),
            ConnectivityState::TransientFailure | ConnectivityState::Shutdown => false,
        }
    }

    /// Whether it failed since it was last READY.
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Records why it went TRANSIENT_FAILURE.
    pub(super) fn set_last_failure(&self, why: Option<&str>) {
        let why = why.unwrap_or("TRANSIENT_FAILURE").to_owned();
        *self.last_failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    /// Why it last went TRANSIENT_FAILURE, while it has not been READY since.
    pub(super) fn last_failure(&self) -> Option<String> {
        let why = self.last_failure.lock().unwrap_or_else(PoisonError::into_inner).clone();
        why.filter(|_| self.failed())
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

    /// One more call (attempt) goes to it.
    pub(super) fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Its address, state and calls now.
    pub(super) fn backend(&self) -> Backend {
        Backend {
            address: self.address.to_string(),
            state: self.state(),
            calls: self.calls.load(Ordering::Relaxed),
            ejected: self.outlier.ejected(),
        }
    }

    /// Dials a new connection now and makes it the transport new calls go
    /// on, without a call: whether it came up (its server spoke HTTP/2)
    /// within `timeout`.
    pub(super) async fn connect(&self, timeout: Duration) -> bool {
        let Some((endpoint, connector)) = &self.renewal else { return false };
        // READY once the connection is the transport: what waits for READY
        // (a health watch, a pick) finds it there.
        connector.defer_ready(true);
        // The connector bounds the dial by the connect timeout; this only
        // guards against a dial that would not end.
        let endpoint = endpoint.clone();
        let dialing = endpoint.connect_with_connector(connector.clone());
        let dialed = tokio::time::timeout(timeout + Duration::from_secs(1), dialing).await;
        connector.defer_ready(false);
        let Ok(Ok(channel)) = dialed else { return false };
        {
            let mut transport = self.transport.write().unwrap_or_else(PoisonError::into_inner);
            *transport = (transport.0 + 1, channel);
        }
        self.connectivity.set(ConnectivityState::Ready);
        true
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

/// Subchannels to 127.0.0.1:1000 and on, their connections in `states`,
/// unchecked for health: for the tests of the pick and of the state.
#[cfg(test)]
pub(super) fn in_states(states: &[ConnectivityState]) -> Vec<std::sync::Arc<Subchannel>> {
    states
        .iter()
        .enumerate()
        .map(|(i, &state)| {
            let connectivity = Connectivity::default();
            connectivity.set(state);
            let port = 1000 + u16::try_from(i).expect("few");
            let address = Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
            let channel = Endpoint::from_static("http://localhost").connect_lazy();
            let sub = Subchannel::new(address, channel, None, connectivity, Health::Unchecked);
            sub.update_state(|_, _| {});
            std::sync::Arc::new(sub)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::client::channel::ejection::Ejection;

    #[tokio::test]
    async fn health_and_ejection_decide_over_a_ready_connection() {
        use ConnectivityState::{Connecting, Idle, Ready, TransientFailure as Failing};
        let subs = in_states(&[Ready]);
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
        sub.outlier.set_ejection(Ejection { since: Some(Instant::now()), multiplier: 1 });
        assert_eq!(state(Health::Serving), Failing, "ejected: TRANSIENT_FAILURE (gRFC A50)");
        sub.connectivity.set(Idle);
        assert_eq!(sub.derived(), Failing, "ejected whatever its connection");
        sub.outlier.set_ejection(Ejection::default());
        assert_eq!(sub.derived(), Idle);
    }
}
