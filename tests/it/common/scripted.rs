//! A Search server whose every answer the test decides, served by tonic's
//! own transport (not the project's server): for failures on purpose, for a
//! server whose health the test turns NOT_SERVING and back, and for one
//! that records the `authorization` header of every request it gets.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use search::pb::v1::search_service_server::{SearchService, SearchServiceServer};
use search::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};
use tonic_health::server::HealthReporter;
use tower::util::MapRequestLayer;

/// How call number `n` (from 0) is answered.
pub type Script = fn(u64) -> Result<SearchResponse, Status>;

/// Answers every Search with `status=1`.
pub fn always_ok(_: u64) -> Result<SearchResponse, Status> {
    Ok(SearchResponse { status: 1 })
}

/// Fails every Search with UNAVAILABLE.
pub fn always_unavailable(_: u64) -> Result<SearchResponse, Status> {
    Err(Status::unavailable("down on purpose"))
}

/// Fails the first Search with UNAVAILABLE, answers the others.
pub fn unavailable_first(n: u64) -> Result<SearchResponse, Status> {
    if n == 0 { always_unavailable(n) } else { always_ok(n) }
}

/// Refuses every Search's credentials.
pub fn always_unauthenticated(_: u64) -> Result<SearchResponse, Status> {
    Err(Status::unauthenticated("token expired"))
}

/// Refuses every Search by policy.
pub fn always_permission_denied(_: u64) -> Result<SearchResponse, Status> {
    Err(Status::permission_denied("no rule allows this caller"))
}

/// What a request carried: its path, its `authorization` and its
/// `grpc-timeout` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub timeout: Option<String>,
}

/// The Search service answering as its script says (or never, when it
/// holds every Search), counting calls.
#[derive(Clone)]
pub struct Scripted {
    pub calls: Arc<AtomicU64>,
    script: Script,
    hold: bool,
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl SearchService for Scripted {
    async fn search(&self, _: Request<SearchRequest>) -> Result<Response<SearchResponse>, Status> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hold {
            std::future::pending::<()>().await;
        }
        (self.script)(n).map(Response::new)
    }

    type ClassifyStream = Stream<ClassifyResponse>;

    async fn classify(&self, _: Request<Streaming<ClassifyRequest>>) -> Result<Response<Self::ClassifyStream>, Status> {
        Err(Status::unimplemented("not here"))
    }

    async fn count(&self, _: Request<Streaming<CountRequest>>) -> Result<Response<CountResponse>, Status> {
        Err(Status::unimplemented("not here"))
    }

    type ScanStream = Stream<ScanResponse>;

    async fn scan(&self, _: Request<ScanRequest>) -> Result<Response<Self::ScanStream>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

/// A running scripted server.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicU64>,
    /// Every request it got, health watches included, in order.
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Its health service, when it has one.
    pub health: Option<HealthReporter>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl ScriptedServer {
    /// Serves `script` on a free port, with the health service (SERVING)
    /// when `with_health`.
    pub async fn start(script: Script, with_health: bool) -> Self {
        Self::serve(Scripted { calls: Arc::default(), script, hold: false }, with_health).await
    }

    /// Serves Search calls that are never answered, without health.
    pub async fn start_holding() -> Self {
        Self::serve(Scripted { calls: Arc::default(), script: always_ok, hold: true }, false).await
    }

    async fn serve(scripted: Scripted, with_health: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let service = SearchServiceServer::new(scripted.clone());
        let seen = Arc::<Mutex<Vec<Seen>>>::default();
        let record = Arc::clone(&seen);
        let layer = MapRequestLayer::new(move |request: http::Request<tonic::body::Body>| {
            let header = |name: &str| request.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into());
            let (authorization, timeout) = (header("authorization"), header("grpc-timeout"));
            let path = request.uri().path().to_owned();
            record.lock().expect("seen").push(Seen { path, authorization, timeout });
            request
        });
        let mut builder = tonic::transport::Server::builder().layer(layer);
        let (health, task) = if with_health {
            let (reporter, health) = tonic_health::server::health_reporter();
            reporter.set_serving::<SearchServiceServer<Scripted>>().await;
            let router = builder.add_service(health).add_service(service);
            (Some(reporter), tokio::spawn(router.serve_with_incoming(incoming)))
        } else {
            let router = builder.add_service(service);
            (None, tokio::spawn(router.serve_with_incoming(incoming)))
        };
        Self { addr, calls: scripted.calls, seen, health, task }
    }

    /// The `authorization` header of every request it got for `path`.
    pub fn authorizations(&self, path: &str) -> Vec<Option<String>> {
        let seen = self.seen.lock().expect("seen");
        seen.iter().filter(|seen| seen.path == path).map(|seen| seen.authorization.clone()).collect()
    }

    /// The `grpc-timeout` header of every request it got for `path`.
    pub fn timeouts(&self, path: &str) -> Vec<Option<String>> {
        let seen = self.seen.lock().expect("seen");
        seen.iter().filter(|seen| seen.path == path).map(|seen| seen.timeout.clone()).collect()
    }

    /// Calls it has answered.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Turns the Search service's health NOT_SERVING (`false`) or SERVING.
    pub async fn set_serving(&self, serving: bool) {
        let health = self.health.as_ref().expect("a server with the health service");
        if serving {
            health.set_serving::<SearchServiceServer<Scripted>>().await;
        } else {
            health.set_not_serving::<SearchServiceServer<Scripted>>().await;
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
