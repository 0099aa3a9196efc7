//! A server call's span ([`ServerSpan`]): its parent from the request's
//! headers, its attributes, its message events, ended with the call's status.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Span;
use tonic::Code;

use super::attributes::{host_port, rpc_system, service_and_method};
use super::context::extract;
use super::install::tracer;
use crate::rpc::code_name;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_codes_are_grpcs_in_lower_case() {
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
