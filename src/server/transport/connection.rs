//! An accepted connection as hyper reads and writes it: its socket (TCP,
//! TLS over TCP, or a Unix socket), the first word's deadline, the frame
//! watch fed both ways, the GOAWAY of an abusive connection put between two
//! of hyper's frames, and the socket closed gently (lingering) when it goes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use super::peer::{Peer, PeerNames};
use tokio_util::either::Either;

use super::first_word::{FirstWord, FirstWordParser};
use super::limits::Slot;
use super::watch::{Abuse, Watch};

/// A connection ready to serve.
#[derive(Debug)]
pub(in crate::server) struct Connection {
    /// The socket; none once `Drop` has handed it over to be closed.
    io: Option<Io>,
    /// Until the first word has arrived: its deadline, and what came so far.
    first_word: Option<FirstWord>,
    /// Ends when the first word has arrived (or the connection has gone),
    /// until taken by [`Connection::first_word_said`].
    said: Option<oneshot::Receiver<()>>,
    /// The HTTP/2 frames both ways, for the abuse hyper does not bound.
    watch: Watch,
    /// Closing for abuse: the GOAWAY, and how much of it is written.
    closing: Option<Closing>,
    /// Its place among the open connections, held until the socket closes.
    slot: Option<Slot>,
}

/// A connection closing for abuse (see `watch.rs`).
#[derive(Debug)]
struct Closing {
    abuse: Abuse,
    goaway: Vec<u8>,
    sent: usize,
    /// Whether the GOAWAY is out and the sending side shut.
    done: bool,
}

/// How long a closed connection reads and drops what its peer still sends
/// (see [`Connection`]'s `Drop`).
const LINGER: Duration = Duration::from_secs(2);

/// The bytes of a connection: cleartext TCP (HTTP/2 by prior knowledge, or
/// HTTP/1.1), TLS over TCP (the handshake done; ALPN chose HTTP/2 or
/// HTTP/1.1), or a Unix domain socket (plaintext). tokio-util's `Either`
/// forwards every read and write, vectored ones included, to the one held.
pub(super) type Io = Either<TcpStream, Either<Box<TlsStream<TcpStream>>, UnixStream>>;

/// The socket of a connection, pinned for a read or a write: an error once
/// it has been handed over to be closed (only `Drop` does that, so hyper
/// never sees it).
fn socket(io: &mut Option<Io>) -> io::Result<Pin<&mut Io>> {
    io.as_mut().map(Pin::new).ok_or_else(|| io::ErrorKind::NotConnected.into())
}

impl Connection {
    /// `io` accepted, its place `slot` among the open connections: its
    /// first word due by `deadline`, its PINGs and SETTINGS no closer than
    /// `min_ping_interval`.
    pub(super) fn new(io: Io, deadline: Instant, min_ping_interval: Duration, slot: Slot) -> Self {
        let (waiting, said) = oneshot::channel();
        Self {
            io: Some(io),
            first_word: Some(FirstWord {
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                parser: FirstWordParser::default(),
                _waiting: waiting,
            }),
            said: Some(said),
            watch: Watch::new(min_ping_interval),
            closing: None,
            slot: Some(slot),
        }
    }

    /// What the TLS session says of the peer: plaintext, or its client
    /// certificate's names (read once, here).
    pub(super) fn peer(&self) -> Peer {
        match self.io.as_ref() {
            Some(Either::Right(Either::Left(tls))) => match tls.get_ref().1.peer_certificates().and_then(|c| c.first())
            {
                Some(cert) => PeerNames::of(cert).map_or(Peer::Anonymous, |names| Peer::Certified(Arc::new(names))),
                None => Peer::Anonymous,
            },
            _ => Peer::Plaintext,
        }
    }

    /// Resolves once the first word has arrived (or the connection is
    /// gone). From then on hyper knows the connection's HTTP version, and a
    /// GOAWAY (its `graceful_shutdown`) lets the calls already sent finish;
    /// before, it closes the connection unread. Once per connection: later
    /// calls resolve at once.
    pub(super) fn first_word_said(&mut self) -> impl Future<Output = ()> + Send + 'static {
        let said = self.said.take();
        async move {
            if let Some(said) = said {
                // Never sent: the sender's drop is the news.
                let _ = said.await;
            }
        }
    }

    /// The peer's address, for the call log.
    pub(super) fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match self.io.as_ref()? {
            Either::Left(tcp) => tcp.peer_addr().ok(),
            Either::Right(Either::Left(tls)) => tls.get_ref().0.peer_addr().ok(),
            Either::Right(Either::Right(_unix)) => None,
        }
    }
}

