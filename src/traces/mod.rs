//! OpenTelemetry traces for both sides: a span per server call and, on the
//! client, one per call with one per attempt beneath it, following the RPC
//! semantic conventions; the parent read from and sent as W3C
//! `traceparent` (and grpc's `grpc-trace-bin`, read); spans exported over
//! OTLP (gRPC or HTTP/protobuf).
//!
//! Off unless [`install`]ed: then the only cost on a call's path is
//! [`tracer`], one load of a static.
//!
//! - `config.rs`: the flags and their environment variables, checked.
//! - `context.rs`: the trace context on the wire, parsed and written.
//! - `export.rs`: the queue, the sending thread, the dropped-span count.

mod config;
mod context;
mod export;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};
use tonic::Code;

pub use config::{Protocol, TraceArgs, TraceConfig, TraceConfigError, parse_sampler};
pub use context::{
    GRPC_TRACE_BIN, TRACEPARENT, TRACESTATE, extract, format_traceparent, parse_grpc_trace_bin, parse_traceparent,
};
pub use export::{EXPORT_TIMEOUT, QUEUE};

use crate::rpc::code_name;

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

/// `rpc.system` of a call: `grpc` (gRPC-Web too) or `connect_rpc`.
#[must_use]
pub fn rpc_system(connect: bool) -> &'static str {
    if connect { "connect_rpc" } else { "grpc" }
}

/// The `rpc.service` and `rpc.method` of a path (`/pkg.Service/Method`);
/// a path of another shape is all service.
fn service_and_method(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.rsplit_once('/').unwrap_or((path, ""))
}

/// `host` and `port` of `host:port` or `[v6]:port`.
fn host_port(address: &str) -> Option<(&str, i64)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host, port.parse().ok()?))
}

/// Whether a status of `code` marks a server span as an error (the RPC
/// semantic conventions: codes that are the server's failure).
fn server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Connect's name of a code (`rpc.connect_rpc.error_code`): gRPC's in lower
/// case.
fn connect_code(code: Code) -> String {
    code_name(code).to_ascii_lowercase()
}

/// The most message events one span keeps, each way together.
pub const MAX_MESSAGE_EVENTS: usize = 32;

/// The messages of a call as they pass, for its span's events: up to
/// [`MAX_MESSAGE_EVENTS`] with their time, and how many more passed.
#[derive(Debug, Default)]
pub struct Messages {
    seen: Mutex<Seen>,
}

/// What [`Messages`] noted.
#[derive(Debug, Default)]
struct Seen {
    /// Each message kept: when, whether sent, its number in its direction.
    events: Vec<(SystemTime, bool, u32)>,
    sent: u32,
    received: u32,
}

impl Messages {
    /// `count` messages passed, `sent` by the server or received.
    pub fn passed(&self, sent: bool, count: u64) {
        if count == 0 {
            return;
        }
        let Ok(mut seen) = self.seen.lock() else { return };
        let Seen { events, sent: sent_count, received: received_count } = &mut *seen;
        let counter = if sent { sent_count } else { received_count };
        let now = SystemTime::now();
        for _ in 0..count {
            *counter = counter.saturating_add(1);
            if events.len() < MAX_MESSAGE_EVENTS {
                events.push((now, sent, *counter));
            }
        }
    }
}

/// A server call's span, ended with the call's status when dropped.
#[derive(Debug)]
pub struct ServerSpan {
    span: Span,
    connect: bool,
    code: Option<Code>,
    messages: Arc<Messages>,
    /// The trace id as 32 hex digits, for the call's log line.
    trace_id: [u8; 32],
}

