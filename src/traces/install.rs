//! Tracing turned on for the process ([`install`]): the exporter for the
//! configured protocol, the provider, the one tracer; and its shutdown.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::config::{Protocol, TraceConfig};
use super::export::{self, EXPORT_TIMEOUT};

/// The installed tracer, when tracing is on.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The tracer, `None` when tracing is off: the one check on a call's path.
#[inline]
#[must_use]
pub fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Spans dropped so far: the queue was full, or the collector failed, was
/// unreachable or did not answer within [`EXPORT_TIMEOUT`].
#[must_use]
pub fn dropped() -> u64 {
    export::DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Tracing, installed: keep it for the life of the process and
/// [`Traces::shutdown`] it at the end, which sends what is queued.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

/// Why tracing could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The exporter does not accept the configuration.
    #[error("cannot export traces to {endpoint}: {source}")]
    Exporter {
        /// The collector's URL.
        endpoint: String,
        /// What the exporter said.
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The sending thread did not start.
    #[error("cannot start the trace exporter's thread: {0}")]
    Thread(#[from] std::io::Error),
    /// Installed once already in this process.
    #[error("tracing is already installed in this process")]
    Again,
}

/// Turns tracing on for the process, exporting as `config` says; the
/// exporter's connections run on the current Tokio runtime.
///
/// # Errors
/// See [`InstallError`]. Must be called from within a Tokio runtime.
pub fn install(config: &TraceConfig) -> Result<Traces, InstallError> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let runtime = tokio::runtime::Handle::current();
    let built = match config.protocol {
        Protocol::Grpc => {
            use opentelemetry_otlp::WithTonicConfig as _;
            let builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            // An https collector is verified against the system's roots.
            let builder = if config.endpoint.starts_with("https:") {
                builder.with_tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots())
            } else {
                builder
            };
            builder.with_endpoint(&config.endpoint).with_timeout(EXPORT_TIMEOUT).build()
        }
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(export::HyperClient::new(runtime.clone()))
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(&config.endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .build(),
    };
    let mut exporter = built.map_err(|source| InstallError::Exporter { endpoint: config.endpoint.clone(), source })?;
    // OTEL_RESOURCE_ATTRIBUTES and the SDK's own attributes, the service name over them.
    let resource = Resource::builder().with_service_name(config.service_name.clone()).build();
    opentelemetry_sdk::trace::SpanExporter::set_resource(&mut exporter, &resource);
    let batcher = export::Batcher::start(exporter, runtime)?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(batcher)
        .with_sampler(config.sampler.clone())
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("search");
    TRACER.set(tracer).map_err(|_| InstallError::Again)?;
    Ok(Traces { provider })
}

impl Traces {
    /// Sends the spans still queued, waiting at most `timeout`; spans not
    /// sent by then count as dropped.
    pub fn shutdown(self, timeout: Duration) {
        let _ = self.provider.shutdown_with_timeout(timeout);
    }
}

/// How long the spans still queued may take to leave when [`Traces`] is
/// dropped without [`Traces::shutdown`].
pub const SHUTDOWN: Duration = Duration::from_secs(5);

impl Drop for Traces {
    /// The installed tracer keeps the provider alive, so its own drop would
    /// never come: this one sends what is queued (once: a second shutdown
    /// does nothing).
    fn drop(&mut self) {
        let _ = self.provider.shutdown_with_timeout(SHUTDOWN);
    }
}
