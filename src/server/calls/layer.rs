//! What the server does around every call, whatever the method: it admits
//! the call and sets its deadline ([`CallPolicy`]), refuses what the
//! protocol layer marked, a method the server does not serve and an
//! encoding it lacks (the rest of a refused request read out unread, so
//! that its stream closes cleanly: `refused`), checks the
//! request's gRPC framing (size limit, truncation) as it arrives, and races
//! the handler against the deadline and the drain's cut; then the answer
//! goes out through `call_body.rs` and the call ends in `call_end.rs`.
//!
//! It is the server's one deadline mechanism (the connections are served
//! by `transport/connection_server.rs`, not by tonic's transport server,
//! whose timeout would cover only the handler's future, not a streamed
//! response; tower's `Timeout` has the same limit).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tokio::time::sleep_until;
use tonic::body::Body;
use tower::{Layer, Service};

use super::call_body::{Expiry, cut_status, deadline_status, finish};
use super::call_end::CallEnd;
use super::metrics::Metrics;
use super::policy::{CallPolicy, burn_on_the_cpu_pool};
use super::routes::Routes;
use crate::rpc::header::{GRPC_ACCEPT_ENCODING, GRPC_ENCODING};
use crate::rpc::{LEGACY_SEARCH_PATH, SEARCH_PATH};
use crate::server::orca::Orca;
use crate::server::protocols::compression::{self, Encoding};
use crate::server::protocols::{CallFuture, CallMark, Protocol, ReceivedCompression, RequestFrames, refused};
use crate::server::security::Security;
use crate::server::transport::ConnectionActivity;

/// The per-call layer, outermost around the routes.
#[derive(Debug, Clone)]
pub struct CallLayer {
    policy: Arc<CallPolicy>,
    metrics: Option<Arc<Metrics>>,
    security: Option<Arc<Security>>,
    orca: Option<Orca>,
    connection: ConnectionActivity,
}

impl CallLayer {
    /// A layer applying `policy` to the calls of `connection`, recording
    /// them in `metrics`, checking who calls with `security` and reporting
    /// load with `orca` when given.
    #[must_use]
    pub(in crate::server) fn new(
        policy: Arc<CallPolicy>,
        metrics: Option<Arc<Metrics>>,
        security: Option<Arc<Security>>,
        orca: Option<Orca>,
        connection: ConnectionActivity,
    ) -> Self {
        Self { policy, metrics, security, orca, connection }
    }
}

impl Layer<Routes> for CallLayer {
    type Service = Calls;

    fn layer(&self, inner: Routes) -> Calls {
        Calls {
            inner,
            policy: Arc::clone(&self.policy),
            metrics: self.metrics.clone(),
            security: self.security.clone(),
            orca: self.orca.clone(),
            connection: self.connection.clone(),
        }
    }
}

/// The per-call service: see the module documentation.
#[derive(Debug, Clone)]
pub struct Calls {
    /// Where each call goes, once admitted.
    inner: Routes,
    policy: Arc<CallPolicy>,
    metrics: Option<Arc<Metrics>>,
    /// Who may call what; `None`: everyone, everything.
    security: Option<Arc<Security>>,
    /// The load reporter, when reports are on.
    orca: Option<Orca>,
    /// The connection: each call holds it busy, and its TLS says who it is.
    connection: ConnectionActivity,
}

impl Calls {
    /// Who makes `request`, and whether they may, on the method's canonical
    /// name (`served`, the path the routes serve; the article's path is the
    /// method it serves); the caller goes with the request, for the handler.
    fn authorize(&self, request: &mut Request<Body>, served: Option<&'static str>) -> Result<(), tonic::Status> {
        let Some(security) = &self.security else { return Ok(()) };
        let method = match served {
            Some(LEGACY_SEARCH_PATH) => SEARCH_PATH,
            Some(served) => served,
            None => request.uri().path(),
        };
        let caller = security.check(self.connection.peer(), method, request.headers())?;
        request.extensions_mut().insert(caller);
        Ok(())
    }

