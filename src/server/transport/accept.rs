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

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

use super::connection::{Connection, Io, linger};
use super::limits::Limits;
use super::listen::{Listeners, UnixSocket};

/// Connections accepted but not yet taken by the server: a short queue, so
/// that accepting slows down when serving does.
const QUEUE: usize = 64;

/// After an accept error (out of file descriptors, say), how long to wait
/// before accepting again, rather than spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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
            let connection = move |io, slot| Connection::new(io, deadline, min_ping_interval, slot);
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
