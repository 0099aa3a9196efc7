//! A connection is READY only once the server has spoken HTTP/2: after the
//! socket (and TLS) is up, the client sends the HTTP/2 connection preface
//! and waits, within what is left of the connect timeout, for the server's
//! first frame, which must be SETTINGS (RFC 9113, 3.4), as grpc-go and grpc
//! C++ wait for the server preface before a transport takes calls. A process
//! that accepts TCP but never answers (frozen, or another program on the
//! port) is a failed dial, not a READY subchannel holding calls; one that
//! answers in HTTP/1.1 or TLS is named.
//!
//! hyper then speaks HTTP/2 over the same socket: the frame already read is
//! given back to its first reads, and the preface it writes first, already
//! sent, is taken off its first writes. tonic and hyper (checked) hand a
//! connection its calls as soon as the socket is up: no setting waits for
//! the server's preface.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, timeout_at};

use super::connectivity::{Connectivity, ConnectivityState};
use super::dial::{self, ConnectFailed};
use super::secure::{Secured, refusal};

/// The client connection preface's fixed part (RFC 9113, 3.4).
const MAGIC: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A frame header's length.
const HEADER: usize = 9;
/// The SETTINGS frame type.
const SETTINGS: u8 = 0x4;
/// How much later than the connect timeout a dial is given up here, so that
/// the TCP connect's own timeout, which says what it was, comes first.
const DIAL_GRACE: Duration = Duration::from_millis(100);
/// The largest first frame read: a SETTINGS frame holds a few six-byte
/// settings; HTTP/2's default frame size limit is far above any real one.
const MAX_FIRST_FRAME: usize = 16_384;

/// What a dial can fail with: the dialer's error, the TLS handshake's, or
/// the preface's.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Dials with `inner` (TCP, then TLS), then checks that the server speaks
/// HTTP/2, within `connect_timeout` in all; reports READY, or why not.
#[derive(Clone)]
pub(super) struct PrefaceConnector<C> {
    inner: C,
    connectivity: Connectivity,
    connect_timeout: Duration,
    /// READY is left to the caller, who makes the connection its transport
    /// first (`Subchannel::connect`).
    defer_ready: Arc<AtomicBool>,
    /// The target is plaintext: a server that ends the connection without a
    /// word may be a TLS server's, and the error says so.
    plaintext: bool,
}

impl<C> PrefaceConnector<C> {
    /// `inner`'s connections, READY on `connectivity` once the server's
    /// SETTINGS came within `connect_timeout` of the dial's start;
    /// `plaintext` when the target has no TLS.
    pub(super) fn new(inner: C, connectivity: Connectivity, connect_timeout: Duration, plaintext: bool) -> Self {
        Self { inner, connectivity, connect_timeout, defer_ready: Arc::default(), plaintext }
    }

    /// While `on`, a dial that succeeds leaves READY to the caller.
    pub(super) fn defer_ready(&self, on: bool) {
        self.defer_ready.store(on, Ordering::Release);
    }
}

type Connecting = dial::Finishing<TokioIo<Prefaced>>;

impl<C> tower::Service<Uri> for PrefaceConnector<C>
where
    C: tower::Service<Uri, Response = TokioIo<Secured>, Error = BoxError>,
    C::Future: Send + 'static,
{
    type Response = TokioIo<Prefaced>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let deadline = Instant::now() + self.connect_timeout;
        let (dialing, connectivity, timeout) = (self.inner.call(uri), self.connectivity.clone(), self.connect_timeout);
        let (defer_ready, plaintext) = (Arc::clone(&self.defer_ready), self.plaintext);
        let dial: Connecting = Box::pin(async move {
            let failed = |cause: String| -> BoxError {
                connectivity.set_because(ConnectivityState::TransientFailure, Some(&cause));
                Box::new(ConnectFailed::new(cause))
            };
            let within = humantime::format_duration(timeout);
            // The dial bounds its TCP connect by the same timeout, and says
            // so itself: this bound, a little later, is for a TLS handshake
            // that does not end.
            let socket = match timeout_at(deadline + DIAL_GRACE, dialing).await {
                Ok(Ok(socket)) => socket,
                Ok(Err(err)) => {
                    // The dial's and the TLS handshake's own errors, as they are.
                    connectivity.set_because(ConnectivityState::TransientFailure, Some(&dial_failure(&*err)));
                    return Err(err);
                }
                Err(_) => {
                    return Err(failed(format!("the TLS handshake did not end within the {within} connect timeout")));
                }
            };
            let mut socket = socket.into_inner();
            let first = match timeout_at(deadline, server_preface(&mut socket, plaintext)).await {
                Ok(Ok(first)) => first,
                Ok(Err(err)) => return Err(failed(err.to_string())),
                Err(_) => {
                    return Err(failed(format!(
                        "the server did not speak HTTP/2 within the {within} connect timeout (is it frozen, or is \
                         another program listening there?)"
                    )));
                }
            };
            if !defer_ready.load(Ordering::Acquire) {
                connectivity.set(ConnectivityState::Ready);
            }
            Ok(TokioIo::new(Prefaced { socket, replay: first, replayed: 0, unsent: MAGIC.len() }))
        });
        dial::finished_alone(dial)
    }
}

