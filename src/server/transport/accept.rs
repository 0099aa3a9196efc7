//! Accepting connections: one task per listening socket accepts (Nagle
//! off: gRPC messages are small and latency-bound), past `--max-connections`
//! a new connection is closed at once (counted, and logged once a second),
//! and each TLS handshake runs in a task of its own, so that a slow or silent
//! client never holds up the next accept. Within the handshake timeout a
//! connection must also say its first word: the HTTP/2 preface and SETTINGS,
//! or an HTTP/1.1 request head; else it is closed. Connections ready to serve
//! come out of one stream; when the server stops taking that stream (a
//! drain), the tasks end and the listening sockets close.
//!
//! Crates checked: `tls-listener` runs handshakes concurrently under a
//! timeout, but has no limit of connections held until they close and no
//! deadline for a plaintext connection's first word; hyper bounds the
//! HTTP/1.1 request head's time (`header_read_timeout`, used) but not the
//! HTTP/2 preface's; tower's `ConcurrencyLimit` counts requests, not
//! connections.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

use super::listen::{Listeners, UnixSocket};
use super::watch::{Abuse, Watch};

/// Connections accepted but not yet taken by the server: a short queue, so
/// that accepting slows down when serving does.
const QUEUE: usize = 64;

/// After an accept error (out of file descriptors, say), how long to wait
/// before accepting again, rather than spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How often the refused connections are logged, at most.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(1);

/// The first bytes of an HTTP/2 connection (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The frame header's length and the SETTINGS frame's type.
const FRAME_HEADER: usize = 9;
const SETTINGS: u8 = 0x4;

/// The most bytes looked at for the first word: past that, hyper's own
/// limits on heads and frames decide.
const FIRST_WORD_MAX: usize = 64 << 10;

/// The connections open and those refused, shared by the accept tasks.
#[derive(Debug)]
pub(in crate::server) struct Limits {
    max: usize,
    open: AtomicUsize,
    refused: AtomicU64,
    logged: Mutex<Option<Instant>>,
}

impl Limits {
    /// At most `max` connections at once.
    pub(in crate::server) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, open: AtomicUsize::new(0), refused: AtomicU64::new(0), logged: Mutex::new(None) })
    }

    /// Connections open now.
    pub(in crate::server) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused since the server started.
    pub(in crate::server) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A place for a new connection, or none at the limit (counted).
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        if self.open.fetch_add(1, Ordering::AcqRel) < self.max {
            return Some(Slot(Arc::clone(self)));
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        // One line a second however many are refused: a flood of
        // connections must not become a flood of log lines.
        if let Ok(mut logged) = self.logged.lock() {
            let now = Instant::now();
            if logged.is_none_or(|at| now.duration_since(at) >= REFUSED_LOG_EVERY) {
                *logged = Some(now);
                tracing::warn!(limit = self.max, refused, "refusing connections over --max-connections");
            }
        }
        None
    }
}

