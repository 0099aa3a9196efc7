//! Serving the Search service: binding the listen address, routing (the v1
//! service plus the original `/Search/search` path) and running until a
//! shutdown future resolves.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use http::uri::{PathAndQuery, Uri};
use tokio::net::{TcpListener, TcpStream, lookup_host};
use tokio_stream::{Stream, StreamExt};
use tonic::body::Body;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tower::util::MapRequestLayer;

use crate::service::Search;

/// The path of the article's unary method, which its unchanged Python client
/// calls (`channel.unary_unary("/Search/search", ...)`).
pub const LEGACY_SEARCH_PATH: &str = "/Search/search";

/// The v1 unary method, wire-compatible with the legacy one: the request's
/// field 1 is the query string, the response's field 1 the status varint.
pub const SEARCH_PATH: &str = "/search.v1.SearchService/Search";

/// The sockets the server accepts on, bound before serving so that the
/// caller knows the real port (when it asked for port 0) before any client
/// connects.
#[derive(Debug)]
pub struct Listeners {
    host: String,
    listeners: Vec<TcpListener>,
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
        Ok(Self { host: host.to_owned(), listeners })
    }

    /// Wraps listeners bound elsewhere (a test's `127.0.0.1:0`, say).
    #[must_use]
    pub fn from_listener(listener: TcpListener) -> Self {
        let host = listener.local_addr().map_or_else(|_| String::new(), |addr| bracket(addr.ip().to_string()));
        Self { host, listeners: vec![listener] }
    }

    /// The bound socket addresses.
    ///
    /// # Errors
    /// When the OS cannot report a socket's address.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(TcpListener::local_addr).collect()
    }

    /// The address as the user gave it, with the real port: what the server
    /// prints on start, like the article's `localhost:8100`.
    ///
    /// # Errors
    /// When the OS cannot report the bound port.
    pub fn display_addr(&self) -> io::Result<String> {
        let port = self.listeners[0].local_addr()?.port();
        Ok(format!("{}:{port}", self.host))
    }
}

/// Writes an IPv6 literal in brackets, as `HOST:PORT` needs it.
fn bracket(ip: String) -> String {
    if ip.contains(':') { format!("[{ip}]") } else { ip }
}

/// Serves the Search service on `listeners` until `shutdown` resolves, then
/// stops accepting and lets calls in flight finish.
///
/// Routes: `search.v1.SearchService` and, for the article's clients, the
/// legacy `/Search/search` path to the same unary handler.
///
/// # Errors
/// When the transport fails (accepting connections, for instance).
pub async fn serve(listeners: Listeners, shutdown: impl Future<Output = ()>) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .layer(MapRequestLayer::new(route_legacy_path))
        .add_service(Search.into_server())
        .serve_with_incoming_shutdown(incoming(listeners.listeners), shutdown)
        .await
}

/// Accepted connections, from any of the listeners.
type Incoming = Pin<Box<dyn Stream<Item = io::Result<TcpStream>> + Send>>;

/// One stream of the connections of every listener (two at most in practice:
/// the IPv4 and IPv6 loopback), with Nagle off: gRPC messages are small and
/// latency-bound.
fn incoming(listeners: Vec<TcpListener>) -> Incoming {
    listeners
        .into_iter()
        .map(|listener| -> Incoming { Box::pin(TcpIncoming::from(listener).with_nodelay(Some(true))) })
        .reduce(|a, b| Box::pin(a.merge(b)))
        .unwrap_or_else(|| Box::pin(tokio_stream::empty()))
}

/// Sends the article's `/Search/search` to the v1 `Search` handler by
/// rewriting the request path before routing. The messages are the same on
/// the wire, so the handler and the answer are shared, not copied.
fn route_legacy_path(mut request: http::Request<Body>) -> http::Request<Body> {
    if request.uri().path() == LEGACY_SEARCH_PATH {
        let mut parts = request.uri().clone().into_parts();
        parts.path_and_query = Some(PathAndQuery::from_static(SEARCH_PATH));
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use tonic::server::NamedService;

    use super::*;
    use crate::pb::v1::search_service_server::SearchServiceServer;

    #[test]
    fn search_path_names_the_generated_service() {
        let name = <SearchServiceServer<Search> as NamedService>::NAME;
        assert_eq!(SEARCH_PATH, format!("/{name}/Search"));
    }

    #[test]
    fn only_the_legacy_path_is_rewritten() {
        let rewrite = |uri: &str| {
            let request = http::Request::builder().uri(uri).body(Body::empty()).expect("valid request");
            route_legacy_path(request).uri().to_string()
        };
        assert_eq!(rewrite("/Search/search"), SEARCH_PATH);
        assert_eq!(rewrite("http://localhost:8100/Search/search"), format!("http://localhost:8100{SEARCH_PATH}"));
        assert_eq!(rewrite("/Search/Search"), "/Search/Search");
        assert_eq!(rewrite("/search.v1.SearchService/Count"), "/search.v1.SearchService/Count");
    }
}
