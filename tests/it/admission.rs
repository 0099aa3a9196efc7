//! Admission control (`--adaptive-concurrency`): calls past the adaptive
//! limit are shed at once with UNAVAILABLE and a message naming the limit,
//! counted on `/metrics` apart from the fixed limit's; and overload does
//! not look like an attack: a client whose calls are cancelled at their
//! deadline while queued keeps its connection. How the limit moves with
//! latency is tested on synthetic windows beside the controller
//! (`src/server/calls/adaptive.rs`).

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::common::{TestServer, eventually, http};
use search::pb::v1::{ClassifyRequest, SearchRequest};
use search::server::{AdmissionSettings, ServerConfig};

#[tokio::test]
async fn calls_past_the_adaptive_limit_are_shed_with_unavailable_and_counted() {
    // Floor and ceiling 2: the limit cannot move, whatever the latency.
    let admission = Some(AdmissionSettings { floor: 2, ceiling: 2 });
    let config = ServerConfig { admission, metrics_listen: Some("127.0.0.1:0".into()), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let client = server.client().await;
    // Two Classify calls held open (the handler waits for their queries):
    // the slow calls that fill the limit.
    let mut held = Vec::new();
    for _ in 0..2 {
        let (tx, rx) = mpsc::channel::<ClassifyRequest>(1);
        held.push((tx, client.classify(ReceiverStream::new(rx)).await.expect("admitted")));
    }
    // Classify is never retried: each refusal is the server's own answer.
    for _ in 0..3 {
        let (_tx, rx) = mpsc::channel::<ClassifyRequest>(1);
        let refused = client.classify(ReceiverStream::new(rx)).await.expect_err("over the adaptive limit");
        let search::client::Error::Rpc(status) = refused else { panic!("{refused:?}") };
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("adaptive limit of 2 calls in flight (--adaptive-concurrency)"),
            "{status:?}"
        );
    }
    let samples = http::scrape(server.handle.metrics_addr().expect("metrics on")).await;
    assert_eq!(samples.get("search_server_adaptive_limit"), Some(&2.0));
    assert_eq!(samples.get("search_server_adaptive_shed_total"), Some(&3.0));
    assert_eq!(samples.get("search_server_calls_shed_total"), Some(&0.0), "the fixed limit shed nothing");
    drop(held);
    eventually("the held calls end", || server.handle.in_flight() == 0).await;
    assert_eq!(client.search(SearchRequest { query: "Banana".into() }).await.expect("room again").status, 1);
    server.stop().await;
}

#[tokio::test]
async fn without_the_flag_there_is_no_adaptive_limit() {
    let config = ServerConfig { metrics_listen: Some("127.0.0.1:0".into()), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    assert_eq!(server.answered().await, 1);
    let samples = http::scrape(server.handle.metrics_addr().expect("metrics on")).await;
    assert!(!samples.contains_key("search_server_adaptive_limit"));
    assert!(samples.contains_key("search_server_calls_shed_total"));
    server.stop().await;
}
