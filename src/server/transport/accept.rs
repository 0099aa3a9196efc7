//! Accepting connections: one task per listening socket accepts (Nagle
//! off: gRPC messages are small and latency-bound), past `--max-connections`
//! a new connection is closed at once (counted, and logged once a second),
//! and each TLS handshake runs in a task of its own, so that a slow or silent
//! client never holds up the next accept. Within the handshake timeout a
//! connection must also say its first word: the HTTP/2 preface and SETTINGS,
//! or an HTTP/1.1 request head; else it is closed. Connections ready to serve
//! come out of one stream. On a drain (`stop`), each task takes what the
//! kernel has already accepted, the connections queued on its socket, and
//! then closes the socket: closing it with connections queued would reset
//! them, and with them calls their clients had already sent, which a proxy
//! such as nginx does not retry. The stream ends when every task has.
//!
//! Crates checked: `tls-listener` runs handshakes concurrently under a
//! timeout, but has no limit of connections held until they close and no
//! deadline for a plaintext connection's first word; hyper bounds the
//! HTTP/1.1 request head's time (`header_read_timeout`, used) but not the
//! HTTP/2 preface's; tower's `ConcurrencyLimit` counts requests, not
//! connections.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, Io, linger};
use super::limits::Limits;
use super::listen::{Listeners, UnixSocket};

/// Connections accepted but not yet taken by the server: a short queue, so
/// that accepting slows down when serving does.
const QUEUE: usize = 64;

/// After an accept error (out of file descriptors, say), how long to wait
/// before accepting again, rather than spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The most connections taken from a socket's queue when it closes: Linux's
/// largest listen queue by default (`net.core.somaxconn`), so that clients
/// still connecting cannot hold the drain in the sweep.
const QUEUED_MAX: usize = 4096;

/// The connections of `listeners` (TLS with `tls` when given, each
/// handshake bounded by `handshake_timeout`; a Unix socket's plaintext),
/// until `stop` and the connections queued then.
pub(in crate::server) fn incoming(
    listeners: Listeners,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    min_ping_interval: Duration,
    limits: &Arc<Limits>,
    stop: &CancellationToken,
) -> mpsc::Receiver<Connection> {
    let (ready, incoming) = mpsc::channel(QUEUE);
    let accepting = |tls: Option<TlsAcceptor>| Accepting {
        tls,
        handshake_timeout,
        min_ping_interval,
        limits: Arc::clone(limits),
        ready: ready.clone(),
        stop: stop.clone(),
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
    stop: CancellationToken,
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

    /// A connection the kernel has accepted and nobody has taken yet, taken
    /// without waiting (a plain `accept` on the non-blocking socket: tokio's
    /// would wait for the reactor to report the socket readable); none once
    /// the queue is empty, or on an error.
    fn queued(&self) -> Option<Io> {
        let socket = match self {
            Self::Tcp(listener) => SockRef::from(listener),
            Self::Unix(unix) => SockRef::from(&unix.listener),
        };
        let accepted = loop {
            match socket.accept() {
                // A client gone before it was taken: the next one.
                Err(err) if err.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return None,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot take a queued connection");
                    return None;
                }
                Ok((accepted, _)) => break accepted,
            }
        };
        accepted.set_nonblocking(true).ok()?;
        Some(match self {
            Self::Tcp(_) => {
                let tcp = TcpStream::from_std(accepted.into()).ok()?;
                let _ = tcp.set_nodelay(true);
                Either::Left(tcp)
            }
            Self::Unix(_) => Either::Right(Either::Right(UnixStream::from_std(accepted.into()).ok()?)),
        })
    }
}

impl Accepting {
    /// Accepts on `listener` until `stop`; then takes the connections queued
    /// on it, and the socket closes.
    async fn run(self, listener: Listener) {
        loop {
            let accepted = tokio::select! {
                () = self.stop.cancelled() => break,
                // The server is gone (its future dropped): close the socket.
                () = self.ready.closed() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok(io) => {
                    if !self.take(io).await {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
        let mut queued = 0;
        while queued < QUEUED_MAX
            && let Some(io) = listener.queued()
        {
            queued += 1;
            if !self.take(io).await {
                return;
            }
        }
        if queued > 0 {
            tracing::debug!(queued, "took the connections queued on a closing socket");
        }
    }

    /// Hands `io` on to be served (after its TLS handshake, in a task of its
    /// own), or closes it at once past `--max-connections` (counted). False
    /// once the server takes no more connections.
    async fn take(&self, io: Io) -> bool {
        let Some(slot) = self.limits.admit() else { return true };
        let deadline = Instant::now() + self.handshake_timeout;
        let min_ping_interval = self.min_ping_interval;
        let connection = move |io, slot| Connection::new(io, deadline, min_ping_interval, slot);
        match (&self.tls, io) {
            (Some(acceptor), Either::Left(tcp)) => {
                let (acceptor, ready, handshake_timeout) =
                    (acceptor.clone(), self.ready.clone(), self.handshake_timeout);
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
                true
            }
            (_, io) => self.ready.send(connection(io, slot)).await.is_ok(),
        }
    }
}
