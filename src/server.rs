//! Serving the Search service: binding the listen address, routing (the v1
//! service, the original `/Search/search` path, health and reflection), the
//! transport limits, and running until a shutdown future resolves, then
//! draining.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use tokio::net::{TcpListener, TcpStream, lookup_host};
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tower::util::MapRequestLayer;

use crate::calls::{CallLayer, CallPolicy};
use crate::config::ServerConfig;
use crate::pb::v1::FILE_DESCRIPTOR_SET;
use crate::pb::v1::search_service_server::SearchServiceServer;
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

/// What can stop the server from serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport failed (TLS configuration, accepting connections).
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not read the descriptor set.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A running server's shared state: how many calls are in flight.
#[derive(Debug, Clone)]
pub struct Handle {
    policy: Arc<CallPolicy>,
}

impl Handle {
    /// Calls in flight (admitted, response not finished).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.policy.in_flight()
    }
}

/// Serves on `listeners` until `shutdown` resolves, then drains: health
/// turns NOT_SERVING, the listeners close, calls in flight run for up to
/// `config.grace` and are then cut with UNAVAILABLE, and the function returns.
///
/// Routes: `search.v1.SearchService` (and the legacy `/Search/search`),
/// `grpc.health.v1.Health`, and server reflection v1 and v1alpha. Every call
/// goes through [`CallLayer`]: deadlines, load shedding, framing checks, logs.
///
/// # Errors
/// When the TLS configuration is refused or the transport fails.
pub async fn serve(
    listeners: Listeners,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let (started, handle) = start(listeners, config, shutdown).await?;
    drop(handle);
    started.await
}

/// [`serve`], returning at once with the running server's [`Handle`] and the
/// future that serves (it must be awaited, or spawned, for anything to happen).
///
/// # Errors
/// When the TLS configuration or the reflection service cannot be built.
pub async fn start(
    listeners: Listeners,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(impl Future<Output = Result<(), Error>>, Handle), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<SearchServiceServer<Search>>().await;
    // Reflection describes every service served, health included, so that
    // grpcurl and grpcui can list, describe and call all of them.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let cut = CancellationToken::new();
    let policy = Arc::new(CallPolicy::new(&config, cut.clone()));
    let handle = Handle { policy: Arc::clone(&policy) };
    let mut builder = Server::builder()
        .max_concurrent_streams(config.max_concurrent_streams)
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        // Both or neither: tonic panics on an age without a grace (0.14.5+).
        .max_connection_age(config.max_connection_age)
        .max_connection_age_grace(config.max_connection_age_grace);
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls.config())?;
    }
    let search = Search.into_server().max_decoding_message_size(config.max_recv_bytes);
    let router = builder
        .layer(CallLayer::new(policy))
        .layer(MapRequestLayer::new(route_legacy_path))
        .add_service(search)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let (drain_started, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let grace = config.grace;
    let drain = async move {
        shutdown.await;
        tracing::info!(grace = %humantime::format_duration(grace), "draining: NOT_SERVING, no new connections");
        health.set_service_status("", ServingStatus::NotServing).await;
        health.set_not_serving::<SearchServiceServer<Search>>().await;
        let _ = drain_started.send(());
    };
    let in_flight = handle.clone();
    let serving = async move {
        let serving = router.serve_with_incoming_shutdown(incoming(listeners.listeners), drain);
        // The cut: calls still running after the grace end with UNAVAILABLE;
        // connections still open a moment later are abandoned.
        let watchdog = async move {
            if drain_rx.await.is_err() {
                return std::future::pending().await;
            }
            tokio::time::sleep(grace).await;
            let calls = in_flight.in_flight();
            if calls > 0 {
                tracing::warn!(calls, "grace period over: cutting the calls still in flight");
            }
            cut.cancel();
            tokio::time::sleep(CLOSE_MARGIN).await;
        };
        tokio::select! {
            served = serving => served.map_err(Error::from),
            () = watchdog => {
                tracing::warn!("connections still open after the drain: closing them");
                Ok(())
            }
        }
    };
    Ok((serving, handle))
}

/// How long connections get to close after the calls were cut.
const CLOSE_MARGIN: Duration = Duration::from_secs(1);

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
        // Routing looks at the path alone: a static URI, nothing to parse.
        *request.uri_mut() = Uri::from_static(SEARCH_PATH);
    }
    request
}

#[cfg(test)]
mod tests {
    use tonic::server::NamedService;

    use super::*;

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
        assert_eq!(rewrite("http://localhost:8100/Search/search"), SEARCH_PATH);
        assert_eq!(rewrite("/Search/Search"), "/Search/Search");
        assert_eq!(rewrite("/search.v1.SearchService/Count"), "/search.v1.SearchService/Count");
    }
}
