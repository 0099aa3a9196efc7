//! The client channel's connectivity state, as grpc defines it (IDLE,
//! CONNECTING, READY, TRANSIENT_FAILURE, SHUTDOWN), read and waited on as
//! grpc.aio's `get_state` and `wait_for_state_change` do.
//!
//! tonic has no such API, so the state is kept here from the connection's
//! own events: the channel dials through [`TrackingConnector`], which sets
//! CONNECTING when it dials, READY when the transport is up and
//! TRANSIENT_FAILURE when dialing fails; the current connection's socket
//! sets IDLE when it closes (an older one, still finishing its calls after a
//! GOAWAY while a new one serves, closes quietly), or TRANSIENT_FAILURE when
//! it closes after the peer fell silent for longer than the keepalive
//! timeout (hyper gave up on an unanswered keepalive ping: the only reason
//! it closes a connection whose peer said nothing);
//! [`Connectivity::shutdown`] sets SHUTDOWN for good.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
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
        let mut from = None;
        self.state.send_if_modified(|state| {
            let changes = *state != next && *state != ConnectivityState::Shutdown;
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

/// Why dialing failed: the innermost cause, for a one-line message.
#[derive(Debug, thiserror::Error)]
#[error("{cause}")]
pub struct ConnectFailed {
    cause: String,
}

/// One address a subchannel dials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// TCP.
    Tcp(SocketAddr),
    /// A Unix domain socket.
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Dials one address for tonic's channel (a subchannel's), reporting each
/// step to a [`Connectivity`]. TLS goes on top, for `https://` targets
/// (`secure.rs`); the URI tonic passes only names the authority.
#[derive(Debug, Clone)]
pub struct TrackingConnector {
    address: Address,
    connectivity: Connectivity,
    connect_timeout: Duration,
    keepalive_timeout: Option<Duration>,
}

impl TrackingConnector {
    /// A connector to `address` reporting to `connectivity`, giving up a
    /// dial after `connect_timeout`.
    #[must_use]
    pub fn new(address: Address, connectivity: Connectivity, connect_timeout: Duration) -> Self {
        Self { address, connectivity, connect_timeout, keepalive_timeout: None }
    }

    /// The channel pings the peer after a silence and closes the connection
    /// when no answer comes within `timeout`: such a close is reported as
    /// TRANSIENT_FAILURE, not IDLE.
    #[must_use]
    pub fn with_keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = Some(timeout);
        self
    }
}

type Dialing = Pin<Box<dyn Future<Output = Result<TokioIo<TrackedStream>, ConnectFailed>> + Send>>;

impl tower::Service<Uri> for TrackingConnector {
    type Response = TokioIo<TrackedStream>;
    type Error = ConnectFailed;
    type Future = Dialing;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _authority: Uri) -> Self::Future {
        let connectivity = self.connectivity.clone();
        let timeout = self.connect_timeout;
        let address = self.address.clone();
        let keepalive_timeout = self.keepalive_timeout;
        connectivity.set(ConnectivityState::Connecting);
        Box::pin(async move {
            let dialed = tokio::time::timeout(timeout, dial(&address)).await.unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within the {} connect timeout", humantime::format_duration(timeout)),
                ))
            });
            match dialed {
                Ok(stream) => {
                    connectivity.answered.store(false, Ordering::Relaxed);
                    let connection = connectivity.connection.fetch_add(1, Ordering::AcqRel) + 1;
                    connectivity.set(ConnectivityState::Ready);
                    let heard = std::time::Instant::now();
                    Ok(TokioIo::new(TrackedStream { stream, connectivity, connection, keepalive_timeout, heard }))
                }
                Err(err) => {
                    let cause = err.to_string();
                    connectivity.set_because(ConnectivityState::TransientFailure, Some(&cause));
                    Err(ConnectFailed { cause })
                }
            }
        })
    }
}

