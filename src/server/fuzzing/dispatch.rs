//! The fuzz target of whole requests (see `mod.rs`): a request of any
//! protocol the port serves (gRPC, gRPC-Web binary and text, Connect POST,
//! GET and streams, or none of them), to any path, with fuzzed headers, a
//! query and a body cut into chunks, through the server's own stack (the
//! page, the protocols' dispatch, the per-call layer, the routes and
//! handlers) in memory, on a runtime whose clock only moves when every task
//! waits, so that a deadline passes at once and every call ends. The same
//! stack with the security layer (a policy, the `jwt` target's key set) is
//! the second half of the inputs, each with an `authorization` of its
//! choosing: none, a token allowed or not, garbage, the fuzzed one.

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, Method, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceBuilder, ServiceExt};

use super::framing::body_of;
use super::headers::{headers, policy};
use super::tokens::{LATER, bearer, security};
use super::{Input, keys};
use crate::pb::v1::FILE_DESCRIPTOR_SET;
use crate::server::AddedServices;
use crate::server::ServerConfig;
use crate::server::calls::{CallLayer, CallPolicy, Routes};
use crate::server::method_table::MethodTable;
use crate::server::page::PageLayer;
use crate::server::protocols::compression::ENCODINGS;
use crate::server::protocols::{ProtocolLayer, cors};
use crate::server::security::Security;
use crate::server::transport::ConnectionActivity;

/// The largest answer a fuzzed request may get: the inputs are small, and
/// no answer is much larger than its request.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Each protocol's method and content type; empty is none.
const PROTOCOLS: &[(&str, &str)] = &[
    ("POST", "application/grpc"),
    ("POST", "application/grpc+proto"),
    ("POST", "application/grpc-web+proto"),
    ("POST", "application/grpc-web-text"),
    ("POST", "application/grpc-web-text+proto"),
    ("POST", "application/proto"),
    ("POST", "application/json"),
    ("GET", ""),
    ("POST", "application/connect+proto"),
    ("POST", "application/connect+json"),
    ("POST", ""),
];

/// The server's stack for one connection, as `start` (`server/mod.rs`)
/// assembles it, with the default settings.
struct Server {
    stack: BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>,
    policy: Arc<CallPolicy>,
    runtime: tokio::runtime::Runtime,
    /// Every method's path, the web page's first, in a fixed order.
    paths: Vec<&'static str>,
}

/// The secured stack's policy: alice may call the search service, anyone
/// may check health, bob may call nothing.
const POLICY: &str = r#"{"name": "fuzz",
    "deny_rules": [{"name": "not-bob", "source": {"request_principals": ["https://issuer.example/bob"]}}],
    "allow_rules": [
      {"name": "alice", "source": {"request_principals": ["https://issuer.example/alice"]},
       "request": {"paths": ["/search.v1.SearchService/*"]}},
      {"name": "probes", "request": {"paths": ["/grpc.health.v1.Health/*"]}}]}"#;

/// The `authorization` of a call to the secured stack: none, a token of
/// alice's, bob's, carol's (in no rule), garbage, alice's expired token, or
/// the fuzzed headers' own.
const AUTHORIZATIONS: u8 = 7;

static SERVER: LazyLock<Server> = LazyLock::new(|| Server::new(None));
/// The same stack with the security layer: [`POLICY`] and the key set of
/// the `jwt` target.
static SECURED: LazyLock<Server> = LazyLock::new(|| Server::new(Some(security(Some(POLICY), Some(keys::JWKS)))));
/// The values of [`AUTHORIZATIONS`] that are the target's.
static BEARERS: LazyLock<[String; 5]> = LazyLock::new(|| {
    let alice = bearer("alice", LATER);
    [alice.clone(), bearer("bob", LATER), bearer("carol", LATER), "Bearer a.b.c".into(), bearer("alice", 1_700_000_000)]
});

