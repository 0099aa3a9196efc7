//! The client channel's connectivity state, as grpc defines it (IDLE,
//! CONNECTING, READY, TRANSIENT_FAILURE, SHUTDOWN), read and waited on as
//! grpc.aio's `get_state` and `wait_for_state_change` do.
//!
//! tonic has no such API, so the state is kept here from the connection's
//! own events: the channel dials through `dial.rs`'s `TrackingConnector`, which sets
//! CONNECTING when it dials, READY when the transport is up and
//! TRANSIENT_FAILURE when dialing fails; the current connection's socket
//! sets IDLE when it closes (an older one, still finishing its calls after a
//! GOAWAY while a new one serves, closes quietly), or TRANSIENT_FAILURE when
//! it closes after the peer fell silent for longer than the keepalive
//! timeout (hyper gave up on an unanswered keepalive ping: the only reason
//! it closes a connection whose peer said nothing);
//! [`Connectivity::shutdown`] sets SHUTDOWN for good.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, watch};

/// A channel's connectivity state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// No connection, and none being made: the next call dials.
    Idle,
    /// Dialing.
    Connecting,
    /// Connected: calls go out at once.
    Ready,
    /// The last dial failed; the next call (or retry) dials again.
    TransientFailure,
    /// Closed for good by the application.
    Shutdown,
}

impl fmt::Display for ConnectivityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "IDLE",
            Self::Connecting => "CONNECTING",
            Self::Ready => "READY",
            Self::TransientFailure => "TRANSIENT_FAILURE",
            Self::Shutdown => "SHUTDOWN",
        })
    }
}

/// A handle on a channel's state; clones share it.
#[derive(Clone)]
pub struct Connectivity {
    state: Arc<watch::Sender<ConnectivityState>>,
    /// Whether the server has answered anything on the current connection:
    /// a transport failure before that means the connection never worked
    /// (a TLS alert, or a plaintext client at a TLS server), after it that
    /// the connection was lost.
    answered: Arc<AtomicBool>,
    /// Which connection is the current one: a subchannel dials a new one
    /// while an old one that got a GOAWAY still finishes its calls, and only
    /// the current one's end says anything of the subchannel.
    connection: Arc<AtomicU64>,
    /// The error the current connection's TLS session ended with before the
    /// server answered anything (an alert: a client certificate required),
    /// for the calls it failed without a word (`secure.rs`).
    refused: Arc<Mutex<Option<String>>>,
    /// Listeners to every transition (a watch keeps only the latest state).
    listeners: Arc<Mutex<Vec<mpsc::UnboundedSender<Transition>>>>,
    /// Called at each transition, in order, as it happens (a subchannel's
    /// channel aggregates its state this way).
    on_change: Arc<OnceLock<OnChange>>,
}

impl fmt::Debug for Connectivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connectivity").field("state", &self.state()).finish_non_exhaustive()
    }
}

/// What a transition calls: from, to, and why when the cause is known (the
/// dial's error, an unanswered keepalive ping).
pub(super) type OnChange = Box<dyn Fn(ConnectivityState, ConnectivityState, Option<&str>) + Send + Sync>;

/// One change of state: from, to.
pub type Transition = (ConnectivityState, ConnectivityState);

impl Default for Connectivity {
    fn default() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(ConnectivityState::Idle)),
            answered: Arc::new(AtomicBool::new(false)),
            connection: Arc::default(),
            refused: Arc::default(),
            listeners: Arc::default(),
            on_change: Arc::default(),
        }
    }
}

impl Connectivity {
    /// The state now.
    #[must_use]
    pub fn state(&self) -> ConnectivityState {
        *self.state.borrow()
    }

    /// Waits until the state is no longer `last`, and returns the new one.
    /// Returns at once when the state already differs.
    pub async fn wait_for_state_change(&self, last: ConnectivityState) -> ConnectivityState {
        let mut states = self.state.subscribe();
        match states.wait_for(|state| *state != last).await {
            Ok(state) => *state,
            // The sender lives in `self`: it cannot be dropped while we wait.
            Err(_) => self.state(),
        }
    }