impl ServerSpan {
    /// Starts the span of a call to `path` when tracing is on: its parent
    /// from `headers`, `connect` for a Connect call (`rpc.system`), the
    /// connection's `peer` address.
    #[must_use]
    pub fn start(headers: &http::HeaderMap, uri: &http::Uri, connect: bool, peer: Option<&str>) -> Option<Box<Self>> {
        let tracer = tracer()?;
        let parent =
            extract(headers).map_or_else(Context::new, |parent| Context::new().with_remote_span_context(parent));
        let path = uri.path();
        let (service, method) = service_and_method(path);
        let mut attributes = Vec::with_capacity(8);
        attributes.push(KeyValue::new("rpc.system", rpc_system(connect)));
        attributes.push(KeyValue::new("rpc.service", service.to_owned()));
        attributes.push(KeyValue::new("rpc.method", method.to_owned()));
        let authority = uri
            .authority()
            .map(http::uri::Authority::as_str)
            .or_else(|| headers.get(http::header::HOST).and_then(|host| host.to_str().ok()));
        if let Some(authority) = authority {
            match host_port(authority) {
                Some((host, port)) => {
                    attributes.push(KeyValue::new("server.address", host.to_owned()));
                    attributes.push(KeyValue::new("server.port", port));
                }
                None => attributes.push(KeyValue::new("server.address", authority.to_owned())),
            }
        }
        if let Some((address, port)) = peer.and_then(host_port) {
            attributes.push(KeyValue::new("network.peer.address", address.to_owned()));
            attributes.push(KeyValue::new("network.peer.port", port));
        }
        let span = tracer
            .span_builder(path.trim_start_matches('/').to_owned())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        let mut trace_id = [0u8; 32];
        let hex = span.span_context().trace_id().to_string();
        trace_id.copy_from_slice(&hex.as_bytes()[..32]);
        Some(Box::new(Self { span, connect, code: None, messages: Arc::default(), trace_id }))
    }

    /// Where the call's messages are noted as they pass.
    #[must_use]
    pub fn messages(&self) -> Arc<Messages> {
        Arc::clone(&self.messages)
    }

    /// `count` messages passed, `sent` by the server or received.
    pub fn passed(&self, sent: bool, count: u64) {
        self.messages.passed(sent, count);
    }

    /// The trace id, 32 lower-case hex digits.
    #[must_use]
    pub fn trace_id(&self) -> &str {
        std::str::from_utf8(&self.trace_id).unwrap_or_default()
    }

    /// Ends the span with `code`.
    pub fn end(mut self: Box<Self>, code: Code) {
        self.code = Some(code);
    }
}

impl Drop for ServerSpan {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        if let Ok(seen) = self.messages.seen.lock() {
            for &(at, sent, id) in &seen.events {
                let kind = if sent { "SENT" } else { "RECEIVED" };
                let attributes = vec![KeyValue::new("message.type", kind), KeyValue::new("message.id", i64::from(id))];
                self.span.add_event_with_timestamp("message", at, attributes);
            }
        }
        if self.connect {
            if code != Code::Ok {
                self.span.set_attribute(KeyValue::new("rpc.connect_rpc.error_code", connect_code(code)));
            }
        } else {
            self.span.set_attribute(KeyValue::new("rpc.grpc.status_code", code as i64));
        }
        if server_error(code) {
            self.span.set_status(Status::error(code_name(code)));
        }
        self.span.end();
    }
}

/// A client call's span: the parent of its attempts' spans.
#[derive(Debug)]
pub struct CallSpan {
    span: Span,
    context: Context,
    path: String,
    code: Option<Code>,
}

impl CallSpan {
    /// Starts the span of a call to `path` when tracing is on (a new trace).
    #[must_use]
    pub fn start(path: &str) -> Option<Self> {
        let tracer = tracer()?;
        let (service, method) = service_and_method(path);
        let attributes = vec![
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
        ];
        let name = path.trim_start_matches('/').to_owned();
        let span = tracer.span_builder(name).with_kind(SpanKind::Internal).with_attributes(attributes).start(tracer);
        let context = Context::new().with_remote_span_context(span.span_context().clone());
        tracing::debug!(method = %path, trace_id = %span.span_context().trace_id(), "traced");
        Some(Self { span, context, path: path.to_owned(), code: None })
    }

