//! Admission control (`--adaptive-concurrency`): calls past the adaptive
//! limit are shed at once with UNAVAILABLE and a message naming the limit,
//! counted on `/metrics` apart from the fixed limit's; and overload does
//! not look like an attack: a client whose calls are cancelled at their
//! deadline while queued keeps its connection. How the limit moves with
//! latency is tested on synthetic windows beside the controller
//! (`src/server/calls/adaptive.rs`).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::common::frames::{
    DATA, END_HEADERS, END_STREAM, End, GOAWAY, HEADERS, RST_STREAM, Raw, frame, grpc_headers, grpc_headers_with,
};
use crate::common::{TestServer, eventually, http};
use search::pb::v1::{ClassifyRequest, SearchRequest};
use search::server::{AdmissionSettings, ServerConfig};

#[tokio::test]
async fn calls_past_the_adaptive_limit_are_shed_with_unavailable_and_counted() {
    // Floor and ceiling 2: the limit cannot move, whatever the latency.
    let admission = Some(AdmissionSettings { floor: 2, ceiling: 2, initial: 2 });
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

#[tokio::test]
async fn calls_cancelled_at_their_deadline_before_the_server_took_them_do_not_close_the_connection() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr).await;
    // What an overloaded server reads from a client whose calls waited past
    // their deadline: in one read, calls it serves and, among them, calls
    // opened and cancelled (CANCEL) before the server took them. h2's own
    // guard closes a connection with more than 20 of those waiting; here
    // 150 in each of 5 reads, 750 in all, under half of the 1,750 streams,
    // and none of them reset after the server took it.
    const ROUND: usize = 350;
    let mut next = 1u32;
    for round in 0..5 {
        let mut bytes = Vec::new();
        let mut served = Vec::new();
        for i in 0..ROUND {
            let stream = next;
            next += 2;
            if i % 7 < 3 {
                let headers = grpc_headers_with(SEARCH, &[("grpc-timeout", "1m")]);
                bytes.extend(frame(HEADERS, END_HEADERS, stream, &headers));
                bytes.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
            } else {
                bytes.extend(frame(HEADERS, END_HEADERS, stream, &grpc_headers(SEARCH)));
                bytes.extend(frame(DATA, END_STREAM, stream, &envelope(BANANA)));
                served.push(stream);
            }
        }
        raw.send(&bytes).await.expect("the round");
        let mut answered = 0;
        while answered < served.len() {
            let f = raw.next(Duration::from_secs(10)).await.unwrap_or_else(|| panic!("round {round}: the answers"));
            assert_ne!(f.kind, GOAWAY, "round {round}: a GOAWAY after {answered} answers: {:?}", raw.goaway());
            if f.kind == HEADERS && f.flags & END_STREAM != 0 && served.contains(&f.stream) {
                answered += 1;
            }
        }
    }
    let (end, _) = raw.end(Duration::from_millis(300)).await;
    assert_eq!(end, End::Open, "the connection serves on");
    server.stop().await;
}

#[tokio::test]
async fn calls_shed_before_their_message_arrived_close_cleanly_and_keep_the_connection() {
    // Limit 1, taken by a Classify the handler holds open: every Search is
    // shed, answered as soon as its headers are read.
    let admission = Some(AdmissionSettings { floor: 1, ceiling: 1, initial: 1 });
    let server = TestServer::start_with("127.0.0.1:0", ServerConfig { admission, ..ServerConfig::default() }).await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(&frame(HEADERS, END_HEADERS, 1, &grpc_headers(CLASSIFY))).await.expect("the held call");
    loop {
        let f = raw.next(Duration::from_secs(10)).await.expect("the held call's headers");
        assert!(f.kind != RST_STREAM && f.kind != GOAWAY, "the held call: {f:?}");
        if (f.kind, f.stream) == (HEADERS, 1) {
            break;
        }
    }
    // What a client's message meets when the server answers first: it is
    // on its way. Rounds of 50 calls, each message sent once its call was
    // shed, 1,200 in all: h2 would reset each stream as answered, then
    // reset it again for its message once forgotten, and close the
    // connection at the 1,024th of those.
    const ROUND: usize = 50;
    let mut next = 3u32;
    for round in 0..24 {
        let streams: Vec<u32> = (next..).step_by(2).take(ROUND).collect();
        next += 2 * ROUND as u32;
        let opened: Vec<u8> =
            streams.iter().flat_map(|&stream| frame(HEADERS, END_HEADERS, stream, &grpc_headers(SEARCH))).collect();
        raw.send(&opened).await.expect("the round's calls");
        let mut shed = 0;
        while shed < ROUND {
            let f = raw.next(Duration::from_secs(10)).await.unwrap_or_else(|| panic!("round {round}: the answers"));
            assert!(f.kind != RST_STREAM && f.kind != GOAWAY, "round {round}, after {shed} answers: {f:?}");
            if f.kind == HEADERS && f.flags & END_STREAM != 0 && streams.contains(&f.stream) {
                shed += 1;
            }
        }
        let messages: Vec<u8> =
            streams.iter().flat_map(|&stream| frame(DATA, END_STREAM, stream, &envelope(BANANA))).collect();
        raw.send(&messages).await.expect("the round's messages");
    }
    let (end, after) = raw.end(Duration::from_millis(300)).await;
    assert_eq!(end, End::Open, "the connection serves on");
    assert!(after.iter().all(|f| f.kind != RST_STREAM), "{after:?}");
    // Closed, so that the held call does not hold the drain to its grace.
    drop(raw);
    server.stop().await;
}

/// A Search for "banana", as a gRPC message.
const BANANA: &[u8] = &[0x0a, 0x06, b'b', b'a', b'n', b'a', b'n', b'a'];
const SEARCH: &str = "/search.v1.SearchService/Search";
const CLASSIFY: &str = "/search.v1.SearchService/Classify";
const CANCEL: u32 = 0x8;

/// `message` in its 5-byte gRPC envelope.
fn envelope(message: &[u8]) -> Vec<u8> {
    let mut body = vec![0];
    body.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    body.extend_from_slice(message);
    body
}