impl Server {
    fn new(security: Option<Arc<Security>>) -> Self {
        let config = ServerConfig::default();
        let table = MethodTable::of(&AddedServices::default());
        let (_, health) = tonic_health::server::health_reporter();
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("the contract's descriptor sets");
        let health = ENCODINGS.iter().fold(health, |health, encoding| health.accept_compressed(encoding.tonic()));
        let routes = Routes::new(config.max_recv_bytes, table, &config.services).add(health).add(reflection);
        let policy = Arc::new(policy());
        let calls = CallLayer::new(Arc::clone(&policy), None, security, None, ConnectionActivity::detached());
        let stack = ServiceBuilder::new()
            .layer(PageLayer::new(config.page))
            .layer(ProtocolLayer::new(config.max_recv_bytes, cors(&config.cors), table))
            .service(calls.layer(routes));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime on this thread");
        let mut paths: Vec<&'static str> = table.methods().map(|(path, _)| path).collect();
        paths.sort_unstable();
        paths.insert(0, "/");
        Server { stack: BoxCloneSyncService::new(stack), policy, runtime, paths }
    }
}

/// The paths a target's byte picks, in order (for the seeds).
#[cfg(test)]
pub(super) fn paths() -> &'static [&'static str] {
    &SERVER.paths
}

/// One request through the server's stack: its answer must be whole and
/// bounded, a gRPC answer must carry a status under HTTP 200, no answer may
/// blame the server for the peer's bytes (INTERNAL or UNKNOWN, in any
/// protocol's words), and the call must give its place among the calls in
/// flight back. On the secured stack, a call the policy does not let
/// through is never answered OK.
pub fn dispatch(data: &[u8]) {
    let _ = answer(data);
}

/// What a request got: its HTTP status, its `grpc-status` (in the headers
/// or the trailers), and its body.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: http::StatusCode,
    pub(super) grpc_status: Option<HeaderValue>,
    pub(super) body: Vec<u8>,
}

impl Answer {
    /// The gRPC code, wherever the protocol puts it: gRPC's headers or
    /// trailers, gRPC-Web's trailer frame (in base64 for text); none for
    /// Connect and the page.
    pub(super) fn code(&self) -> Option<u8> {
        let value = match &self.grpc_status {
            Some(value) => value.to_str().ok()?.to_owned(),
            None => {
                // gRPC-Web text is base64, a piece per frame, each padded.
                let text = self.body.split_inclusive(|&b| b == b'=').map(|piece| STANDARD.decode(piece).ok());
                let body = text.collect::<Option<Vec<_>>>().map_or_else(|| self.body.clone(), |pieces| pieces.concat());
                let trailers = web_trailers(&body)?;
                let trailers = String::from_utf8_lossy(&trailers).into_owned();
                trailers.lines().find_map(|line| Some(line.strip_prefix("grpc-status:")?.trim().to_owned()))?
            }
        };
        value.parse().ok()
    }

    /// Connect's error code, from its JSON (a unary error, or a stream's
    /// end); empty when there is none.
    pub(super) fn connect_code(&self) -> &str {
        let body = self.body.as_slice();
        let Some(at) = body.windows(8).position(|window| window == b"\"code\":\"") else { return "" };
        let code = &body[at + 8..];
        std::str::from_utf8(&code[..code.iter().position(|&b| b == b'"').unwrap_or(0)]).unwrap_or("")
    }
}

/// The trailer frame of a gRPC-Web body (flag 0x80), if it has one.
fn web_trailers(mut body: &[u8]) -> Option<Vec<u8>> {
    while let [flags, a, b, c, d, rest @ ..] = body {
        let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        let message = rest.get(..len)?;
        if flags & 0x80 != 0 {
            return Some(message.to_vec());
        }
        body = &rest[len..];
    }
    None
}

/// How many times (a virtual second each) the runtime runs its tasks
/// before the calls in flight are counted.
const SETTLE_ROUNDS: usize = 120;

