//! A client call's span ([`CallSpan`]) and one span per attempt beneath it
//! ([`AttemptSpan`]), each attempt sending its `traceparent`.

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Span;
use tonic::Code;

use super::attributes::{host_port, service_and_method};
use super::context::format_traceparent;
use super::install::tracer;
use crate::rpc::code_name;

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
