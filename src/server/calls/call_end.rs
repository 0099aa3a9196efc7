//! The end of a call, whenever and however it ends: what is known of it
//! ([`CallEnd`]) is counted in the metrics, written as its one log line
//! and closes its span when it is dropped, with the final status, or
//! CANCELLED when the peer went away first.

use std::sync::Arc;

use http::{HeaderMap, Request};
use tokio::time::Instant;
use tonic::Code;
use tonic::body::Body;

use super::metrics::Metrics;
use super::policy::Admitted;
use crate::logging::Call;
use crate::rpc::code_name;
use crate::server::orca::{CallLoad, ORCA_TRAILER, Orca};
use crate::server::protocols::Protocol;
use crate::server::transport::Busy;
use crate::traces::ServerSpan;

/// What is known of a call for its log line, written when the call ends.
#[derive(Debug)]
pub(super) struct CallEnd {
    /// The request's URI, for its path (a clone shares the bytes).
    uri: http::Uri,
    pub(super) protocol: Protocol,
    /// The request size limit, for the messages of client mistakes.
    pub(super) limit: usize,
    pub(super) started: Instant,
    /// The final status, once known; none when the peer went away first.
    pub(super) code: Option<Code>,
    pub(super) admitted: Option<Admitted>,
    /// The call keeps its connection from being idle; it knows the peer.
    busy: Busy,
    /// The metrics, when on, and the call's method label in them.
    pub(super) metrics: Option<(Arc<Metrics>, &'static str)>,
    /// The call's span, when tracing is on (boxed: one word when off).
    pub(super) span: Option<Box<ServerSpan>>,
    /// The load reporter and the call's own figures, when reports are on.
    pub(super) load: Option<(Orca, CallLoad)>,
}

impl CallEnd {
    pub(super) fn new(
        request: &Request<Body>,
        protocol: Protocol,
        limit: usize,
        busy: Busy,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let started = Instant::now();
        let metrics = metrics.map(|metrics| {
            let label = metrics.start(request.uri().path(), protocol.name());
            (metrics, label)
        });
        let uri = request.uri().clone();
        let span = ServerSpan::start(request.headers(), &uri, protocol == Protocol::Connect, busy.peer());
        Self { uri, protocol, limit, started, code: None, admitted: None, busy, metrics, span, load: None }
    }

    /// Adds the call's load report to the answer's trailers (or to the
    /// headers of a trailers-only answer), when reports are on.
    pub(super) fn report_load(&self, trailers: &mut HeaderMap) {
        if let Some((orca, call)) = &self.load
            && let Some(value) = orca.trailer(call)
        {
            trailers.insert(ORCA_TRAILER, value);
        }
    }
}

impl Drop for CallEnd {
    fn drop(&mut self) {
        // A response dropped before its status was sent: the client cancelled
        // or the connection went away.
        let code = self.code.unwrap_or(Code::Cancelled);
        let duration = self.started.elapsed();
        let protocol = self.protocol.name();
        if let Some((metrics, label)) = &self.metrics {
            metrics.finish(label, protocol, code, duration);
        }
        if let Some((orca, _)) = &self.load {
            orca.count(code);
        }
        let (method, name, peer) = (self.uri.path(), code_name(code), self.busy.peer());
        let trace_id = self.span.as_ref().map(|span| span.trace_id());
        Call { method, protocol, code: name, duration, peer, trace_id }.log();
        if let Some(span) = self.span.take() {
            span.end(code);
        }
    }
}
