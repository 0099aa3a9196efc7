//! The server side: the Search service, health and reflection, served as
//! gRPC, gRPC-Web and the Connect protocol on one port, with the transport
//! limits, its runtime, and serving until a shutdown future resolves, then
//! draining.
//!
//! Three layers, each a folder, each importing only the ones below it:
//! - `calls/`: what happens to each call: admission, deadline, the drain's
//!   cut, metrics, the log line; the dispatch by path and the handlers.
//! - `protocols/`: how a call is carried: the dispatch by content type
//!   (gRPC, gRPC-Web, Connect), the envelope, framing and compression.
//! - `transport/`: sockets and connections: accepting, TLS, hyper, the
//!   HTTP/2 limits and GOAWAYs.
//!
//! Beside them, below all three:
//! - `config.rs`: the server's flags and their defaults ([`ServerArgs`]).
//! - `added.rs`: the services a program adds beside Search, health and
//!   reflection ([`AddedServices`]).
//! - `method_table.rs`: every method served, read from the services'
//!   descriptor sets (the method table).
//!
//! Above them, outermost:
//! - `page.rs`: the web page (`web/dist/`, in the binary) at its own paths,
//!   before any protocol sees the request ([`ServerConfig::page`]).
//!
//! And above them all, importing them:
//! - `mod.rs`: the stack assembled, serving and the drain ([`serve`],
//!   [`start`]), the runtime ([`runtime`]).
//! - `shutdown.rs`: SIGINT and SIGTERM as the shutdown future ([`signal`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tower::ServiceBuilder;

mod added;
mod calls;
mod config;
mod method_table;
mod page;
mod protocols;
mod shutdown;
mod transport;

pub use self::added::AddedServices;
pub use self::calls::Search;
use self::calls::{CallLayer, CallPolicy, Routes};
pub use self::config::{ByteSize, ConfigError, CorsOrigins, ServerArgs, ServerConfig};
use self::method_table::MethodTable;
use self::page::PageLayer;
use self::protocols::compression;
use self::protocols::{ProtocolLayer, cors};
pub use self::protocols::{ReceivedCompression, SendCompression};
pub use self::shutdown::signal;
pub use self::transport::Listeners;
use self::transport::{ConnectionServer, Limits};
use crate::pb::v1::FILE_DESCRIPTOR_SET;
use crate::pb::v1::search_service_server::SearchServiceServer;
use crate::tls::ServerTls;

/// What can stop the server from serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TLS files cannot be served with.
    #[error(transparent)]
    Tls(#[from] crate::tls::Error),
    /// The reflection service could not read the descriptor set.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The metrics address cannot be listened on.
    #[error("cannot listen on --metrics-listen {address}: {source}")]
    Metrics {
        /// The address asked for.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A running server's shared state: how many calls are in flight.
#[derive(Debug, Clone)]
pub struct Handle {
    policy: Arc<CallPolicy>,
    limits: Arc<Limits>,
    metrics_addr: Option<std::net::SocketAddr>,
}

impl Handle {
    /// Calls in flight (admitted, response not finished).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.policy.in_flight()
    }

    /// Connections open now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.limits.open()
    }

    /// Connections refused over `--max-connections` since the start.
    #[must_use]
    pub fn refused_connections(&self) -> u64 {
        self.limits.refused()
    }

    /// Where `/metrics` is served, when `--metrics-listen` is set.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }
}

/// The server's runtime: tokio's multi-thread scheduler, a worker per core,
/// each worker writing its log lines in batches (see
/// [`crate::telemetry::Stderr`]): when it goes idle, or under load every
/// 16 KiB or 50 ms, instead of a write per call.
///
/// # Errors
/// When the runtime cannot start its threads.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(crate::telemetry::worker_idle)
        .on_thread_stop(crate::telemetry::flush_this_thread)
        .build()
}

