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
//! - `mod.rs`: the routes, and the checks made before a call, in
//!   connect-go's order (HTTP version for bidi, HTTP method, content type),
//!   each answered with its HTTP status.
//! - `unary.rs`: unary calls, `POST` and `GET`.
//! - `stream.rs`: streaming calls, in enveloped bodies.
//! - `message.rs`: one request message: inflated, transcoded to protobuf.
//! - `codec.rs`: JSON to protobuf and back, per message type.
//! - `error.rs`: Connect's error JSON and its HTTP status mapping.

mod codec;
mod error;
mod message;
mod stream;
mod unary;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use tonic::Status;
use tonic::body::Body;
use tower::Service;

use self::codec::{FromJson, ToJson};
use self::message::{Decoder, request_encoding};
use super::SERVED;
use super::protocol::{CallMark, Protocol};
use crate::rpc::{self, Idempotency, LEGACY_SEARCH_PATH, SEARCH_PATH};

/// Refuses the call of `extensions` with `status` (a bad timeout or
/// compression header): the per-call layer answers it, and logs it like any
/// other. The first refusal stands.
fn refuse(extensions: &mut http::Extensions, status: Status) {
    match extensions.get_mut::<CallMark>() {
        Some(mark) => {
            mark.refused.get_or_insert(status);
        }
        None => {
            extensions.insert(CallMark { protocol: Protocol::Connect, refused: Some(status) });
        }
    }
}

/// The Connect protocol as a service over `inner`, the gRPC service below.
#[derive(Debug, Clone)]
pub(super) struct ConnectService<S> {
    inner: S,
    /// The largest request message (`--max-recv-bytes`).
    limit: usize,
}

impl<S> ConnectService<S> {
    pub(super) fn new(inner: S, limit: usize) -> Self {
        Self { inner, limit }
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
        let limit = self.limit;
        Box::pin(async move { Ok(serve(inner, request, limit).await) })
    }
}

/// How a Connect call's messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    /// Binary protobuf, as gRPC.
    Proto,
    /// The proto3 JSON mapping.
    Json,
}

/// The gRPC service below the Connect layer, as the calls use it.
trait Grpc: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send {}

impl<S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send> Grpc for S {}

/// One checked Connect call: its method, its codec, and the size limit.
#[derive(Debug, Clone, Copy)]
struct Call {
    route: &'static Route,
    codec: Codec,
    /// The largest request message (`--max-recv-bytes`).
    limit: usize,
}

/// A method the server serves, as Connect needs to know it.
#[derive(Debug)]
struct Route {
    client_streaming: bool,
    server_streaming: bool,
    /// Marked `NO_SIDE_EFFECTS`: may be called with `GET`.
    get: bool,
    /// The JSON view of its request and response, when they have one.
    json: Option<(FromJson, ToJson)>,
    /// The request message's full name, for error messages.
    input: String,
}

impl Route {
    fn streaming(&self) -> bool {
        self.client_streaming || self.server_streaming
    }
}

/// Every method served, from the descriptor sets of the services: the
/// contract, health, reflection; and the article's path as the alias it is.
static ROUTES: LazyLock<HashMap<String, Route>> = LazyLock::new(|| {
    let mut routes = HashMap::new();
    for method in SERVED.into_iter().flat_map(rpc::methods) {
        let json = codec::json(&method.input).zip(codec::json(&method.output)).map(|((from, _), (_, to))| (from, to));
        let route = Route {
            client_streaming: method.client_streaming,
            server_streaming: method.server_streaming,
            get: method.idempotency == Idempotency::NoSideEffects,
            json,
            input: method.input,
        };
        routes.insert(method.path, route);
    }
    if let Some(search) = routes.get(SEARCH_PATH) {
        // Not in the contract, so not marked side-effect free: no GET.
        let legacy = Route { get: false, input: search.input.clone(), ..*search };
        routes.insert(LEGACY_SEARCH_PATH.to_owned(), legacy);
    }
    routes
});

/// Whether the method at `path` is bidirectional: over HTTP/1.1 no protocol
/// can carry it (connect-go answers 505 for each).
pub(super) fn is_bidi(path: &str) -> bool {
    ROUTES.get(path).is_some_and(|route| route.client_streaming && route.server_streaming)
}

/// Serves one Connect request with `inner`, the gRPC service below: checks
/// it in connect-go's order, then runs its call. `limit` is the largest
/// request message (`--max-recv-bytes`).
async fn serve(inner: impl Grpc, request: Request<Body>, limit: usize) -> Response<Body> {
    let Some(route) = ROUTES.get(request.uri().path()) else {
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

/// A Connect error response with `http` as its status.
fn error_response(http: StatusCode, status: &Status) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(Bytes::from(error::json(status)))));
    *response.status_mut() = http;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Makes `parts` the gRPC request's (see [`grpc_parts`]) and returns how its
/// messages are read: compressed as `encoding` says (named in `header`; an
/// encoding the server lacks refuses the call), in the route's JSON view
/// for JSON calls, at most `limit` bytes each.
fn to_grpc(parts: &mut http::request::Parts, call: Call, encoding: Option<&str>, header: &str) -> Decoder {
    let Call { route, codec, limit } = call;
    let encoding = request_encoding(encoding, header);
    let from_json = match codec {
        Codec::Json => route.json.map(|(from, _)| from),
        Codec::Proto => None,
    };
    let decoder = Decoder { encoding: *encoding.as_ref().unwrap_or(&None), from_json, limit, type_name: &route.input };
    grpc_parts(parts);
    if let Err(status) = encoding {
        refuse(&mut parts.extensions, status);
    }
    decoder
}