impl Connection {
    /// Writes what is left of the GOAWAY of a connection closing for abuse,
    /// once the server's last frame is whole, and shuts the sending side;
    /// then the connection ends for hyper (and lingers: see `Drop`).
    fn poll_goaway(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(closing) = self.closing.as_mut() else { return Poll::Ready(Ok(())) };
        if closing.done {
            return Poll::Ready(Ok(()));
        }
        if !self.watch.at_boundary() {
            // hyper is inside a frame: it writes the rest first (poll_write).
            return Poll::Pending;
        }
        while closing.sent < closing.goaway.len() {
            let n = ready!(socket(&mut self.io)?.poll_write(cx, &closing.goaway[closing.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            closing.sent += n;
        }
        ready!(socket(&mut self.io)?.poll_shutdown(cx))?;
        closing.done = true;
        Poll::Ready(Ok(()))
    }
}

impl Connection {
    /// Starts closing for `abuse`: the GOAWAY goes out once the server's
    /// frame in progress is whole.
    fn close_for(&mut self, abuse: Abuse) {
        let peer = self.peer_addr();
        tracing::warn!(?peer, reason = abuse.name(), "closing an abusive HTTP/2 connection with a GOAWAY");
        self.closing = Some(Closing { abuse, goaway: self.watch.goaway(abuse), sent: 0, done: false });
    }

    /// Follows what the socket took of a write.
    fn written(&mut self, bytes: &[u8]) {
        if let Some(abuse) = self.watch.written(bytes) {
            self.close_for(abuse);
        }
    }
}

impl Drop for Connection {
    /// Closes the socket gently: its sending side first, then whatever the
    /// peer still sends is read and dropped until it closes too, for at
    /// most [`LINGER`], in a task of its own. Closing a socket with unread
    /// bytes resets the connection, and a reset can destroy the last frames
    /// before the peer reads them: a GOAWAY, or the answer to a request a
    /// proxy sent as the connection was closing (which it would retry on a
    /// clean close, and fail on a reset).
    fn drop(&mut self) {
        let slot = self.slot.take();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        match self.io.take() {
            Some(Either::Left(tcp)) => drop(runtime.spawn(linger(tcp, slot))),
            Some(Either::Right(Either::Left(tls))) => drop(runtime.spawn(linger(tls.into_inner().0, slot))),
            Some(Either::Right(Either::Right(unix))) => drop(runtime.spawn(linger(unix, slot))),
            None => {}
        }
    }
}

/// See [`Connection`]'s `Drop`.
pub(super) async fn linger(mut socket: impl AsyncRead + AsyncWrite + Unpin, slot: Option<Slot>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Fails on a socket already shut or reset: nothing to wait for then.
    if socket.shutdown().await.is_ok() {
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(LINGER, async {
            while let Ok(n) = socket.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
    drop(slot);
}

// Connection's reads and writes are hand-written, not forwarded: they keep
// the first-word deadline, feed the frame watch, and put the GOAWAY of an
// abusive connection between two of hyper's frames. The forwarding to the
// socket below is `Either`'s.
impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(closing) = &this.closing {
            let abuse = closing.abuse;
            ready!(this.poll_goaway(cx))?;
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, abuse.name())));
        }
        if let Some(first_word) = this.first_word.as_mut()
            && first_word.deadline.as_mut().poll(cx).is_ready()
        {
            // An error from the read is how a server connection ends: hyper
            // closes it.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 preface and SETTINGS, nor HTTP/1.1 request head, within --handshake-timeout",
            )));
        }
        let before = buf.filled().len();
        ready!(socket(&mut this.io)?.poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if let Some(first_word) = this.first_word.as_mut()
            && first_word.parser.feed(read)
        {
            this.first_word = None;
        }
        if let Some(abuse) = this.watch.read(read) {
            this.close_for(abuse);
        }
        // What was read is still served; the GOAWAY goes out before the
        // next read or write.
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut buf = buf;
        if this.closing.is_some() {
            // Only the rest of the frame hyper is in; then the GOAWAY.
            let rest = this.watch.rest_of_frame(buf.len());
            if rest == 0 {
                ready!(this.poll_goaway(cx))?;
                // The GOAWAY is the last frame: what hyper writes after it
                // goes nowhere.
                return Poll::Ready(Ok(buf.len()));
            }
            buf = &buf[..rest];
        }
        let n = ready!(socket(&mut this.io)?.poll_write(cx, buf))?;
        this.written(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.closing.is_some() {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            return Pin::new(this).poll_write(cx, first);
        }
        let n = ready!(socket(&mut this.io)?.poll_write_vectored(cx, bufs))?;
        // What the socket took, slice by slice.
        let mut left = n;
        for slice in bufs {
            let take = left.min(slice.len());
            this.written(&slice[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closing.as_ref().is_some_and(|closing| closing.done) {
            return Poll::Ready(Ok(())); // flushed and shut with the GOAWAY
        }
        if this.closing.is_some() && this.watch.at_boundary() {
            // A verdict on what the server wrote (its resets): the GOAWAY
            // goes out now, not at the next read, which may never come.
            return this.poll_goaway(cx);
        }
        socket(&mut this.io)?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closing.as_ref().is_some_and(|closing| closing.done) {
            return Poll::Ready(Ok(()));
        }
        socket(&mut this.io)?.poll_shutdown(cx)
    }
}
