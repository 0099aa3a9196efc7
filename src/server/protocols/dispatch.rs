//! One port, three protocols: each request is told apart by its content type
//! and sent down its own path, once. gRPC goes straight to the per-call
//! layer; gRPC-Web through tonic-web, which makes it gRPC; everything else
//! to the Connect protocol (which answers 415 what is not Connect either).
//! The two a browser speaks go through CORS when origins are allowed. The
//! protocol is marked in the request's extensions for the call log.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode, Version};
use tonic::body::Body;
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower::util::Either;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{Cors, CorsLayer};

use super::call_future::{CallFuture, answered};
use super::connect::{ConnectRoutes, ConnectService};
use super::mark::{CallMark, Protocol};
use crate::server::method_table::MethodTable;

/// A request's content type, empty when it has none.
fn content_type<B>(request: &Request<B>) -> &[u8] {
    request.headers().get(CONTENT_TYPE).map_or(&b""[..], |value| value.as_bytes())
}

/// A browser protocol's path: behind CORS when origins are allowed.
type Browser<S> = Either<Cors<S>, S>;

/// The dispatch layer, outermost. It must see every request before
/// tonic-web does, as tonic-web answers 400 to any HTTP/1.1 request that is
/// not gRPC-Web.
#[derive(Debug, Clone)]
pub(in crate::server) struct ProtocolLayer {
    max_recv_bytes: usize,
    cors: Option<CorsLayer>,
    /// The routes served, as Connect (and the HTTP/1.1 check) needs them.
    routes: &'static ConnectRoutes,
}

impl ProtocolLayer {
    /// A layer whose Connect requests are at most `max_recv_bytes` a
    /// message, whose browser protocols answer CORS as `cors` says, and
    /// which serves what `served` lists.
    pub(in crate::server) fn new(max_recv_bytes: usize, cors: Option<CorsLayer>, table: &'static MethodTable) -> Self {
        Self { max_recv_bytes, cors, routes: ConnectRoutes::of(table) }
    }

    fn browser<S>(&self, service: S) -> Browser<S> {
        match &self.cors {
            Some(cors) => Either::Left(cors.layer(service)),
            None => Either::Right(service),
        }
    }
}

impl<S: Clone> Layer<S> for ProtocolLayer {
    type Service = Protocols<S>;

    fn layer(&self, inner: S) -> Protocols<S> {
        let web = self.browser(GrpcWebLayer::new().layer(inner.clone()));
        let connect = self.browser(ConnectService::new(inner.clone(), self.max_recv_bytes, self.routes));
        Protocols { grpc: inner, web, connect, routes: self.routes }
    }
}

/// The dispatch: see the module documentation. Browsers speak gRPC-Web and
/// Connect, never gRPC, so CORS is on those two paths only.
#[derive(Debug, Clone)]
pub(in crate::server) struct Protocols<S> {
    grpc: S,
    web: Browser<GrpcWebService<S>>,
    connect: Browser<ConnectService<S>>,
    routes: &'static ConnectRoutes,
}

impl<S> Service<Request<Body>> for Protocols<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future = CallFuture>,
    S: Clone + Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Every path ends in the same kind of service; each must be ready.
        if self.grpc.poll_ready(cx)?.is_pending()
            || Service::<Request<Body>>::poll_ready(&mut self.web, cx)?.is_pending()
        {
            return Poll::Pending;
        }
        self.connect.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let content_type = content_type(&request);
        let protocol = Protocol::of_content_type(content_type);
        // gRPC and gRPC-Web in JSON (`application/grpc+json`) are not served
        // here: refused as gRPC refuses a content type it lacks.
        let json = protocol != Protocol::Connect && content_type.ends_with(b"+json");
        if protocol == Protocol::Grpc && !json {
            return self.grpc.call(request);
        }
        if json {
            return refused(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        request.extensions_mut().insert(CallMark { protocol, refused: None });
        if protocol == Protocol::GrpcWeb {
            if request.version() < Version::HTTP_2 && self.routes.is_bidi(request.uri().path()) {
                // Half-duplex HTTP/1.1 cannot carry it; tonic-web would try.
                return refused(StatusCode::HTTP_VERSION_NOT_SUPPORTED);
            }
            Box::pin(self.web.clone().oneshot(request))
        } else {
            Box::pin(self.connect.clone().oneshot(request))
        }
    }
}

/// An answer given before any call: an HTTP status and no body.
fn refused(status: StatusCode) -> CallFuture {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    answered(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_type_tells_the_protocol() {
        let of = |given: Option<&str>| {
            let mut request = Request::builder();
            if let Some(value) = given {
                request = request.header(CONTENT_TYPE, value);
            }
            Protocol::of_content_type(content_type(&request.body(()).expect("valid request")))
        };
        assert_eq!(of(Some("application/grpc")), Protocol::Grpc);
        assert_eq!(of(Some("application/grpc+proto")), Protocol::Grpc);
        assert_eq!(of(Some("application/grpc-web+proto")), Protocol::GrpcWeb);
        assert_eq!(of(Some("application/grpc-web-text")), Protocol::GrpcWeb);
        assert_eq!(of(Some("application/json")), Protocol::Connect);
        assert_eq!(of(Some("application/connect+proto")), Protocol::Connect);
        assert_eq!(of(None), Protocol::Connect);
    }
}
