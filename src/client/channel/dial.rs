//! Dialing one address: TCP (no Nagle) or a Unix socket, within the
//! connect timeout, each step reported to the subchannel's [`Connectivity`];
//! the socket's end, and a silence past the keepalive timeout, reported too.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::Endpoint;

use super::connectivity::{Connectivity, ConnectivityState};
use super::target::Target;

/// Client keepalive, as grpc's channel arguments name it: after
/// `KEEPALIVE_TIME` without hearing from the server, the client pings it;
/// with no answer within `KEEPALIVE_TIMEOUT` the connection is closed and
/// its subchannel goes to TRANSIENT_FAILURE, so calls move to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before a ping (grpc `KEEPALIVE_TIME`).
    pub time: Duration,
    /// How long a ping may go unanswered (grpc `KEEPALIVE_TIMEOUT`).
    pub timeout: Duration,
    /// Ping a connection with no call on it too (grpc
    /// `KEEPALIVE_PERMIT_WITHOUT_CALLS`).
    pub without_calls: bool,
}

impl Default for Keepalive {
    /// A ping after 10 s of silence (the shortest grpc-go lets a client
    /// set), answered within 5 s: a dead or frozen server is found within
    /// 15 s. The server's `--min-ping-interval` defaults to 5 s, half the
    /// time, so that pings at these settings are never strikes.
    fn default() -> Self {
        Self { time: Duration::from_secs(10), timeout: Duration::from_secs(5), without_calls: false }
    }
}

/// Why dialing failed: the innermost cause, for a one-line message.
#[derive(Debug, thiserror::Error)]
#[error("{cause}")]
pub struct ConnectFailed {
    cause: String,
}

impl ConnectFailed {
    /// A dial that failed because of `cause`.
    pub(super) fn new(cause: String) -> Self {
        Self { cause }
    }
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
                    let connection = connectivity.new_connection();
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

/// A dial under way, as a connector returns it.
pub(super) type Finishing<T> =
    Pin<Box<dyn Future<Output = Result<T, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

/// Runs `dial` as a task of its own, so that it ends, and says so, whoever
/// waits for it. tonic's transport dials inside the call that finds it
/// unconnected, and drives the dial only while a call waits: a call that
/// ends first (a hedge answered it, or a health watch stopped at the very
/// change to CONNECTING the dial made) leaves it where it was, the
/// subchannel CONNECTING with nothing dialing, which no pick then takes and
/// no later event moves. Finished alone, the dial makes the subchannel READY
/// (its connection waiting in the transport for the next call) or
/// TRANSIENT_FAILURE; a connection that nobody took closes, and the
/// subchannel is IDLE and dialed again.
pub(super) fn finished_alone<T: Send + 'static>(dial: Finishing<T>) -> Finishing<T> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return dial };
    let task = runtime.spawn(dial);
    Box::pin(async move { task.await.unwrap_or_else(|err| Err(Box::new(err))) })
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
        // An older connection, replaced after its GOAWAY, ends quietly, and
        // so does one that never became READY (its handshake said why). A
        // peer that closes or resets the connection, or sends a GOAWAY, is
        // read just before: hyper closing after a silence longer than the
        // keepalive timeout means its ping went unanswered.
        match self.keepalive_timeout {
            Some(timeout) if self.heard.elapsed() >= timeout => {
                let why = format!(
                    "no answer to a keepalive ping within {}: the connection is closed",
                    humantime::format_duration(timeout)
                );
                self.connectivity.set_if_current(self.connection, ConnectivityState::TransientFailure, Some(&why));
            }
            _ => self.connectivity.set_if_current(self.connection, ConnectivityState::Idle, None),
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

/// The endpoint of every subchannel's transport. TLS is set up over each
/// dialed socket by `secure.rs`, not by tonic: the channel speaks HTTP/2 to
/// what the connector returns, its requests saying https.
pub(super) fn endpoint(target: &Target, keepalive: Option<Keepalive>) -> Endpoint {
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
    if let Some(keepalive) = keepalive {
        endpoint = endpoint
            .http2_keep_alive_interval(keepalive.time)
            .keep_alive_timeout(keepalive.timeout)
            .keep_alive_while_idle(keepalive.without_calls);
    }
    endpoint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dialing_reports_connecting_then_the_socket_s_end_or_transient_failure() {
        use tower::ServiceExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connectivity = Connectivity::default();
        let connector = TrackingConnector::new(Address::Tcp(addr), connectivity.clone(), Duration::from_secs(5));
        let uri: Uri = format!("http://{addr}").parse().expect("uri");
        let stream = connector.clone().oneshot(uri.clone()).await.expect("dials");
        assert_eq!(connectivity.state(), ConnectivityState::Connecting, "READY waits for the server's preface");
        drop(stream);
        assert_eq!(connectivity.state(), ConnectivityState::Connecting, "a socket that never was READY ends quietly");
        let stream = connector.clone().oneshot(uri.clone()).await.expect("dials");
        connectivity.set(ConnectivityState::Ready);
        drop(stream);
        assert_eq!(connectivity.state(), ConnectivityState::Idle, "a closed connection is IDLE");
        // A second connection replaces the first (a GOAWAY, say): the first
        // closing later leaves the subchannel READY.
        let first = connector.clone().oneshot(uri.clone()).await.expect("dials");
        let second = connector.clone().oneshot(uri.clone()).await.expect("dials again");
        connectivity.set(ConnectivityState::Ready);
        drop(first);
        assert_eq!(connectivity.state(), ConnectivityState::Ready, "the replaced connection ends quietly");
        drop(second);
        assert_eq!(connectivity.state(), ConnectivityState::Idle);
        drop(listener);
        let err = connector.oneshot(uri).await.expect_err("nothing listens");
        assert_eq!(connectivity.state(), ConnectivityState::TransientFailure);
        assert!(err.to_string().contains("refused"), "{err}");
    }

    #[tokio::test]
    async fn a_dial_goes_on_to_ready_after_the_call_that_began_it_went_away() {
        use tokio::io::AsyncWriteExt;
        use tower::{Service, ServiceExt};

        use crate::client::channel::preface::PrefaceConnector;
        use crate::client::channel::secure::SecureConnector;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connectivity = Connectivity::default();
        let timeout = Duration::from_secs(5);
        let tcp = TrackingConnector::new(Address::Tcp(addr), connectivity.clone(), timeout);
        let secure = SecureConnector::new(tcp, None, connectivity.clone());
        let connector = PrefaceConnector::new(secure, connectivity.clone(), timeout, true);
        // A subchannel's transport, which its first call dials; held, as
        // the subchannel holds it.
        let transport =
            Endpoint::from_shared(format!("http://{addr}")).expect("uri").connect_with_connector_lazy(connector);
        let mut calling = transport.clone();
        let call = tokio::spawn(async move {
            calling.ready().await?;
            calling.call(http::Request::new(tonic::body::Body::empty())).await
        });
        let (mut server, _) = listener.accept().await.expect("the call dials");
        // The call goes (a hedge answered it elsewhere) before the server spoke.
        call.abort();
        let _ = call.await;
        assert_eq!(connectivity.state(), ConnectivityState::Connecting);
        server.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]).await.expect("the server's SETTINGS");
        // Bounded only so that a dial left behind fails the test, not hangs it.
        let after = tokio::time::timeout(timeout, connectivity.wait_for_state_change(ConnectivityState::Connecting));
        assert_eq!(after.await.ok(), Some(ConnectivityState::Ready), "no call waits, and the dial ends all the same");
        drop(transport);
    }
}