/// [`dispatch`], with what the request got; none for a request hyper
/// would not have handed on.
pub(super) fn answer(data: &[u8]) -> Option<Answer> {
    let server = &*SERVER;
    let mut input = Input::new(data);
    // A first byte past 127: the secured stack, and an authorization.
    let first = input.byte();
    let (method, content_type) = PROTOCOLS[usize::from(first) % PROTOCOLS.len()];
    let (server, authorization) =
        if first < 128 { (server, None) } else { (&*SECURED, Some(input.byte() % AUTHORIZATIONS)) };
    let path = match server.paths.get(usize::from(input.byte())) {
        Some(path) => (*path).to_owned(),
        None => String::from_utf8_lossy(input.short()).into_owned(),
    };
    let version = if input.byte() & 1 == 1 { Version::HTTP_11 } else { Version::HTTP_2 };
    let fuzzed = headers(&mut input);
    let query = String::from_utf8_lossy(input.short()).into_owned();
    let chunks = input.chunks();
    // What hyper would refuse as a request line never reaches the stack.
    let uri = Uri::try_from(if query.is_empty() { path } else { format!("{path}?{query}") }).ok()?;
    let grpc = content_type.starts_with("application/grpc") && !content_type.contains("web");
    let grpc = grpc && !fuzzed.contains_key(http::header::CONTENT_TYPE);
    let mut request = Request::new(body_of(&chunks));
    *request.method_mut() = Method::from_bytes(method.as_bytes()).unwrap_or_default();
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    if !content_type.is_empty() {
        request.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    request.headers_mut().extend(fuzzed);
    let alice = authorize(request.headers_mut(), authorization);
    let path = request.uri().path().to_owned();
    let answer = server.runtime.block_on(async {
        let Ok(response) = server.stack.clone().oneshot(request).await;
        read(response).await
    });
    if grpc {
        // gRPC's statuses are the trailers' (or a trailers-only answer's),
        // always under HTTP 200.
        let code = answer.code();
        assert!(code.is_some_and(|code| code <= 16), "a gRPC answer's status: {:?}", answer.grpc_status);
        assert_eq!(answer.status, http::StatusCode::OK, "a gRPC answer's HTTP status");
    }
    if authorization.is_some() && !alice {
        // Only health is anyone's; the page is no call.
        let reached = match answer.code() {
            Some(code) => code == 0,
            None => answer.status == http::StatusCode::OK && answer.connect_code().is_empty() && path != "/",
        };
        assert!(!reached || path.starts_with("/grpc.health.v1.Health/"), "a call not allowed was answered: {answer:?}");
    }
    let blamed = matches!(answer.code(), Some(2 | 13)) || ["internal", "unknown"].contains(&answer.connect_code());
    assert!(!blamed, "the server blamed itself for a peer's bytes: {answer:?}");
    // A handler's task may still hold the call's place when its answer has
    // ended (a body read to a reset drops the receiver first): let every
    // task run, the paused clock moving past any deadline, before counting.
    server.runtime.block_on(async {
        for _ in 0..SETTLE_ROUNDS {
            if server.policy.in_flight() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    assert_eq!(server.policy.in_flight(), 0, "a call still holds its place among the calls in flight");
    Some(answer)
}

/// Sets the `authorization` the secured stack's input chose (an index of
/// [`AUTHORIZATIONS`]); whether the call may be alice's.
fn authorize(headers: &mut http::HeaderMap, authorization: Option<u8>) -> bool {
    let key = http::header::AUTHORIZATION;
    match authorization {
        None | Some(6) => {
            let token = BEARERS[0].trim_start_matches("Bearer ");
            headers.get(&key).is_some_and(|value| value.as_bytes().windows(token.len()).any(|w| w == token.as_bytes()))
        }
        Some(0) => {
            headers.remove(&key);
            false
        }
        Some(choice) => {
            let value = HeaderValue::from_str(&BEARERS[usize::from(choice) - 1]).expect("a token is a header value");
            headers.insert(key, value);
            choice == 1
        }
    }
}

/// Reads an answer to its end, never past [`MAX_ANSWER_BYTES`].
async fn read(response: Response<Body>) -> Answer {
    let (parts, mut body) = response.into_parts();
    let mut answer =
        Answer { status: parts.status, grpc_status: parts.headers.get("grpc-status").cloned(), body: Vec::new() };
    while let Some(frame) = body.frame().await {
        // A body that fails is a stream the server resets: that ends it.
        let Ok(frame) = frame else { break };
        match frame.into_data() {
            Ok(data) => {
                answer.body.extend_from_slice(&data);
                assert!(answer.body.len() <= MAX_ANSWER_BYTES, "an answer of more than {MAX_ANSWER_BYTES} bytes");
            }
            Err(frame) => {
                let status = frame.trailers_ref().and_then(|trailers| trailers.get("grpc-status"));
                answer.grpc_status = answer.grpc_status.or_else(|| status.cloned());
            }
        }
    }
    answer
}