/// A connection's place among the open ones, given back when it closes.
#[derive(Debug)]
struct Slot(Arc<Limits>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection ready to serve.
#[derive(Debug)]
pub(in crate::server) struct Connection {
    /// The socket; none once `Drop` has handed it over to be closed.
    io: Option<Io>,
    /// Until the first word has arrived: its deadline, and what came so far.
    first_word: Option<FirstWord>,
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
type Io = Either<TcpStream, Either<Box<TlsStream<TcpStream>>, UnixStream>>;

/// The socket of a connection, pinned for a read or a write: an error once
/// it has been handed over to be closed (only `Drop` does that, so hyper
/// never sees it).
fn socket(io: &mut Option<Io>) -> io::Result<Pin<&mut Io>> {
    io.as_mut().map(Pin::new).ok_or_else(|| io::ErrorKind::NotConnected.into())
}

/// Waiting for a connection's first word (see the module documentation).
#[derive(Debug)]
struct FirstWord {
    deadline: Pin<Box<Sleep>>,
    parser: FirstWordParser,
}

/// Follows a connection's first bytes until its first word is complete.
/// It keeps a few bytes, not the word: the preface and the first frame's
/// header (33 bytes), and the last 3 bytes read, where an HTTP/1.1 head's
/// empty line may begin. Each byte is looked at once, however the peer
/// cuts what it sends.
#[derive(Debug, Default)]
struct FirstWordParser {
    /// The connection's first bytes, up to the preface and a frame header.
    head: Vec<u8>,
    /// The last bytes read (at most 3).
    tail: Vec<u8>,
    /// Bytes read in all.
    read: usize,
}

impl FirstWordParser {
    /// Adds what was read; true once the first word is complete (or long
    /// enough that hyper's limits take over).
    fn feed(&mut self, data: &[u8]) -> bool {
        let keep = (PREFACE.len() + FRAME_HEADER).saturating_sub(self.head.len()).min(data.len());
        self.head.extend_from_slice(&data[..keep]);
        self.read += data.len();
        let found = self.empty_line_in(data);
        if self.read >= FIRST_WORD_MAX {
            return true;
        }
        let head = &self.head[..];
        if head.len() < PREFACE.len() && PREFACE.starts_with(head) {
            return false; // maybe HTTP/2, not yet sure
        }
        if let Some(frame) = head.strip_prefix(PREFACE) {
            // The client's SETTINGS must follow the preface; anything else is
            // a protocol error hyper answers at once.
            let Some(header) = frame.get(..FRAME_HEADER) else { return false };
            let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            return header[3] != SETTINGS || self.read >= PREFACE.len() + FRAME_HEADER + len;
        }
        // HTTP/1.1: the request head ends with an empty line.
        found
    }

    /// Whether `\r\n\r\n` ends in `data`, counting the bytes before it; and
    /// remembers the last 3 bytes for the next read.
    fn empty_line_in(&mut self, data: &[u8]) -> bool {
        const EMPTY_LINE: &[u8] = b"\r\n\r\n";
        let mut edge = std::mem::take(&mut self.tail);
        edge.extend_from_slice(&data[..data.len().min(EMPTY_LINE.len() - 1)]);
        let found = edge.windows(EMPTY_LINE.len()).any(|w| w == EMPTY_LINE)
            || data.windows(EMPTY_LINE.len()).any(|w| w == EMPTY_LINE);
        edge.extend_from_slice(&data[data.len().min(EMPTY_LINE.len() - 1)..]);
        self.tail = edge.split_off(edge.len().saturating_sub(EMPTY_LINE.len() - 1));
        found
    }
}

/// The connections of `listeners` (TLS with `tls` when given, each
/// handshake bounded by `handshake_timeout`; a Unix socket's plaintext).
pub(in crate::server) fn incoming(
    listeners: Listeners,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    min_ping_interval: Duration,
    limits: &Arc<Limits>,
) -> mpsc::Receiver<Connection> {
    let (ready, incoming) = mpsc::channel(QUEUE);
    let accepting = |tls: Option<TlsAcceptor>| Accepting {
        tls,
        handshake_timeout,
        min_ping_interval,
        limits: Arc::clone(limits),
        ready: ready.clone(),
    };
    for listener in listeners.listeners {
        tokio::spawn(accepting(tls.clone()).run(Listener::Tcp(listener)));
    }
    if let Some(unix) = listeners.unix {
        tokio::spawn(accepting(None).run(Listener::Unix(unix)));
    }
    incoming
}

/// What an accept task needs.
struct Accepting {
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    min_ping_interval: Duration,
    limits: Arc<Limits>,
    ready: mpsc::Sender<Connection>,
}

/// A listening socket.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixSocket),
}

impl Listener {
    async fn accept(&self) -> io::Result<Io> {
        match self {
            Self::Tcp(listener) => {
                let (tcp, _) = listener.accept().await?;
                // Only fails on a socket already closed, which serving will notice.
                let _ = tcp.set_nodelay(true);
                Ok(Either::Left(tcp))
            }
            Self::Unix(unix) => Ok(Either::Right(Either::Right(unix.listener.accept().await?.0))),
        }
    }
}

impl Accepting {
    /// Accepts on `listener` until the server stops taking connections.
    async fn run(self, listener: Listener) {
        let Self { tls, handshake_timeout, min_ping_interval, limits, ready } = self;
        loop {
            let accepted = tokio::select! {
                // The server took its last connection: close the socket.
                () = ready.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let io = match accepted {
                Ok(io) => io,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // Over the limit: closed at once (dropped), counted.
            let Some(slot) = limits.admit() else { continue };
            let deadline = Instant::now() + handshake_timeout;
            let first_word = Some(FirstWord {
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                parser: FirstWordParser::default(),
            });
            let connection = move |io, slot| Connection {
                io: Some(io),
                first_word,
                watch: Watch::new(min_ping_interval),
                closing: None,
                slot: Some(slot),
            };
            match (&tls, io) {
                (Some(acceptor), Either::Left(tcp)) => {
                    let (acceptor, ready) = (acceptor.clone(), ready.clone());
                    tokio::spawn(async move {
                        let peer = tcp.peer_addr().ok();
                        let handshake = acceptor.accept(tcp).into_fallible();
                        match tokio::time::timeout_at(deadline, handshake).await {
                            Ok(Ok(stream)) => {
                                let stream = Either::Right(Either::Left(Box::new(stream)));
                                let _ = ready.send(connection(stream, slot)).await;
                            }
                            Ok(Err((err, tcp))) => {
                                tracing::debug!(?peer, error = %err, "TLS handshake failed");
                                // The alert saying why (a client without the
                                // certificate mutual TLS asks for) is written;
                                // a close now, with the client's first request
                                // unread, would reset the connection, and the
                                // reset often reaches the client before it has
                                // read the alert (TLS 1.3: its handshake is
                                // over and it writes at once). Closed gently.
                                linger(tcp, Some(slot)).await;
                            }
                            Err(_) => tracing::debug!(?peer, timeout = ?handshake_timeout, "TLS handshake timed out"),
                        }
                    });
                }
                (_, io) => {
                    if ready.send(connection(io, slot)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

impl Connection {
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
async fn linger(mut socket: impl AsyncRead + AsyncWrite + Unpin, slot: Option<Slot>) {
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
            let peer = this.peer_addr();
            tracing::warn!(?peer, reason = abuse.name(), "closing an abusive HTTP/2 connection with a GOAWAY");
            this.closing = Some(Closing { abuse, goaway: this.watch.goaway(abuse), sent: 0, done: false });
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
        this.watch.written(&buf[..n]);
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
            this.watch.written(&slice[..take]);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the first word is complete, fed in two reads cut at `cut`:
    /// the number of bytes fed when `feed` first says so.
    fn completes_at(bytes: &[u8], cut: usize) -> Option<usize> {
        let mut parser = FirstWordParser::default();
        if parser.feed(&bytes[..cut]) {
            return Some(cut);
        }
        // The rest byte by byte, to see exactly where it completes.
        (cut..bytes.len()).find(|&at| parser.feed(&bytes[at..=at])).map(|at| at + 1)
    }

    #[test]
    fn the_first_word_completes_where_it_ends_however_it_is_cut() {
        let h2: Vec<u8> = [PREFACE, &[0, 0, 6, SETTINGS, 0, 0, 0, 0, 0], &[0, 3, 0, 0, 0, 100], b"more"].concat();
        let h2_end = PREFACE.len() + FRAME_HEADER + 6;
        let h1 = b"POST /x HTTP/1.1\r\nHost: a\r\n\r\nbody".to_vec();
        let h1_end = h1.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4);
        for cut in 0..h2_end {
            assert_eq!(completes_at(&h2, cut), Some(h2_end), "HTTP/2, cut at {cut}");
        }
        for cut in 0..h1_end.unwrap_or_default() {
            assert_eq!(completes_at(&h1, cut), h1_end, "HTTP/1.1, cut at {cut}");
        }
        // A preface followed by something else than SETTINGS: hyper's to judge.
        let other: Vec<u8> = [PREFACE, &[0, 0, 0, 0x1, 0, 0, 0, 0, 1]].concat();
        assert_eq!(completes_at(&other, other.len()), Some(other.len()));
        // Half a head is not a first word.
        assert_eq!(completes_at(b"POST /x HTTP/1.1\r\nHost: a\r\n", 5), None);
    }
}
