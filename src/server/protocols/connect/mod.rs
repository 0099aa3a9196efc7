//! The Connect protocol (connectrpc.com/docs/protocol), served on the same
//! port as gRPC and gRPC-Web, by the same handlers, through the same
//! per-call layer: each Connect call is turned into the gRPC call it means
//! and the gRPC answer back into Connect.
//!
//! No Rust Connect crate fits this stack (`connectrpc` brings its own message
//! types instead of prost's, `connectrpc-axum` its own build.rs codegen,
//! `axum-connect` older prost and pbjson), so the protocol is written here,
//! once, over the generated service and the pbjson JSON view.
//!
//! Files:
//! - `mod.rs`: the service, and the checks made before a call, in
//!   connect-go's order (HTTP version for bidi, HTTP method, content type),
//!   each answered with its HTTP status.
//! - `call.rs`: the routes served, and a Connect call's head made into
//!   the gRPC call's.
//! - `unary.rs`: unary calls, `POST` and `GET`.
//! - `stream.rs`: streaming calls, in enveloped bodies.
//! - `message.rs`: one request message: inflated, transcoded to protobuf.
//! - `codec.rs`: JSON to protobuf and back, per message type.
//! - `error.rs`: Connect's error JSON and its HTTP status mapping.

mod call;
mod codec;
mod error;
mod message;
mod stream;
mod unary;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{ALLOW, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use tonic::Status;
use tonic::body::Body;
use tower::Service;

pub(super) use self::call::ConnectRoutes;
use self::call::{Call, Codec, Grpc, Route};
use self::error::error_response;
/// For the fuzz targets (`server/fuzzing/`): Connect's parsers of a peer's bytes.
#[cfg(any(fuzzing, test))]
pub(in crate::server) use self::{
    call::grpc_timeout as connect_timeout,
    codec::{NON_FINITE, json},
};

/// The Connect protocol as a service over `inner`, the gRPC service below.
#[derive(Debug, Clone)]
pub(super) struct ConnectService<S> {
    inner: S,
    /// The largest request message (`--max-recv-bytes`).
    limit: usize,
    /// The routes served.
    routes: &'static ConnectRoutes,
}

impl<S> ConnectService<S> {
    pub(super) fn new(inner: S, limit: usize, routes: &'static ConnectRoutes) -> Self {
        Self { inner, limit, routes }
    }
}

impl<S> Service<Request<Body>> for ConnectService<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was ready serves this call (tower's clone-swap idiom).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (limit, routes) = (self.limit, self.routes);
        Box::pin(async move { Ok(check_and_call(inner, request, limit, routes).await) })
    }
}

/// One Connect request, with `inner` the gRPC service below: checked in
/// connect-go's order, then its call run. `limit` is the largest request
/// message (`--max-recv-bytes`); `routes` the methods served.
async fn check_and_call(
    inner: impl Grpc,
    request: Request<Body>,
    limit: usize,
    routes: &'static ConnectRoutes,
) -> Response<Body> {
    let Some(route) = routes.get(request.uri().path()) else {
        let status = Status::unimplemented(format!("no method {} on this server", request.uri().path()));
        return error_response(StatusCode::NOT_FOUND, &status);
    };
    if route.client_streaming && route.server_streaming && request.version() < Version::HTTP_2 {
        let status = Status::unimplemented("bidirectional streaming needs HTTP/2");
        return error_response(StatusCode::HTTP_VERSION_NOT_SUPPORTED, &status);
    }
    let allowed = if route.get { "GET, POST" } else { "POST" };
    let method_ok = request.method() == Method::POST || (route.get && request.method() == Method::GET);
    if !method_ok {
        let status = Status::unimplemented(format!("{} is not allowed here; use {allowed}", request.method()));
        let mut response = error_response(StatusCode::METHOD_NOT_ALLOWED, &status);
        response.headers_mut().insert(ALLOW, HeaderValue::from_static(allowed));
        return response;
    }
    let Some(codec) = codec_of(&request, route) else {
        return unsupported_media_type(&request, route);
    };
    let call = Call { route, codec, limit };
    if route.streaming() { stream::call(inner, request, call).await } else { unary::call(inner, request, call).await }
}

/// The codec a request asks for, if the route can serve it.
fn codec_of(request: &Request<Body>, route: &Route) -> Option<Codec> {
    let codec = if request.method() == Method::GET {
        match unary::query_param(request.uri(), "encoding")?.as_ref() {
            "proto" => Codec::Proto,
            "json" => Codec::Json,
            _ => return None,
        }
    } else {
        let content_type = request.headers().get(CONTENT_TYPE)?.to_str().ok()?;
        // Parameters (`; charset=utf-8`) do not change the codec.
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match (route.streaming(), essence.as_str()) {
            (false, "application/proto") | (true, "application/connect+proto") => Codec::Proto,
            (false, "application/json") | (true, "application/connect+json") => Codec::Json,
            _ => return None,
        }
    };
    (codec == Codec::Proto || route.json.is_some()).then_some(codec)
}

/// 415, with the content types the route takes in `Accept-Post`.
fn unsupported_media_type(request: &Request<Body>, route: &Route) -> Response<Body> {
    let accepted = match (route.streaming(), route.json.is_some()) {
        (false, true) => "application/json, application/proto",
        (false, false) => "application/proto",
        (true, true) => "application/connect+json, application/connect+proto",
        (true, false) => "application/connect+proto",
    };
    let given = request.headers().get(CONTENT_TYPE).map_or_else(|| "none".to_owned(), |v| format!("{v:?}"));
    let status = Status::unimplemented(format!("unsupported content type {given}; this method takes {accepted}"));
    let mut response = error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, &status);
    response.headers_mut().insert(HeaderName::from_static("accept-post"), HeaderValue::from_static(accepted));
    response
}