    /// Starts the span of one attempt to `address`: `number` counts the
    /// attempts before it (`grpc.previous-rpc-attempts`); `transparent`
    /// for a call sent again because the server never took it, `hedge`
    /// for a hedge.
    #[must_use]
    pub fn attempt(&self, previous: u32, address: &str, transparent: bool, hedge: bool) -> AttemptSpan {
        let (service, method) = service_and_method(&self.path);
        let mut attributes = vec![
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("grpc.previous-rpc-attempts", i64::from(previous)),
            KeyValue::new("grpc.transparent-retry", transparent),
        ];
        if hedge {
            attributes.push(KeyValue::new("grpc.hedge", true));
        }
        match host_port(address) {
            Some((host, port)) => {
                attributes.push(KeyValue::new("server.address", host.to_owned()));
                attributes.push(KeyValue::new("server.port", port));
            }
            None => attributes.push(KeyValue::new("server.address", address.to_owned())),
        }
        // The call span exists only while a tracer does.
        let span = tracer().map(|tracer| {
            tracer
                .span_builder(format!("Attempt {}", self.path.trim_start_matches('/')))
                .with_kind(SpanKind::Client)
                .with_attributes(attributes)
                .start_with_context(tracer, &self.context)
        });
        AttemptSpan { span, code: None }
    }

    /// Ends the span with the call's `code` (`None`: it never reached a server).
    pub fn end(mut self, code: Option<Code>) {
        self.code = code;
        if let Some(code) = code {
            self.span.set_attribute(KeyValue::new("rpc.grpc.status_code", code as i64));
        }
        if code != Some(Code::Ok) {
            self.span.set_status(Status::error(code.map_or("not sent", code_name)));
        }
        self.span.end();
    }
}

/// A streaming call's spans while its answers arrive: the call's and the
/// answered attempt's, ended together with the call's last status.
#[derive(Debug)]
pub struct StreamSpans {
    /// The call's span.
    pub call: CallSpan,
    /// The attempt the server answered.
    pub attempt: AttemptSpan,
}

impl StreamSpans {
    /// Ends both with `code` (`None`: no status, such as a local deadline).
    pub fn end(self, code: Option<Code>) {
        let Self { call, mut attempt } = self;
        attempt.ended(code);
        drop(attempt);
        call.end(code);
    }
}

/// One attempt's span, ended with its status (CANCELLED when dropped
/// unfinished: it lost to a hedge or ran out of time).
#[derive(Debug)]
pub struct AttemptSpan {
    span: Option<Span>,
    code: Option<Code>,
}

impl AttemptSpan {
    /// The `traceparent` (and `tracestate`, when the trace carries one) to
    /// send with this attempt.
    #[must_use]
    pub fn headers(&self) -> Option<(String, Option<String>)> {
        let context = self.span.as_ref()?.span_context();
        let state = context.trace_state().header();
        Some((format_traceparent(context), (!state.is_empty()).then_some(state)))
    }

    /// The attempt ended with `code`; `None` for a failure before any
    /// status (it could not connect).
    pub fn ended(&mut self, code: Option<Code>) {
        self.code = code.or(Some(Code::Unavailable));
    }
}

impl Drop for AttemptSpan {
    fn drop(&mut self) {
        let Some(span) = self.span.as_mut() else { return };
        let code = self.code.unwrap_or(Code::Cancelled);
        span.set_attribute(KeyValue::new("rpc.grpc.status_code", code as i64));
        if code != Code::Ok {
            span.set_status(Status::error(code_name(code)));
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(service_and_method("/search.v1.SearchService/Search"), ("search.v1.SearchService", "Search"));
        assert_eq!(service_and_method("/Search/search"), ("Search", "search"));
        assert_eq!(service_and_method("/odd"), ("odd", ""));
        assert_eq!(host_port("127.0.0.1:8100"), Some(("127.0.0.1", 8100)));
        assert_eq!(host_port("[::1]:9"), Some(("::1", 9)));
        assert_eq!(host_port("unix"), None);
        assert_eq!(connect_code(Code::DeadlineExceeded), "deadline_exceeded");
    }

    #[test]
    fn message_events_are_bounded() {
        let messages = Messages::default();
        messages.passed(false, 3);
        messages.passed(true, 100);
        let seen = messages.seen.lock().expect("not poisoned");
        assert_eq!(seen.events.len(), MAX_MESSAGE_EVENTS);
        assert_eq!((seen.sent, seen.received), (100, 3));
        assert_eq!(
            seen.events[..4].iter().map(|e| (e.1, e.2)).collect::<Vec<_>>(),
            [(false, 1), (false, 2), (false, 3), (true, 1)]
        );
    }
}