/// What a failed dial or TLS handshake says, as the calls it failed say it
/// (`call/failure.rs`).
fn dial_failure(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return format!("TLS handshake failed: {tls}");
        }
        cause = match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    err.to_string()
}

/// Why the server's preface was not what HTTP/2 says.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Preface(String);

/// Sends the client's preface and reads the server's first frame, which
/// must be SETTINGS: its bytes, for hyper to read again. Over `plaintext`,
/// a connection that ends first suggests TLS.
async fn server_preface(socket: &mut Secured, plaintext: bool) -> Result<Vec<u8>, BoxError> {
    let hint = if plaintext { " (is the server using TLS? try https://)" } else { "" };
    let bad = |why: String| -> BoxError { Box::new(Preface(why)) };
    socket.write_all(MAGIC).await?;
    socket.flush().await?;
    let mut first = Vec::with_capacity(64);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(why) = not_http2(&first) {
            return Err(bad(why));
        }
        if first.len() >= HEADER {
            let length = usize::from(first[0]) << 16 | usize::from(first[1]) << 8 | usize::from(first[2]);
            if first[3] != SETTINGS || first[5..9] != [0, 0, 0, 0] {
                return Err(bad(format!("the server's first HTTP/2 frame was not SETTINGS (type {})", first[3])));
            }
            if length > MAX_FIRST_FRAME {
                return Err(bad(format!("the server's first SETTINGS frame is {length} bytes long")));
            }
            if first.len() >= HEADER + length {
                return Ok(first);
            }
        }
        let read = match socket.read(&mut chunk).await {
            Ok(read) => read,
            Err(err) if err.to_string().contains("CertificateRequired") => return Err(bad(refusal(&err.to_string()))),
            Err(err) => return Err(bad(format!("the connection failed before the server spoke HTTP/2: {err}{hint}"))),
        };
        if read == 0 {
            return Err(bad(format!("the server closed the connection before it spoke HTTP/2{hint}")));
        }
        first.extend_from_slice(&chunk[..read]);
    }
}

/// What the first bytes say when they are not HTTP/2 at all.
fn not_http2(first: &[u8]) -> Option<String> {
    if first.starts_with(b"HTTP/") {
        let line = first.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
        return Some(format!(
            "the server answered in HTTP/1 ({:?}), not HTTP/2: is it a gRPC server?",
            String::from_utf8_lossy(line)
        ));
    }
    // A TLS record (an alert, a handshake) where HTTP/2 was expected.
    if first.len() >= 3 && matches!(first[0], 0x15 | 0x16) && first[1] == 0x03 {
        return Some("the server answered in TLS (is the server using TLS? try https://)".into());
    }
    None
}

/// A connection whose server has spoken HTTP/2: its first frame is read
/// again, and the preface hyper writes, already sent, is not sent twice.
#[derive(Debug)]
pub struct Prefaced {
    socket: Secured,
    /// The server's first frame, already read.
    replay: Vec<u8>,
    replayed: usize,
    /// Bytes of the client preface hyper has still to write (which are not
    /// sent again).
    unsent: usize,
}

impl AsyncRead for Prefaced {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replayed < this.replay.len() {
            let n = buf.remaining().min(this.replay.len() - this.replayed);
            buf.put_slice(&this.replay[this.replayed..this.replayed + n]);
            this.replayed += n;
            if this.replayed == this.replay.len() {
                this.replay = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.socket).poll_read(cx, buf)
    }
}

impl Prefaced {
    /// Takes what hyper writes of the preface off `buf`: how many bytes.
    fn skip_preface(&mut self, buf: &[u8]) -> io::Result<usize> {
        let sent = MAGIC.len() - self.unsent;
        let n = self.unsent.min(buf.len());
        if buf[..n] != MAGIC[sent..sent + n] {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "HTTP/2 did not begin with its preface"));
        }
        self.unsent -= n;
        Ok(n)
    }
}