    /// The refusals made before a call takes a slot, logged like any other
    /// call: the protocol layer's (`marked`: a bad header) or
    /// `--fail-calls`', who calls, and a method the server does not serve;
    /// else the path the routes serve.
    fn before_a_slot(
        &self,
        request: &mut Request<Body>,
        marked: Option<tonic::Status>,
    ) -> Result<&'static str, tonic::Status> {
        if let Some(status) = marked.or_else(|| self.policy.fault(request.uri().path())) {
            return Err(status);
        }
        let served = self.inner.table().path(request.uri().path());
        self.authorize(request, served)?;
        served.ok_or_else(|| tonic::Status::unimplemented(format!("no method {} on this server", request.uri().path())))
    }
}

impl Service<Request<Body>> for Calls {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The routes call generated services, which are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // Marked by the protocol layer, which sees every request first;
        // unmarked is gRPC (the hot path stores nothing).
        let mark = request.extensions().get::<CallMark>();
        let limit = self.policy.max_recv_bytes;
        let protocol = mark.map_or(Protocol::Grpc, |mark| mark.protocol);
        let mut end = CallEnd::new(&request, protocol, limit, self.connection.busy(), self.metrics.clone());
        // Every call is counted in the load report's rates.
        end.load = self.orca.as_ref().map(|orca| (orca.clone(), orca.call_started()));
        let marked = mark.and_then(|mark| mark.refused.clone());
        let served = match self.before_a_slot(&mut request, marked) {
            Ok(served) => served,
            Err(status) => {
                end.code = Some(status.code());
                return refused(request.into_body(), status.into_http());
            }
        };
        // The handler may add to the call's own figures.
        if let Some((_, load)) = &end.load {
            request.extensions_mut().insert(load.clone());
        }
        let admitted = self.policy.admit();
        let timeout = self.policy.timeout(request.headers());
        let (admitted, timeout) = match (admitted, timeout) {
            (Ok(admitted), Ok(timeout)) => (admitted, timeout),
            (Err(status), _) | (_, Err(status)) => {
                end.code = Some(status.code());
                return refused(request.into_body(), status.into_http());
            }
        };
        end.admitted = Some(admitted);
        let (started, deadline) = (end.started, end.started + timeout);
        let encoding = request.headers().get(GRPC_ENCODING);
        if let Some(name) = encoding.map(|v| v.to_str().unwrap_or("(not text)"))
            && name != "identity"
            && Encoding::parse(name).is_none()
        {
            let status = compression::unsupported(name, "grpc-encoding");
            end.code = Some(status.code());
            let mut response = status.into_http();
            response.headers_mut().insert(GRPC_ACCEPT_ENCODING, HeaderValue::from_static(compression::ACCEPTED));
            return refused(request.into_body(), response);
        }
        let compressed_ok = encoding.is_some();
        // The answer's compression, when the client takes one the server has.
        let compress =
            request.headers().get(GRPC_ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).and_then(Encoding::choose);
        let flows = self.metrics.as_ref().map(|metrics| Arc::clone(&metrics.flows));
        // A handler of an added service may ask which request messages
        // arrived compressed: only possible when an encoding is named.
        let received = (compressed_ok && self.inner.table().is_added(request.uri().path())).then(|| {
            let received = ReceivedCompression::default();
            request.extensions_mut().insert(received.clone());
            received
        });
        let traced = end.span.as_ref().map(|span| span.messages());
        let request = request.map(|body| {
            Body::new(RequestFrames::new(body, limit, compressed_ok, flows).recording(received).traced(traced))
        });
        let work = self.policy.work(request.uri().path());
        let call = self.inner.route(request, served);
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            // Biased, handler first: an answer ready at once (most unary
            // calls) never arms the timer or registers with the cut. The
            // work, when asked, comes first, within the deadline.
            let response = tokio::select! {
                biased;
                response = async { burn_on_the_cpu_pool(work).await; call.await } => response?,
                () = sleep_until(deadline) => deadline_status(timeout).into_http(),
                () = policy.cut.cancelled() => cut_status().into_http(),
            };
            policy.sample(started.elapsed());
            Ok(finish(response, end, Expiry { deadline, timeout, policy }, compress))
        })
    }
}
