//! Accepting connections: one task per listening socket accepts (Nagle
//! off: gRPC messages are small and latency-bound), and each TLS handshake
//! runs in a task of its own under the handshake timeout, so that a slow or
//! silent client never holds up the next accept. Connections ready to serve
//! come out of one stream; when the server stops taking that stream (a
//! drain), the tasks end and the listening sockets close.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Connections accepted but not yet taken by the server: a short queue, so
/// that accepting slows down when serving does.
const QUEUE: usize = 64;

/// After an accept error (out of file descriptors, say), how long to wait
/// before accepting again, rather than spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A connection ready to serve: plain TCP, or TLS over it.
#[derive(Debug)]
pub(super) enum Connection {
    /// Cleartext: HTTP/2 by prior knowledge, or HTTP/1.1.
    Plain(TcpStream),
    /// TLS, the handshake done; ALPN chose HTTP/2 or HTTP/1.1.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The connections of `listeners`, TLS with `tls` when given, each TLS
/// handshake bounded by `handshake_timeout`.
pub(super) fn incoming(
    listeners: Vec<TcpListener>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
) -> ReceiverStream<io::Result<Connection>> {
    let (ready, incoming) = mpsc::channel(QUEUE);
    for listener in listeners {
        tokio::spawn(accept(listener, tls.clone(), handshake_timeout, ready.clone()));
    }
    ReceiverStream::new(incoming)
}

/// Accepts on `listener` until the server stops taking connections.
async fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    ready: mpsc::Sender<io::Result<Connection>>,
) {
    loop {
        let accepted = tokio::select! {
            // The server took its last connection: close the socket.
            () = ready.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(err) => {
                tracing::warn!(error = %err, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Only fails on a socket already closed, which serving will notice.
        let _ = tcp.set_nodelay(true);
        match &tls {
            None => {
                if ready.send(Ok(Connection::Plain(tcp))).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    let peer = tcp.peer_addr().ok();
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = ready.send(Ok(Connection::Tls(Box::new(stream)))).await;
                        }
                        Ok(Err(err)) => tracing::debug!(?peer, error = %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(?peer, timeout = ?handshake_timeout, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

impl Connection {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        let tcp = self.tcp();
        TcpConnectInfo { local_addr: tcp.local_addr().ok(), remote_addr: tcp.peer_addr().ok() }
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            Self::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
