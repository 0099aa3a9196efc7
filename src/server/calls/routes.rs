//! The one dispatch below the per-call layer: the Search call (and the
//! article's path) goes to its direct unary path (`unary.rs`), the Search
//! service's streaming calls to `streaming.rs`, any other gRPC path to the
//! generated service that serves it, by its service name: health,
//! reflection, a service the program added, and the generated Search server
//! itself for a method of the contract without a path of its own. So a
//! method added to the proto is routed as soon as the generated trait's
//! method is written in `handlers.rs` (which does not compile until it is),
//! never answered UNIMPLEMENTED; `docs/adding-an-rpc.md` is the recipe.
//! Every served method is known from the descriptor sets (`method_table.rs`),
//! so a path that names none is refused by the per-call layer (`layer.rs`),
//! UNIMPLEMENTED with what was asked for, before it gets here.
//!
//! tonic's own router (`tonic::service::Routes`, its `router` feature,
//! checked) dispatches the same paths through axum: a route match and a
//! clone of the boxed service on every call, and an unknown path answered
//! UNIMPLEMENTED with no message. One comparison of the service name here
//! costs less per call (callgrind) and says what was asked for.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;
use tower::util::BoxCloneSyncService;

use super::handlers::Search;
use super::streaming::Streaming;
use super::unary;
use crate::pb::v1::search_service_server::SearchServiceServer;
use crate::rpc::{LEGACY_SEARCH_PATH, SEARCH_PATH};
use crate::server::added::{AddedServices, Boxed};
use crate::server::method_table::MethodTable;
use crate::server::protocols::compression::ENCODINGS;
use crate::server::protocols::{CallFuture, answered};

/// The Search service's name, as its paths start.
const SEARCH_SERVICE: &str = <SearchServiceServer<Search> as NamedService>::NAME;

/// The services, each under its name: see the module documentation.
#[derive(Clone)]
pub(in crate::server) struct Routes {
    /// The largest request message, for the Search service's calls.
    limit: usize,
    /// Every path served, and which belong to added services.
    table: &'static MethodTable,
    /// The generated services, by their names: the Search service's own
    /// (for its methods without a path of their own), the added ones, and
    /// those of [`Routes::add`]. Shared by every connection's stack, and
    /// each call clones the one it takes.
    others: Arc<[(&'static str, Boxed)]>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.others.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Routes").field("search", &SEARCH_SERVICE).field("others", &names).finish()
    }
}

impl Routes {
    /// The Search service, whose request messages are at most `limit`
    /// bytes, and the `services` a program added, routed as `table` says.
    pub(in crate::server) fn new(limit: usize, table: &'static MethodTable, services: &AddedServices) -> Self {
        // The generated server takes every encoding the server has, and the
        // same size limit; its answers are compressed by the per-call layer.
        let generated = ENCODINGS
            .iter()
            .fold(SearchServiceServer::new(Search), |server, encoding| server.accept_compressed(encoding.tonic()))
            .max_decoding_message_size(limit);
        let search = (SEARCH_SERVICE, BoxCloneSyncService::new(generated));
        let added = services.list.iter().map(|added| (added.name, added.service.clone()));
        Self { limit, table, others: std::iter::once(search).chain(added).collect() }
    }

    /// The table of what is served.
    pub(in crate::server) fn table(&self) -> &'static MethodTable {
        self.table
    }

    /// Adds `service` under its name.
    pub(in crate::server) fn add<S>(mut self, service: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + NamedService,
        S: Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        let mut others = self.others.to_vec();
        others.push((S::NAME, BoxCloneSyncService::new(service)));
        self.others = others.into();
        self
    }

    /// The call of `path`, a path the table serves (as [`MethodTable::path`]
    /// gives it; the call layer refuses the others before it takes a slot).
    pub(in crate::server) fn route(&self, request: Request<Body>, path: &'static str) -> CallFuture {
        // The article's path has the same messages on the wire.
        if path == SEARCH_PATH || path == LEGACY_SEARCH_PATH {
            return Box::pin(unary::search(request, self.limit));
        }
        let (service, method) = path[1..].split_once('/').unwrap_or_default();
        if service == SEARCH_SERVICE
            && let Some(streaming) = Streaming::named(method)
        {
            return streaming.call(request, self.limit);
        }
        match self.others.iter().find(|(name, _)| *name == service) {
            Some((_, other)) => other.clone().call(request),
            // Every served path's service is added (start() adds them all).
            None => answered(Status::unimplemented(format!("no service {service} on this server")).into_http()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper::client::conn::http2::SendRequest;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tonic::Code;

    use crate::pb::v1::FILE_DESCRIPTOR_SET;
    use crate::server::protocols::envelope::encode;
    use crate::server::{Listeners, ServerConfig, start};

    /// One call of `path` with `body` as `content_type`: the HTTP status,
    /// the `grpc-status` (from the trailers, or the headers of a
    /// trailers-only answer), and the body.
    async fn call(
        h2: &mut SendRequest<Full<Bytes>>,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> (StatusCode, Option<i32>, String) {
        let request = Request::post(format!("http://localhost{path}"))
            .header("content-type", content_type)
            .header("te", "trailers")
            .body(Full::new(body))
            .expect("a request");
        let response = h2.send_request(request).await.expect("an answer");
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.expect("the whole body");
        let grpc_status = collected
            .trailers()
            .and_then(|trailers| trailers.get("grpc-status"))
            .or_else(|| parts.headers.get("grpc-status"))
            .and_then(|value| value.to_str().ok()?.parse().ok());
        (parts.status, grpc_status, String::from_utf8_lossy(&collected.to_bytes()).into_owned())
    }

    /// Every method the contract declares answers on the real server, over
    /// gRPC and over Connect with JSON, and none answers UNIMPLEMENTED: read
    /// from the descriptor, so a method added to the proto is called here
    /// too (tools/check_recipe.sh adds one and runs this).
    #[tokio::test]
    async fn every_method_of_the_contract_answers_on_the_real_server() {
        let listeners = Listeners::bind("127.0.0.1:0").await.expect("bind");
        let addr = listeners.local_addrs().expect("the address")[0];
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let (serving, _handle) = start(listeners, ServerConfig::default(), shutdown).await.expect("start");
        let server = tokio::spawn(serving);
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let io = TokioIo::new(tcp);
        let (mut h2, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.expect("h2");
        tokio::spawn(connection);

        let methods = crate::rpc::methods(FILE_DESCRIPTOR_SET);
        assert!(methods.len() >= 4, "the contract's methods: {methods:?}");
        let unimplemented = Code::Unimplemented as i32;
        for method in &methods {
            let path = &method.path;
            // One empty message: the default of any message type.
            let (status, code, body) = call(&mut h2, path, "application/grpc", encode(0, b"")).await;
            assert_eq!(status, StatusCode::OK, "{path} over gRPC: {body}");
            assert!(code.is_some_and(|code| code != unimplemented), "{path} over gRPC: grpc-status {code:?}");
            // Connect with JSON, as the web page and curl call it: routed,
            // and the messages have their JSON view (else 415).
            let (content_type, body) = if method.client_streaming || method.server_streaming {
                ("application/connect+json", encode(0, b"{}"))
            } else {
                ("application/json", Bytes::from_static(b"{}"))
            };
            let (status, _, body) = call(&mut h2, path, content_type, body).await;
            assert_eq!(status, StatusCode::OK, "{path} over Connect: {body}");
            assert!(!body.contains("unimplemented"), "{path} over Connect: {body}");
        }
        drop(h2);
        let _ = stop.send(());
        server.await.expect("the server ran").expect("the server stopped cleanly");
    }
}
