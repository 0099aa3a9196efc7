//! OpenTelemetry traces for both sides: a span per server call and, on the
//! client, one per call with one per attempt beneath it, following the RPC
//! semantic conventions; the parent read from and sent as W3C
//! `traceparent` (and grpc's `grpc-trace-bin`, read); spans exported over
//! OTLP (gRPC or HTTP/protobuf).
//!
//! Off unless [`install`]ed: then the only cost on a call's path is
//! [`tracer`], one load of a static.
//!
//! Files:
//! - `config.rs`: the flags and their environment variables, checked.
//! - `install.rs`: tracing turned on ([`install`]), the tracer, shutdown.
//! - `server_span.rs`: a server call's span and its message events.
//! - `client_spans.rs`: a client call's span and its attempts' spans.
//! - `attributes.rs`: the RPC semantic conventions' attributes.
//! - `context.rs`: the trace context on the wire, parsed and written.
//! - `export.rs`: the queue, the sending thread, the dropped-span count.

mod attributes;
mod client_spans;
mod config;
mod context;
mod export;
mod install;
mod server_span;

pub use self::attributes::rpc_system;
pub use self::client_spans::{AttemptSpan, CallSpan, StreamSpans};
pub use self::config::{Protocol, TraceArgs, TraceConfig, TraceConfigError, parse_sampler};
pub use self::context::{
    GRPC_TRACE_BIN, TRACEPARENT, TRACESTATE, extract, format_traceparent, parse_grpc_trace_bin, parse_traceparent,
};
pub use self::export::{EXPORT_TIMEOUT, QUEUE};
pub use self::install::{InstallError, SHUTDOWN, Traces, dropped, install, tracer};
pub use self::server_span::{MAX_MESSAGE_EVENTS, Messages, ServerSpan};
