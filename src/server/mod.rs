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
//! - `config/`: the server's flags, each with its environment variable, and
//!   their defaults ([`ServerArgs`], [`ServerConfig`]).
//! - `added.rs`: the services a program adds beside Search, health and
//!   reflection ([`AddedServices`]).
//! - `method_table.rs`: every method served, read from the services'
//!   descriptor sets (the method table).
//! - `orca/`: load reports (ORCA): the server's figures, each call's
//!   trailer, the out-of-band stream ([`Orca`]).
//!
//! Above them, outermost:
//! - `page.rs`: the web page (`web/dist/`, in the binary) at its own paths,
//!   before any protocol sees the request ([`ServerConfig::page`]).
//!
//! And above them all, importing them:
//! - `mod.rs`: the stack assembled and served ([`serve`], [`start`]), the
//!   runtime ([`runtime`]).
//! - `drain.rs`: serving until the shutdown future, then the drain: health
//!   NOT_SERVING, GOAWAYs, the grace and the cut.
//! - `shutdown.rs`: SIGINT and SIGTERM as the shutdown future ([`signal`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_server::{Health, HealthServer};
use tower::ServiceBuilder;

mod added;
mod calls;
mod config;
mod drain;
/// Entry points for the fuzz targets (`fuzz/`): not part of the API, compiled
/// only for the fuzzers (`--cfg fuzzing`) and the tests.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
mod method_table;
mod orca;
mod page;
mod protocols;
mod security;
mod shutdown;
mod transport;

pub use self::added::AddedServices;
pub use self::calls::Search;
use self::calls::{CallLayer, CallPolicy, Metrics, Routes};
pub use self::config::{
    AdmissionArgs, AdmissionSettings, AuditCondition, ByteSize, ConfigError, CorsOrigins, OrcaArgs, SecurityArgs,
    SecurityConfig, ServerArgs, ServerConfig,
};
use self::method_table::MethodTable;
pub use self::orca::{CallLoad, Figures, ORCA_TRAILER, Orca, OrcaSettings};
use self::page::PageLayer;
use self::protocols::compression;
use self::protocols::{ProtocolLayer, cors};
pub use self::protocols::{ReceivedCompression, SendCompression};
use self::security::Security;
pub use self::security::{Caller, PolicyError, SKEW as JWT_CLOCK_SKEW, TokenError, check as check_security};
pub use self::shutdown::signal;
use self::transport::{ConnectionServer, Limits};
pub use self::transport::{Listeners, Peer, PeerNames};
use crate::pb::v1::FILE_DESCRIPTOR_SET;
use crate::pb::xds::service::orca::v3::FILE_DESCRIPTOR_SET as ORCA_DESCRIPTORS;
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
    /// The authorization policy or the key set cannot be used: the file and
    /// the reason (a policy's line and column).
    #[error("{0}")]
    Security(String),
}

/// A running server's shared state: how many calls are in flight.
#[derive(Debug, Clone)]
pub struct Handle {
    policy: Arc<CallPolicy>,
    limits: Arc<Limits>,
    metrics_addr: Option<SocketAddr>,
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
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }
}