/// Connects to `address`.
async fn dial(address: &Address) -> io::Result<Stream> {
    match address {
        Address::Tcp(addr) => {
            let stream = TcpStream::connect(addr).await?;
            // gRPC messages are small and latency-bound.
            stream.set_nodelay(true)?;
            Ok(Stream::Tcp(stream))
        }
        #[cfg(unix)]
        Address::Unix(path) => Ok(Stream::Unix(tokio::net::UnixStream::connect(path).await?)),
        #[cfg(not(unix))]
        Address::Unix(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "Unix sockets need a Unix system")),
    }
}

/// A connection's socket.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// A connection's socket: when hyper drops it (the connection closed, for
/// whatever reason), the subchannel is IDLE until the next dial, or
/// TRANSIENT_FAILURE when the peer had been silent past the keepalive
/// timeout.
#[derive(Debug)]
pub struct TrackedStream {
    stream: Stream,
    connectivity: Connectivity,
    /// Which of the subchannel's connections this is.
    connection: u64,
    /// Set when the channel sends keepalive pings.
    keepalive_timeout: Option<Duration>,
    /// When a read last completed (bytes, the end, or an error).
    heard: std::time::Instant,
}

/// Calls `$call` on the stream inside a [`Stream`], whichever it is.
macro_rules! on_stream {
    ($stream:expr, $s:ident => $call:expr) => {
        match $stream {
            Stream::Tcp($s) => $call,
            #[cfg(unix)]
            Stream::Unix($s) => $call,
        }
    };
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        // An older connection, replaced after its GOAWAY, ends quietly.
        if self.connectivity.connection.load(Ordering::Acquire) != self.connection {
            return;
        }
        // A peer that closes or resets the connection, or sends a GOAWAY, is
        // read just before: hyper closing after a silence longer than the
        // keepalive timeout means its ping went unanswered.
        match self.keepalive_timeout {
            Some(timeout) if self.heard.elapsed() >= timeout => {
                let why = format!(
                    "no answer to a keepalive ping within {}: the connection is closed",
                    humantime::format_duration(timeout)
                );
                self.connectivity.set_because(ConnectivityState::TransientFailure, Some(&why));
            }
            _ => self.connectivity.set(ConnectivityState::Idle),
        }
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = on_stream!(&mut this.stream, s => Pin::new(s).poll_read(cx, buf));
        if read.is_ready() {
            this.heard = std::time::Instant::now();
        }
        read
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        on_stream!(&mut self.get_mut().stream, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_stream!(&mut self.get_mut().stream, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        on_stream!(&self.stream, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(&mut self.get_mut().stream, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(&mut self.get_mut().stream, s => Pin::new(s).poll_shutdown(cx))
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

    #[tokio::test]
    async fn dialing_reports_connecting_then_ready_or_transient_failure() {
        use tower::ServiceExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connectivity = Connectivity::default();
        let connector = TrackingConnector::new(Address::Tcp(addr), connectivity.clone(), Duration::from_secs(5));
        let uri: Uri = format!("http://{addr}").parse().expect("uri");
        let stream = connector.clone().oneshot(uri.clone()).await.expect("dials");
        assert_eq!(connectivity.state(), ConnectivityState::Ready);
        drop(stream);
        assert_eq!(connectivity.state(), ConnectivityState::Idle, "a closed connection is IDLE");
        // A second connection replaces the first (a GOAWAY, say): the first
        // closing later leaves the subchannel READY.
        let first = connector.clone().oneshot(uri.clone()).await.expect("dials");
        let second = connector.clone().oneshot(uri.clone()).await.expect("dials again");
        drop(first);
        assert_eq!(connectivity.state(), ConnectivityState::Ready, "the replaced connection ends quietly");
        drop(second);
        assert_eq!(connectivity.state(), ConnectivityState::Idle);
        drop(listener);
        let err = connector.oneshot(uri).await.expect_err("nothing listens");
        assert_eq!(connectivity.state(), ConnectivityState::TransientFailure);
        assert!(err.to_string().contains("refused"), "{err}");
    }
}
