//! The client's production behaviour against servers that misbehave on
//! purpose: retries (only of what the contract marks safe, never past the
//! deadline, within a budget), deadlines, wait-for-ready, a restarting
//! server, and the connectivity states.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::common::TestServer;
use search::client::{Backoff, RetryThrottle};
use search::client::{Client, ClientOptions, ConnectivityState, Error, Target};
use search::pb::v1::search_service_server::{SearchService, SearchServiceServer};
use search::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot};
use tonic::{Code, Request, Response, Status, Streaming};

/// A server that fails the first `failures` calls of every method with
/// UNAVAILABLE (all calls, when `failures` is `u32::MAX`), or answers after
/// `delay`; it counts attempts and records the deadlines it was sent.
#[derive(Clone, Default)]
struct Flaky {
    failures: u32,
    delay: Duration,
    attempts: Arc<AtomicU32>,
    timeouts: Arc<Mutex<Vec<String>>>,
}

impl Flaky {
    async fn attempt(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(timeout) = metadata.get("grpc-timeout").and_then(|v| v.to_str().ok()) {
            self.timeouts.lock().await.push(timeout.to_owned());
        }
        tokio::time::sleep(self.delay).await;
        if n < self.failures { Err(Status::unavailable(format!("attempt {} fails on purpose", n + 1))) } else { Ok(()) }
    }
}

type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl SearchService for Flaky {
    async fn search(&self, request: Request<SearchRequest>) -> Result<Response<SearchResponse>, Status> {
        self.attempt(request.metadata()).await?;
        Ok(Response::new(SearchResponse { status: search::matcher::status(&request.get_ref().query) }))
    }

    type ClassifyStream = Stream<ClassifyResponse>;

    async fn classify(
        &self,
        request: Request<Streaming<ClassifyRequest>>,
    ) -> Result<Response<Self::ClassifyStream>, Status> {
        self.attempt(request.metadata()).await?;
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    async fn count(&self, request: Request<Streaming<CountRequest>>) -> Result<Response<CountResponse>, Status> {
        self.attempt(request.metadata()).await?;
        Ok(Response::new(CountResponse::default()))
    }

    type ScanStream = Stream<ScanResponse>;

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<Self::ScanStream>, Status> {
        self.attempt(request.metadata()).await?;
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }
}

/// Serves `flaky` on a free port until the returned sender is dropped.
async fn serve(flaky: Flaky) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        tonic::transport::Server::builder().add_service(SearchServiceServer::new(flaky)).serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            async {
                let _ = stopped.await;
            },
        ),
    );
    (addr, stop)
}

fn target(addr: SocketAddr) -> Target {
    addr.to_string().parse().expect("valid target")
}

/// Options with quick retries, so tests take milliseconds: the retry policy,
/// not hedging (gray.rs has those).
fn quick(timeout: Duration) -> ClientOptions {
    ClientOptions {
        timeout,
        backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(5), 2.0).expect("valid"),
        hedging: None,
        ..ClientOptions::default()
    }
}

fn banana() -> SearchRequest {
    SearchRequest { query: "Banana".into() }
}

#[tokio::test]
async fn a_safe_call_is_retried_until_it_succeeds() {
    let flaky = Flaky { failures: 3, ..Flaky::default() };
    let (addr, _stop) = serve(flaky.clone()).await;
    let client = Client::new(&target(addr), quick(Duration::from_secs(10))).expect("client");
    let response = client.search(banana()).await.expect("succeeds on the 4th attempt");
    assert_eq!(response.status, 1);
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_hedged_call_is_retried_too_when_its_server_fails() {
    // Hedging on (the default) and one server: no other subchannel to hedge
    // to, so the failures are retried after a backoff, as without hedging.
    let flaky = Flaky { failures: 3, ..Flaky::default() };
    let (addr, _stop) = serve(flaky.clone()).await;
    let options = ClientOptions { hedging: ClientOptions::default().hedging, ..quick(Duration::from_secs(10)) };
    let client = Client::new(&target(addr), options).expect("client");
    let response = client.search(banana()).await.expect("succeeds on the 4th attempt");
    assert_eq!(response.status, 1);
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 4);
    assert_eq!(client.stats().hedges, 0, "nowhere to hedge to");
}