/// The server's runtime: tokio's multi-thread scheduler, a worker per core,
/// each worker writing its log lines in batches (see
/// [`crate::logging::Stderr`]): when it goes idle, or under load every
/// 16 KiB or 50 ms, instead of a write per call.
///
/// # Errors
/// When the runtime cannot start its threads.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(crate::logging::worker_idle)
        .on_thread_stop(crate::logging::flush_this_thread)
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
    mut config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(impl Future<Output = Result<(), Error>>, Handle), Error> {
    // The out-of-band load reports are a service like an added one: routed,
    // counted, described by reflection.
    if let Some(orca) = &config.orca {
        orca.start_sampling();
        let reports = orca::service(orca);
        config.services = std::mem::take(&mut config.services).add(reports, ORCA_DESCRIPTORS);
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    let added = config.services.names();
    drain::health_serving(&health, &added).await;
    let table = MethodTable::of(&config.services);
    let routes = routes(&config, table, health_service)?;
    let cut = CancellationToken::new();
    let policy = Arc::new(CallPolicy::new(&config, cut.clone()));
    let limits = Limits::new(config.max_connections);
    let (metrics, metrics_addr) = metrics(&config, &policy, &limits, table).await?;
    let handle = Handle { policy: Arc::clone(&policy), limits: Arc::clone(&limits), metrics_addr };
    // TLS is ours: both HTTP versions in ALPN, and handshakes off the
    // accept loop (see transport/accept.rs).
    let tls = config.tls.as_ref().map(ServerTls::config).transpose()?.map(TlsAcceptor::from);
    // Outermost first: the page's few paths are answered at once (calls
    // never reach them); each protocol takes its own path (gRPC-Web through
    // tonic-web, Connect through its translation, both behind CORS), and
    // every call, whatever its protocol, is a gRPC call through the
    // per-call layer.
    let protocols = ProtocolLayer::new(config.max_recv_bytes, cors(&config.cors), table);
    let page = PageLayer::new(config.page);
    let calls = Arc::clone(&policy);
    let security = Security::new(&config.security).map_err(Error::Security)?;
    let orca = config.orca.clone();
    // Each connection's stack knows its connection, for the calls' log
    // lines (the peer's address) and its idle time.
    let stack = move |connection| {
        ServiceBuilder::new()
            .layer(page)
            .layer(protocols.clone())
            .layer(CallLayer::new(Arc::clone(&calls), metrics.clone(), security.clone(), orca.clone(), connection))
            .service(routes.clone())
    };
    let draining = CancellationToken::new();
    let connections = ConnectionServer::new(&config, stack, draining.clone());
    let (drain_started, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = drain::announce(shutdown, health, added, config.grace, drain_started);
    let serving = async move {
        let incoming =
            transport::incoming(listeners, tls, config.handshake_timeout, config.min_ping_interval, &limits, &draining);
        tokio::select! {
            () = drain::serve_until(incoming, connections, drain, draining) => {}
            () = drain::cut_after_grace(drain_rx, config.grace, policy, cut) => {
                tracing::warn!("connections still open after the drain: closing them");
            }
        }
        Ok(())
    };
    Ok((serving, handle))
}

/// The metrics, and where they are served, when `--metrics-listen` asks
/// for them: bound here, served by a task of their own.
async fn metrics(
    config: &ServerConfig,
    policy: &Arc<CallPolicy>,
    limits: &Arc<Limits>,
    table: &'static MethodTable,
) -> Result<(Option<Arc<Metrics>>, Option<SocketAddr>), Error> {
    let Some(address) = &config.metrics_listen else { return Ok((None, None)) };
    let failed = |source| Error::Metrics { address: address.clone(), source };
    let listener = tokio::net::TcpListener::bind(address.as_str()).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    let metrics = Metrics::new(policy, limits, table);
    tokio::spawn(calls::serve_metrics(listener, Arc::clone(&metrics)));
    tracing::info!(address = %bound, "metrics at /metrics");
    Ok((Some(metrics), Some(bound)))
}

/// Every service served below the per-call layer: Search (see `Routes`),
/// the added services, health, and reflection v1 and v1alpha.
///
/// Every service takes compressed requests, which tonic inflates into a
/// buffer bounded by the size limit; answers are compressed by the call
/// layer, per message, above a size worth it.
fn routes(
    config: &ServerConfig,
    table: &'static MethodTable,
    health: HealthServer<impl Health>,
) -> Result<Routes, Error> {
    macro_rules! accept_compressed {
        ($service:expr) => {
            compression::ENCODINGS
                .iter()
                .fold($service, |service, encoding| service.accept_compressed(encoding.tonic()))
        };
    }
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
    Ok(Routes::new(config.max_recv_bytes, table, &config.services)
        .add(accept_compressed!(health))
        .add(accept_compressed!(reflection_v1))
        .add(accept_compressed!(reflection_v1alpha)))
}