/// Serves on `listeners` until `shutdown` resolves, then drains: health
/// turns NOT_SERVING, the listeners close, calls in flight run for up to
/// `config.grace` and are then cut with UNAVAILABLE, and the function returns.
///
/// Routes: `search.v1.SearchService` (and the legacy `/Search/search`),
/// `grpc.health.v1.Health`, server reflection v1 and v1alpha, and the
/// services of `config.services`. Every call goes through the per-call
/// layer (`calls/layer.rs`): deadlines, load shedding, framing checks, logs.
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
    let added = config.services.names();
    for name in &added {
        health.set_service_status(*name, ServingStatus::Serving).await;
    }
    let table = MethodTable::of(&config.services);
    // Reflection describes every service served, health and the added ones
    // included, so that grpcurl and grpcui can list, describe and call all
    // of them.
    let reflection = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        let added = config.services.list.iter();
        added.fold(builder, |builder, added| builder.register_encoded_file_descriptor_set(added.descriptor_set))
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let cut = CancellationToken::new();
    let policy = Arc::new(CallPolicy::new(&config, cut.clone()));
    let limits = Limits::new(config.max_connections);
    let (metrics, metrics_addr) = match &config.metrics_listen {
        None => (None, None),
        Some(address) => {
            let failed = |source| Error::Metrics { address: address.clone(), source };
            let listener = tokio::net::TcpListener::bind(address.as_str()).await.map_err(failed)?;
            let bound = listener.local_addr().map_err(failed)?;
            let metrics = calls::Metrics::new(&policy, &limits, table);
            tokio::spawn(calls::serve_metrics(listener, Arc::clone(&metrics)));
            tracing::info!(address = %bound, "metrics at /metrics");
            (Some(metrics), Some(bound))
        }
    };
    let handle = Handle { policy: Arc::clone(&policy), limits: Arc::clone(&limits), metrics_addr };
    // TLS is ours: both HTTP versions in ALPN, and handshakes off the
    // accept loop (see transport/accept.rs).
    let tls = config.tls.as_ref().map(ServerTls::config).transpose()?.map(TlsAcceptor::from);
    // Every service takes compressed requests, which tonic inflates into a
    // buffer bounded by the size limit; answers are compressed by the call
    // layer, per message, above a size worth it.
    macro_rules! accept_compressed {
        ($service:expr) => {
            compression::ENCODINGS
                .iter()
                .fold($service, |service, encoding| service.accept_compressed(encoding.tonic()))
        };
    }
    // Outermost first: the page's few paths are answered at once (calls
    // never reach them); each protocol takes its own path (gRPC-Web through
    // tonic-web, Connect through its translation, both behind CORS), and
    // every call, whatever its protocol, is a gRPC call through the
    // per-call layer.
    let routes = Routes::new(config.max_recv_bytes, table, &config.services)
        .add(accept_compressed!(health_service))
        .add(accept_compressed!(reflection_v1))
        .add(accept_compressed!(reflection_v1alpha));
    let protocols = ProtocolLayer::new(config.max_recv_bytes, cors(&config.cors), table);
    let page = PageLayer::new(config.page);
    // Each connection's stack knows its connection, for the calls' log
    // lines (the peer's address) and its idle time.
    let stack = move |connection| {
        ServiceBuilder::new()
            .layer(page)
            .layer(protocols.clone())
            .layer(CallLayer::new(Arc::clone(&policy), metrics.clone(), connection))
            .service(routes.clone())
    };
    let draining = CancellationToken::new();
    let serving = ConnectionServer::new(&config, stack, draining.clone());

    let (drain_started, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let grace = config.grace;
    let drain = async move {
        shutdown.await;
        tracing::info!(grace = %humantime::format_duration(grace), "draining: NOT_SERVING, no new connections");
        health.set_service_status("", ServingStatus::NotServing).await;
        health.set_not_serving::<SearchServiceServer<Search>>().await;
        for name in added {
            health.set_service_status(name, ServingStatus::NotServing).await;
        }
        let _ = drain_started.send(());
    };
    let in_flight = handle.clone();
    let serving = async move {
        let mut incoming =
            transport::incoming(listeners, tls, config.handshake_timeout, config.min_ping_interval, &limits);
        let serving = async move {
            tokio::pin!(drain);
            loop {
                tokio::select! {
                    () = &mut drain => break,
                    connection = incoming.recv() => match connection {
                        Some(connection) => serving.spawn(connection),
                        None => break,
                    },
                }
            }
            // No more connections: the listening sockets close, and every
            // connection gets its GOAWAY.
            drop(incoming);
            draining.cancel();
            serving.closed().await;
        };
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
            () = serving => {}
            () = watchdog => tracing::warn!("connections still open after the drain: closing them"),
        }
        Ok(())
    };
    Ok((serving, handle))
}

/// How long connections get to close after the calls were cut.
const CLOSE_MARGIN: Duration = Duration::from_secs(1);