/// The gRPC request a Connect request means: `POST`, `application/grpc`,
/// its deadline as `grpc-timeout`, Connect's own headers removed, the
/// extensions (the peer, the protocol) kept. A header the call cannot run
/// with becomes a refusal for the per-call layer to answer.
fn grpc_parts(parts: &mut http::request::Parts) {
    let timeout_header = parts.headers.get("connect-timeout-ms").cloned();
    if let Some(version) = parts.headers.get("connect-protocol-version")
        && version != "1"
    {
        let status = Status::invalid_argument(format!("connect-protocol-version must be 1, not {version:?}"));
        refuse(&mut parts.extensions, status);
    }
    parts.method = Method::POST;
    // Internally a gRPC call, which tonic-web passes on only as HTTP/2
    // (it answers 400 to HTTP/1.1 requests that are not gRPC-Web).
    parts.version = Version::HTTP_2;
    if parts.uri.query().is_some() {
        // GET's message is in the query, already read; routing needs the path.
        if let Ok(uri) = http::Uri::try_from(parts.uri.path()) {
            parts.uri = uri;
        }
    }
    let headers = &mut parts.headers;
    // Connect's own headers, and gRPC's compression headers: the messages
    // inside are plain. Names made once, not parsed per call.
    for name in &*PROTOCOL_HEADERS {
        headers.remove(name);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
    match timeout_header.map(|value| grpc_timeout(&value)) {
        Some(Ok(timeout)) => {
            headers.insert(HeaderName::from_static("grpc-timeout"), timeout);
        }
        Some(Err(status)) => {
            refuse(&mut parts.extensions, status);
        }
        None => {}
    }
}

/// The headers that describe the Connect request itself, not its call.
static PROTOCOL_HEADERS: LazyLock<[HeaderName; 9]> = LazyLock::new(|| {
    [
        http::header::CONTENT_LENGTH,
        http::header::CONTENT_ENCODING,
        http::header::ACCEPT_ENCODING,
        HeaderName::from_static("grpc-encoding"),
        HeaderName::from_static("grpc-accept-encoding"),
        HeaderName::from_static("connect-protocol-version"),
        HeaderName::from_static("connect-timeout-ms"),
        HeaderName::from_static("connect-content-encoding"),
        HeaderName::from_static("connect-accept-encoding"),
    ]
});

/// `connect-timeout-ms` (1 to 10 digits of milliseconds) as `grpc-timeout`
/// (at most 8 digits and a unit).
fn grpc_timeout(value: &HeaderValue) -> Result<HeaderValue, Status> {
    let invalid = || {
        Status::invalid_argument(format!(
            "invalid connect-timeout-ms header {value:?}: expected 1 to 10 digits of milliseconds"
        ))
    };
    let digits = value.to_str().map_err(|_| invalid())?;
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let millis: u64 = digits.parse().map_err(|_| invalid())?;
    let grpc = if millis <= 99_999_999 { format!("{millis}m") } else { format!("{}S", millis.div_ceil(1000)) };
    HeaderValue::try_from(grpc).map_err(|_| invalid())
}

/// The custom metadata of a gRPC response, as Connect writes it: headers
/// as they are, trailers with a `trailer-` prefix (unary) or in the
/// end-of-stream message (streaming). gRPC's own headers stay behind.
fn is_custom(name: &HeaderName) -> bool {
    let name = name.as_str();
    !(name.starts_with("grpc-") || name == "content-type" || name == "te" || name == "content-length")
}

/// Copies the custom metadata of `from` into `to`, with `prefix`.
fn copy_metadata(from: &HeaderMap, to: &mut HeaderMap, prefix: &str) {
    for (name, value) in from {
        if is_custom(name)
            && let Ok(name) = HeaderName::try_from(format!("{prefix}{name}"))
        {
            to.append(name, value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_method_has_a_route() {
        let search = ROUTES.get(SEARCH_PATH).expect("Search");
        assert!(search.get && !search.streaming() && search.json.is_some());
        let legacy = ROUTES.get(LEGACY_SEARCH_PATH).expect("the legacy alias");
        assert!(!legacy.get && legacy.json.is_some());
        let classify = ROUTES.get("/search.v1.SearchService/Classify").expect("Classify");
        assert!(classify.client_streaming && classify.server_streaming && !classify.get);
        assert!(ROUTES.get("/grpc.health.v1.Health/Check").is_some_and(|r| r.json.is_some()));
        let reflection = ROUTES.get("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").expect("reflection");
        assert!(reflection.json.is_none(), "reflection is served in binary only");
    }

    #[test]
    fn connect_timeouts_become_grpc_timeouts() {
        let convert = |value: &str| {
            grpc_timeout(&HeaderValue::from_str(value).expect("header"))
                .map(|v| v.to_str().map(str::to_owned).expect("ASCII"))
        };
        assert_eq!(convert("1500").ok().as_deref(), Some("1500m"));
        assert_eq!(convert("0").ok().as_deref(), Some("0m"));
        assert_eq!(convert("9999999999").ok().as_deref(), Some("10000000S"));
        for bad in ["", "-1", "1.5", "12345678901", "soon"] {
            let status = convert(bad).expect_err(bad);
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad:?}");
            assert!(status.message().contains("connect-timeout-ms"));
        }
    }
}
