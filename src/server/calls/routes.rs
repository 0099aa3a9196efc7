//! The one dispatch below the per-call layer: the Search call (and the
//! article's path) goes to its direct unary path (`unary.rs`), the Search
//! service's streaming calls to `streaming.rs`, any other gRPC path to the
//! generated service that serves it (health, reflection, a service the
//! program added), by its service name.
//! Every served method is known from the descriptor sets (`method_table.rs`), so
//! a path that names none is answered UNIMPLEMENTED with what was asked for.
//!
//! tonic's own router (`tonic::service::Routes`, its `router` feature,
//! checked) dispatches the same paths through axum: a route match and a
//! clone of the boxed service on every call, and an unknown path answered
//! UNIMPLEMENTED with no message. One comparison of the service name here
//! costs less per call (callgrind) and says what was asked for.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;
use tower::util::BoxCloneSyncService;

use super::handlers::Search;
use super::{streaming, unary};
use crate::pb::v1::search_service_server::SearchServiceServer;
use crate::rpc::{LEGACY_SEARCH_PATH, SEARCH_PATH};
use crate::server::added::{AddedServices, Boxed};
use crate::server::method_table::MethodTable;
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
    /// The other services, by their names: shared by every connection's
    /// stack, and each call clones the one it takes.
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
    /// bytes, and the `services` a program added, routed as `served` says.
    pub(in crate::server) fn new(limit: usize, table: &'static MethodTable, services: &AddedServices) -> Self {
        let others = services.list.iter().map(|added| (added.name, added.service.clone())).collect();
        Self { limit, table, others }
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
}

impl Service<Request<Body>> for Routes {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = CallFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Generated services, and the boxes around them, are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> CallFuture {
        let path = request.uri().path();
        let Some(path) = self.table.path(path) else {
            return answered(Status::unimplemented(format!("no method {path} on this server")).into_http());
        };
        // The article's path has the same messages on the wire.
        if path == SEARCH_PATH || path == LEGACY_SEARCH_PATH {
            return Box::pin(unary::search(request, self.limit));
        }
        let (service, method) = path[1..].split_once('/').unwrap_or_default();
        if service == SEARCH_SERVICE {
            return streaming::call(method, request, self.limit);
        }
        match self.others.iter().find(|(name, _)| *name == service) {
            Some((_, other)) => other.clone().call(request),
            // Every served path's service is added (start() adds them all).
            None => answered(Status::unimplemented(format!("no service {service} on this server")).into_http()),
        }
    }
}