#[tokio::test]
async fn retries_stop_after_the_attempts_allowed() {
    let flaky = Flaky { failures: u32::MAX, ..Flaky::default() };
    let (addr, _stop) = serve(flaky.clone()).await;
    let options = ClientOptions { max_attempts: 3, ..quick(Duration::from_secs(10)) };
    let client = Client::new(&target(addr), options).expect("client");
    let err = client.search(banana()).await.expect_err("always UNAVAILABLE");
    assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
    assert_eq!(err.to_string(), "UNAVAILABLE: attempt 3 fails on purpose");
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn calls_the_contract_does_not_mark_safe_are_never_retried() {
    let flaky = Flaky { failures: 1, ..Flaky::default() };
    let (addr, _stop) = serve(flaky.clone()).await;
    let client = Client::new(&target(addr), quick(Duration::from_secs(10))).expect("client");

    let err =
        client.count(tokio_stream::iter(vec![CountRequest::default()])).await.expect_err("fails once, not retried");
    assert_eq!(err.code(), Some(Code::Unavailable));
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 1);

    let flaky = Flaky { failures: 1, ..Flaky::default() };
    let (addr, _stop) = serve(flaky.clone()).await;
    let client = Client::new(&target(addr), quick(Duration::from_secs(10))).expect("client");
    let err = client.scan(ScanRequest::default()).await.expect_err("fails once, not retried");
    assert_eq!(err.code(), Some(Code::Unavailable));
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let flaky = Flaky { failures: u32::MAX, ..Flaky::default() };
    let (addr, _stop) = serve(flaky.clone()).await;
    let options = ClientOptions {
        max_attempts: 1000,
        // A budget that never runs out: only the deadline can stop this.
        retry_budget: RetryThrottle { max_tokens: 1e6, token_ratio: 0.1 },
        backoff: Backoff::new(Duration::from_millis(40), Duration::from_millis(40), 1.0).expect("valid"),
        ..quick(Duration::from_millis(300))
    };
    let client = Client::new(&target(addr), options).expect("client");
    let err = client.search(banana()).await.expect_err("the deadline ends it");
    let Error::DeadlineExceeded { timeout, attempts, last } = &err else { panic!("{err:?}") };
    assert_eq!(*timeout, Duration::from_millis(300));
    assert!(*attempts >= 2 && *attempts < 1000, "{attempts} attempts");
    assert_eq!(last.as_deref().map(|l| l.starts_with("UNAVAILABLE: attempt")), Some(true), "{last:?}");
    assert!(err.to_string().starts_with("DEADLINE_EXCEEDED: no answer within the 300ms deadline ("), "{err}");
    // The server saw the client's attempts and none more; the last one may
    // have been cut by the deadline before it arrived.
    let served = flaky.attempts.load(Ordering::SeqCst);
    assert!(served == *attempts || served + 1 == *attempts, "server saw {served}, client made {attempts}");
}

#[tokio::test]
async fn the_retry_budget_stops_a_retry_storm_against_a_dead_server() {
    let flaky = Flaky { failures: u32::MAX, ..Flaky::default() };
    let (addr, _stop) = serve(flaky.clone()).await;
    let client = Client::new(&target(addr), quick(Duration::from_secs(10))).expect("client");
    for _ in 0..10 {
        let err = client.search(banana()).await.expect_err("always UNAVAILABLE");
        assert_eq!(err.code(), Some(Code::Unavailable));
    }
    // 10 tokens, one per failure, retries while more than 5 remain: the
    // first call makes 5 attempts, the other nine one each. Without the
    // budget, 10 calls of 5 attempts would be 50.
    assert_eq!(flaky.attempts.load(Ordering::SeqCst), 14);
}

#[tokio::test]
async fn every_call_carries_its_deadline_and_a_slow_server_gets_deadline_exceeded() {
    let flaky = Flaky { delay: Duration::from_secs(30), ..Flaky::default() };
    let (addr, _stop) = serve(flaky.clone()).await;
    let client = Client::new(&target(addr), quick(Duration::from_millis(200))).expect("client");
    let err = client.search(banana()).await.expect_err("too slow");
    assert_eq!(err.to_string(), "DEADLINE_EXCEEDED: no answer within the 200ms deadline");
    assert_eq!(err.code(), Some(Code::DeadlineExceeded));
    let err = client.count(tokio_stream::pending()).await.expect_err("too slow");
    assert_eq!(err.code(), Some(Code::DeadlineExceeded));
    let timeouts = flaky.timeouts.lock().await.clone();
    assert_eq!(timeouts.len(), 2, "both calls sent grpc-timeout: {timeouts:?}");
    for timeout in timeouts {
        let millis: u64 = timeout.trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse().expect("digits");
        assert!(timeout.ends_with('m') || timeout.ends_with('u'), "{timeout}");
        assert!(millis > 0, "{timeout}");
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_at_once_unless_asked_to_wait() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let target: Target = format!("127.0.0.1:{port}").parse().expect("valid");
    let client = Client::new(&target, quick(Duration::from_secs(10))).expect("client");
    let err = client.count(tokio_stream::empty()).await.expect_err("nothing listens");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("cannot connect to 127.0.0.1:{port}: Connection refused")), "{err}");

    // With wait-for-ready the same calls wait for the server to come up.
    let options = ClientOptions { wait_for_ready: true, ..quick(Duration::from_secs(20)) };
    let waiting = Client::new(&target, options).expect("client");
    let search = tokio::spawn({
        let waiting = waiting.clone();
        async move { waiting.search(banana()).await }
    });
    let count = tokio::spawn({
        let waiting = waiting.clone();
        async move { waiting.count(tokio_stream::iter(vec![CountRequest { queries: vec!["banana".into()] }])).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!search.is_finished() && !count.is_finished(), "both wait for the server");
    let server = TestServer::start_on(&format!("127.0.0.1:{port}")).await;
    assert_eq!(search.await.expect("join").expect("served once up").status, 1);
    assert_eq!(count.await.expect("join").expect("served once up").matches, 1);
    drop(waiting);
    server.stop().await;
}

#[tokio::test]
async fn wait_for_ready_still_ends_at_the_deadline() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let target: Target = format!("127.0.0.1:{port}").parse().expect("valid");
    let options = ClientOptions { wait_for_ready: true, ..quick(Duration::from_millis(300)) };
    let client = Client::new(&target, options).expect("client");
    let err = client.scan(ScanRequest::default()).await.expect_err("never comes up");
    let Error::DeadlineExceeded { last, .. } = &err else { panic!("{err:?}") };
    assert!(last.as_deref().is_some_and(|l| l.contains("Connection refused")), "{err}");
}

