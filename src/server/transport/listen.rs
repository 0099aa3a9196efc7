//! The sockets the server accepts on, bound before serving so that the
//! caller knows the real port (for port 0) before any client connects.
//!
//! Every address a name resolves to is bound, as grpc's servers do: tokio's
//! `TcpListener::bind` (checked) stops at the first address that binds, and
//! tonic's `TcpIncoming` takes one address.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, lookup_host};

/// The bound sockets, and the host as the user wrote it.
#[derive(Debug)]
pub struct Listeners {
    host: String,
    pub(super) listeners: Vec<TcpListener>,
    /// A Unix domain socket instead (`unix:/PATH`).
    pub(super) unix: Option<UnixSocket>,
}

/// A bound Unix domain socket; its file is removed when it closes.
#[derive(Debug)]
pub(super) struct UnixSocket {
    pub(super) listener: tokio::net::UnixListener,
    path: PathBuf,
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl UnixSocket {
    /// Binds `path`, taking over a socket file left by a server that is
    /// gone (nothing accepts on it), never one in use.
    fn bind(path: &Path) -> io::Result<Self> {
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, "another server listens on this socket"));
            }
            std::fs::remove_file(path)?;
        }
        Ok(Self { listener: tokio::net::UnixListener::bind(path)?, path: path.to_owned() })
    }
}

impl Listeners {
    /// Binds every address `addr` (`HOST:PORT`) resolves to, as grpc's
    /// `add_insecure_port` does: `localhost` gets its IPv4 and IPv6 loopback
    /// addresses, all on one port (the first one bound, when `PORT` is 0).
    ///
    /// # Errors
    /// When `addr` is not `HOST:PORT`, does not resolve, or its first address
    /// cannot be bound. A later address that cannot be bound (no IPv6, say)
    /// is logged and skipped, as long as one socket is bound.
    pub async fn bind(addr: &str) -> io::Result<Self> {
        if let Some(path) = addr.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            let unix = UnixSocket::bind(Path::new(path))?;
            return Ok(Self { host: format!("unix:{path}"), listeners: Vec::new(), unix: Some(unix) });
        }
        let (host, _) = addr.rsplit_once(':').ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr:?} is not HOST:PORT (e.g. {})", crate::DEFAULT_ADDR),
            )
        })?;
        let mut resolved = lookup_host(addr).await?;
        let first = resolved
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr} resolves to no address")))?;
        let first = TcpListener::bind(first).await?;
        let port = first.local_addr()?.port();
        let mut listeners = vec![first];
        for mut other in resolved {
            other.set_port(port);
            match TcpListener::bind(other).await {
                Ok(listener) => listeners.push(listener),
                Err(err) => tracing::warn!(addr = %other, error = %err, "skipping an address of the listen host"),
            }
        }
        Ok(Self { host: host.to_owned(), listeners, unix: None })
    }

    /// Wraps listeners bound elsewhere (a test's `127.0.0.1:0`, say).
    #[must_use]
    pub fn from_listener(listener: TcpListener) -> Self {
        let host = listener.local_addr().map_or_else(|_| String::new(), |addr| bracket(addr.ip().to_string()));
        Self { host, listeners: vec![listener], unix: None }
    }

    /// The bound socket addresses.
    ///
    /// # Errors
    /// When the OS cannot report a socket's address.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(TcpListener::local_addr).collect()
    }

    /// The address as the user gave it, with the real port: what the server
    /// prints on start, like the article's `localhost:8100` (or
    /// `unix:/run/search.sock`), and what a client can be given as its target.
    ///
    /// # Errors
    /// When the OS cannot report the bound port.
    pub fn display_addr(&self) -> io::Result<String> {
        match self.listeners.first() {
            None => Ok(self.host.clone()),
            Some(listener) => Ok(format!("{}:{}", self.host, listener.local_addr()?.port())),
        }
    }
}

/// Writes an IPv6 literal in brackets, as `HOST:PORT` needs it.
fn bracket(ip: String) -> String {
    if ip.contains(':') { format!("[{ip}]") } else { ip }
}