impl AsyncWrite for Prefaced {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.unsent > 0 && !buf.is_empty() {
            return Poll::Ready(this.skip_preface(buf));
        }
        Pin::new(&mut this.socket).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.unsent > 0 {
            let first = bufs.iter().find(|buf| !buf.is_empty()).map_or(&[][..], |buf| &buf[..]);
            return Poll::Ready(this.skip_preface(first));
        }
        Pin::new(&mut this.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;
    use tower::ServiceExt;

    use super::*;
    use crate::client::channel::dial::{Address, TrackingConnector};
    use crate::client::channel::secure::SecureConnector;

    /// One dial, within 300 ms, of a listener that answers with `answer`
    /// (`None`: nothing): how it ended, the subchannel's state, the listener.
    async fn dial(answer: Option<&'static [u8]>) -> (Result<TokioIo<Prefaced>, BoxError>, Connectivity, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connectivity = Connectivity::default();
        let timeout = Duration::from_millis(300);
        let tcp = TrackingConnector::new(Address::Tcp(addr), connectivity.clone(), timeout);
        let connector = PrefaceConnector::new(
            SecureConnector::new(tcp, None, connectivity.clone()),
            connectivity.clone(),
            timeout,
            true,
        );
        let uri: Uri = format!("http://{addr}").parse().expect("uri");
        let dialing = tokio::spawn(connector.oneshot(uri));
        let (mut accepted, _) = listener.accept().await.expect("accept");
        if let Some(answer) = answer {
            accepted.write_all(answer).await.expect("answer");
        }
        let dialed = dialing.await.expect("join");
        // Keep the server's side open until the dial is over.
        drop(accepted);
        (dialed, connectivity, listener)
    }

    #[tokio::test]
    async fn a_server_that_accepts_but_never_speaks_is_a_failed_dial_not_ready() {
        let (dialed, connectivity, _listener) = dial(None).await;
        let err = dialed.expect_err("no preface");
        assert_eq!(
            err.to_string(),
            "the server did not speak HTTP/2 within the 300ms connect timeout (is it frozen, or is another program \
             listening there?)"
        );
        assert!(err.downcast_ref::<ConnectFailed>().is_some(), "the call was never sent: {err:?}");
        assert_eq!(connectivity.state(), ConnectivityState::TransientFailure);
    }

    #[tokio::test]
    async fn http1_and_tls_answers_are_named() {
        let (dialed, connectivity, _listener) = dial(Some(b"HTTP/1.1 400 Bad Request\r\n\r\n")).await;
        let err = dialed.expect_err("HTTP/1.1");
        assert!(err.to_string().starts_with("the server answered in HTTP/1 (\"HTTP/1.1 400 Bad Request\")"), "{err}");
        assert_eq!(connectivity.state(), ConnectivityState::TransientFailure);
        let (dialed, _, _listener) = dial(Some(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])).await;
        assert!(dialed.expect_err("a TLS alert").to_string().contains("try https://"));
        let (dialed, _, _listener) = dial(Some(&[0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0, 0, 1])).await;
        assert_eq!(
            dialed.expect_err("WINDOW_UPDATE first").to_string(),
            "the server's first HTTP/2 frame was not SETTINGS (type 8)"
        );
    }

    #[tokio::test]
    async fn after_the_servers_settings_the_connection_is_ready_and_hyper_sees_both_prefaces_once() {
        const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0];
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connectivity = Connectivity::default();
        let timeout = Duration::from_secs(5);
        let tcp = TrackingConnector::new(Address::Tcp(addr), connectivity.clone(), timeout);
        let connector = PrefaceConnector::new(
            SecureConnector::new(tcp, None, connectivity.clone()),
            connectivity.clone(),
            timeout,
            true,
        );
        let dialing = tokio::spawn(connector.oneshot(format!("http://{addr}").parse::<Uri>().expect("uri")));
        let (mut server, _) = listener.accept().await.expect("accept");
        server.write_all(EMPTY_SETTINGS).await.expect("settings");
        let mut io = dialing.await.expect("join").expect("the server spoke HTTP/2").into_inner();
        assert_eq!(connectivity.state(), ConnectivityState::Ready);
        // hyper reads the server's SETTINGS, and writes its own preface,
        // which went out once already, then a frame of its own.
        let mut first = [0u8; 9];
        io.read_exact(&mut first).await.expect("the settings again");
        assert_eq!(&first, EMPTY_SETTINGS);
        io.write_all(MAGIC).await.expect("the preface, taken off");
        io.write_all(EMPTY_SETTINGS).await.expect("the client's settings");
        io.flush().await.expect("flush");
        let mut seen = vec![0u8; MAGIC.len() + EMPTY_SETTINGS.len()];
        server.read_exact(&mut seen).await.expect("what the server read");
        assert_eq!(&seen[..MAGIC.len()], MAGIC);
        assert_eq!(&seen[MAGIC.len()..], EMPTY_SETTINGS, "one preface, then the client's SETTINGS");
    }
}