#[tokio::test]
async fn the_client_keeps_working_across_a_server_restart() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let client = Client::new(&target(addr), quick(Duration::from_secs(10))).expect("client");
    assert_eq!(client.search(banana()).await.expect("first server").status, 1);
    server.stop().await;
    let again = TestServer::start_on(&addr.to_string()).await;
    assert_eq!(client.search(banana()).await.expect("second server, same port").status, 1);
    assert_eq!(client.count(tokio_stream::empty()).await.expect("streams too").queries, 0);
    drop(client);
    again.stop().await;
}

#[tokio::test]
async fn connectivity_goes_through_the_grpc_states() {
    let server = TestServer::start().await;
    let client = Client::new(&server.target(), quick(Duration::from_secs(10))).expect("client");
    assert_eq!(client.state(false), ConnectivityState::Idle, "nothing dialed before the first call");

    // Every transition, in order; wait_for_state_change (below and in the
    // watcher) reports the state when it looks, as grpc's does.
    let mut transitions = client.connectivity().transitions();
    let watcher = tokio::spawn({
        let client = client.clone();
        async move {
            let mut last = ConnectivityState::Idle;
            while last != ConnectivityState::Shutdown {
                last = client.wait_for_state_change(last).await;
            }
        }
    });
    // get_state(try_to_connect = true) starts connecting an idle channel.
    assert_eq!(client.state(true), ConnectivityState::Idle);
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        let mut state = client.state(false);
        while state != ConnectivityState::Ready {
            state = client.wait_for_state_change(state).await;
        }
    });
    ready.await.expect("READY without any call of ours");
    assert_eq!(client.search(banana()).await.expect("a call").status, 1);

    let addr = server.addr;
    server.stop().await;
    let idle = tokio::time::timeout(Duration::from_secs(10), async {
        while client.state(false) != ConnectivityState::Idle {
            client.wait_for_state_change(ConnectivityState::Ready).await;
        }
    });
    idle.await.expect("IDLE once the server closed the connection");
    let options = ClientOptions { max_attempts: 1, ..quick(Duration::from_secs(10)) };
    let refused = Client::new(&target(addr), options).expect("client");
    assert!(matches!(refused.search(banana()).await, Err(Error::Connect { .. })));
    assert_eq!(refused.state(false), ConnectivityState::TransientFailure);

    client.shutdown();
    assert!(matches!(client.search(banana()).await, Err(Error::Shutdown)));
    watcher.await.expect("the watcher ends at SHUTDOWN");
    let mut seen = Vec::new();
    while let Ok(transition) = transitions.try_recv() {
        seen.push(transition);
    }
    use ConnectivityState::{Connecting, Idle, Ready, Shutdown};
    assert_eq!(seen, [(Idle, Connecting), (Connecting, Ready), (Ready, Idle), (Idle, Shutdown)]);
}

#[tokio::test]
async fn a_dial_that_hangs_gives_up_at_the_connect_timeout() {
    // A listener whose accept queue is full: the kernel drops further SYNs,
    // so a dial neither succeeds nor fails until it times out.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.bind(&"127.0.0.1:0".parse::<SocketAddr>().expect("addr").into()).expect("bind");
    socket.listen(0).expect("listen");
    let addr = socket.local_addr().expect("addr").as_socket().expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        // Each connect that completes takes a place in the queue; stop once they hang.
        match tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    let options = ClientOptions {
        connect_timeout: Duration::from_millis(300),
        max_attempts: 1,
        ..quick(Duration::from_secs(20))
    };
    let client = Client::new(&target(addr), options).expect("client");
    let err = client.search(banana()).await.expect_err("the dial hangs");
    assert_eq!(err.to_string(), format!("cannot connect to {addr}: no connection within the 300ms connect timeout"));
    drop((fillers, socket));
}