    /// Every transition from now on, none skipped (unlike
    /// [`Connectivity::wait_for_state_change`], which, like grpc's, returns
    /// the state at the time it looks).
    #[must_use]
    pub fn transitions(&self) -> mpsc::UnboundedReceiver<Transition> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.listeners.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(tx);
        rx
    }

    /// Moves to SHUTDOWN, which no later event leaves.
    pub fn shutdown(&self) {
        self.set(ConnectivityState::Shutdown);
    }

    /// Whether the server has answered on the current connection.
    pub(crate) fn answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    /// Records that the server answered a call.
    pub(crate) fn mark_answered(&self) {
        self.answered.store(true, Ordering::Relaxed);
    }

    /// Why the current connection's TLS session ended before the server
    /// answered, if it said.
    pub(crate) fn refused(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records why the current connection's TLS session ended (`None` for
    /// a new connection).
    pub(super) fn set_refused(&self, why: Option<String>) {
        *self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = why;
    }

    pub(crate) fn set(&self, next: ConnectivityState) {
        self.set_because(next, None);
    }

    /// [`Connectivity::set`], saying why.
    pub(crate) fn set_because(&self, next: ConnectivityState, why: Option<&str>) {
        self.change(next, why, None);
    }

    /// [`Connectivity::set_because`], only while connection number
    /// `connection` is the current one and READY: checked and set at once,
    /// so that a connection replaced meanwhile (its successor READY) says
    /// nothing, nor one that never was READY (its handshake said why).
    pub(super) fn set_if_current(&self, connection: u64, next: ConnectivityState, why: Option<&str>) {
        self.change(next, why, Some(connection));
    }

    fn change(&self, next: ConnectivityState, why: Option<&str>, only_for: Option<u64>) {
        let mut from = None;
        self.state.send_if_modified(|state| {
            // Under the state's lock: a new connection's READY is set under
            // it too, after its number was taken.
            let current = only_for.is_none_or(|connection| {
                self.connection.load(Ordering::Acquire) == connection && *state == ConnectivityState::Ready
            });
            let changes = current && *state != next && *state != ConnectivityState::Shutdown;
            if changes {
                from = Some(*state);
                *state = next;
            }
            changes
        });
        if let Some(from) = from {
            if let Some(on_change) = self.on_change.get() {
                on_change(from, next, why);
            }
            let mut listeners = self.listeners.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            listeners.retain(|listener| listener.send((from, next)).is_ok());
        }
    }

    /// A new connection's socket is up: nothing answered on it yet, and it
    /// is the current one (READY once its server has spoken: `preface.rs`).
    /// Returns its number, for [`Connectivity::set_if_current`].
    pub(super) fn new_connection(&self) -> u64 {
        self.answered.store(false, Ordering::Relaxed);
        self.connection.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// A receiver of the state, to wait for one.
    pub(super) fn subscribe(&self) -> watch::Receiver<ConnectivityState> {
        self.state.subscribe()
    }

    /// Calls `on_change` at every transition from now on (once per
    /// connectivity: later calls are ignored).
    pub(super) fn on_change(&self, on_change: OnChange) {
        let _ = self.on_change.set(on_change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn states_change_and_waiters_see_each_change() {
        let connectivity = Connectivity::default();
        assert_eq!(connectivity.state(), ConnectivityState::Idle);
        let waiter = {
            let connectivity = connectivity.clone();
            tokio::spawn(async move { connectivity.wait_for_state_change(ConnectivityState::Idle).await })
        };
        connectivity.set(ConnectivityState::Connecting);
        assert_eq!(waiter.await.expect("join"), ConnectivityState::Connecting);
        // Already different: no wait.
        assert_eq!(connectivity.wait_for_state_change(ConnectivityState::Idle).await, ConnectivityState::Connecting);
    }

    #[tokio::test]
    async fn transitions_are_all_seen_even_when_they_come_at_once() {
        let connectivity = Connectivity::default();
        let mut transitions = connectivity.transitions();
        connectivity.set(ConnectivityState::Connecting);
        connectivity.set(ConnectivityState::Ready);
        connectivity.set(ConnectivityState::Ready);
        connectivity.shutdown();
        let mut seen = Vec::new();
        while let Ok(transition) = transitions.try_recv() {
            seen.push(transition);
        }
        use ConnectivityState::{Connecting, Idle, Ready, Shutdown};
        assert_eq!(seen, [(Idle, Connecting), (Connecting, Ready), (Ready, Shutdown)]);
    }

    #[tokio::test]
    async fn shutdown_is_final() {
        let connectivity = Connectivity::default();
        connectivity.shutdown();
        connectivity.set(ConnectivityState::Ready);
        assert_eq!(connectivity.state(), ConnectivityState::Shutdown);
    }
}
