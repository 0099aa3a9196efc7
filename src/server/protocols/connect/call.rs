//! One Connect call as the gRPC call it means: the methods served, as
//! Connect needs to know them ([`Route`], from the descriptor sets of
//! `method_table.rs`), the checked call ([`Call`]), the request's head made into
//! gRPC's (method, content type, `connect-timeout-ms` as `grpc-timeout`),
//! a header the call cannot run with left as a refusal for the per-call
//! layer, and a response's custom metadata copied back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{LazyLock, Mutex};

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, Version};
use tonic::Status;
use tonic::body::Body;
use tower::Service;

use super::codec::{self, FromJson, ToJson};
use super::message::{Decoder, request_encoding};
use crate::rpc::{Idempotency, LEGACY_SEARCH_PATH};
use crate::server::method_table::{Kept, MethodTable, keep};
use crate::server::protocols::mark::{CallMark, Protocol};
use crate::server::protocols::per_message::ReceivedCompression;

/// Refuses the call of `extensions` with `status` (a bad timeout or
/// compression header): the per-call layer answers it, and logs it like any
/// other. The first refusal stands.
pub(super) fn refuse(extensions: &mut http::Extensions, status: Status) {
    match extensions.get_mut::<CallMark>() {
        Some(mark) => {
            mark.refused.get_or_insert(status);
        }
        None => {
            extensions.insert(CallMark { protocol: Protocol::Connect, refused: Some(status) });
        }
    }
}

/// How a Connect call's messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    /// Binary protobuf, as gRPC.
    Proto,
    /// The proto3 JSON mapping.
    Json,
}

/// The gRPC service below the Connect layer, as the calls use it.
pub(super) trait Grpc: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send {}

impl<S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send> Grpc for S {}

/// One checked Connect call: its method, its codec, and the size limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call {
    pub(super) route: &'static Route,
    pub(super) codec: Codec,
    /// The largest request message (`--max-recv-bytes`).
    pub(super) limit: usize,
}

/// A method the server serves, as Connect needs to know it.
#[derive(Debug)]
pub(super) struct Route {
    pub(super) client_streaming: bool,
    pub(super) server_streaming: bool,
    /// Marked `NO_SIDE_EFFECTS`: may be called with `GET`.
    pub(super) get: bool,
    /// The JSON view of its request and response, when they have one.
    pub(super) json: Option<(FromJson, ToJson)>,
    /// The request message's full name, for error messages.
    pub(super) input: String,
    /// A method of a service the program added: its handler may ask which
    /// request messages arrived compressed.
    pub(super) added: bool,
}

impl Route {
    /// Whether either side streams.
    pub(super) fn streaming(&self) -> bool {
        self.client_streaming || self.server_streaming
    }
}

/// Every method one server serves, as Connect needs to know them.
#[derive(Debug)]
pub(in crate::server::protocols) struct ConnectRoutes(HashMap<&'static str, Route>);

impl ConnectRoutes {
    /// The routes of the methods in `table`, from their descriptors:
    /// built once per table, the same after.
    pub(in crate::server::protocols) fn of(table: &'static MethodTable) -> &'static Self {
        static TABLES: Kept<usize, ConnectRoutes> = Mutex::new(Vec::new());
        keep(&TABLES, std::ptr::from_ref(table) as usize, || Self::build(table))
    }

    fn build(table: &MethodTable) -> Self {
        let mut routes = HashMap::new();
        for (path, method) in table.methods() {
            let json =
                codec::json(&method.input).zip(codec::json(&method.output)).map(|((from, _), (_, to))| (from, to));
            let route = Route {
                client_streaming: method.client_streaming,
                server_streaming: method.server_streaming,
                // The article's path is not in the contract, so not marked
                // side-effect free: no GET.
                get: method.idempotency == Idempotency::NoSideEffects && path != LEGACY_SEARCH_PATH,
                json,
                input: method.input.clone(),
                added: table.is_added(path),
            };
            routes.insert(path, route);
        }
        Self(routes)
    }

    /// The method at `path`, if it is served.
    pub(super) fn get(&self, path: &str) -> Option<&Route> {
        self.0.get(path)
    }

    /// Whether the method at `path` is bidirectional: over HTTP/1.1 no
    /// protocol can carry it (connect-go answers 505 for each).
    pub(in crate::server::protocols) fn is_bidi(&self, path: &str) -> bool {
        self.get(path).is_some_and(|route| route.client_streaming && route.server_streaming)
    }
}

/// Makes `parts` the gRPC request's (see [`grpc_parts`]) and returns how its
/// messages are read: compressed as `encoding` says (named in `header`; an
/// encoding the server lacks refuses the call), in the route's JSON view
/// for JSON calls, at most `limit` bytes each.
pub(super) fn to_grpc(parts: &mut http::request::Parts, call: Call, encoding: Option<&str>, header: &str) -> Decoder {
    let Call { route, codec, limit } = call;
    let encoding = request_encoding(encoding, header);
    let from_json = match codec {
        Codec::Json => route.json.map(|(from, _)| from),
        Codec::Proto => None,
    };
    let received = route.added.then(|| {
        let received = ReceivedCompression::default();
        parts.extensions.insert(received.clone());
        received
    });
    let decoder =
        Decoder { encoding: *encoding.as_ref().unwrap_or(&None), from_json, limit, type_name: &route.input, received };
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
pub(in crate::server) fn grpc_timeout(value: &HeaderValue) -> Result<HeaderValue, Status> {
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
pub(super) fn is_custom(name: &HeaderName) -> bool {
    let name = name.as_str();
    !(name.starts_with("grpc-") || name == "content-type" || name == "te" || name == "content-length")
}

/// Copies the custom metadata of `from` into `to`, with `prefix`.
pub(super) fn copy_metadata(from: &HeaderMap, to: &mut HeaderMap, prefix: &str) {
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
        let routes = ConnectRoutes::of(MethodTable::of(&crate::server::AddedServices::default()));
        let search = routes.get(crate::rpc::SEARCH_PATH).expect("Search");
        assert!(search.get && !search.streaming() && search.json.is_some());
        let legacy = routes.get(LEGACY_SEARCH_PATH).expect("the legacy alias");
        assert!(!legacy.get && legacy.json.is_some());
        let classify = routes.get("/search.v1.SearchService/Classify").expect("Classify");
        assert!(classify.client_streaming && classify.server_streaming && !classify.get);
        assert!(routes.get("/grpc.health.v1.Health/Check").is_some_and(|r| r.json.is_some()));
        let reflection = routes.get("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").expect("reflection");
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
