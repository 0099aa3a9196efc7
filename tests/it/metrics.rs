//! `/metrics` on `--metrics-listen`: known calls made, the scraped counts
//! add up exactly, per method, protocol and status, messages and bytes.

use crate::common;

use std::collections::HashMap;

use crate::common::TestServer;
use crate::common::http::{request, send};
use bytes::Bytes;
use http::Version;
use http_body_util::Full;
use prost::Message;
use search::pb::v1::{ClassifyRequest, CountRequest, ScanRequest, SearchRequest, SearchResponse};
use search::server::ServerConfig;

/// The scraped samples of `server`.
async fn scrape(server: &TestServer) -> HashMap<String, f64> {
    common::http::scrape(server.handle.metrics_addr().expect("metrics on")).await
}

fn sample(samples: &HashMap<String, f64>, name: &str) -> f64 {
    *samples.get(name).unwrap_or_else(|| {
        let mut names: Vec<&String> = samples.keys().collect();
        names.sort();
        panic!("no {name} among {names:#?}")
    })
}

/// One gRPC message frame's bytes on the wire.
fn framed(message: &impl Message) -> f64 {
    f64::from(u32::try_from(5 + message.encoded_len()).expect("small"))
}

#[tokio::test]
async fn scraped_counts_add_up_to_the_calls_made() {
    let config = ServerConfig { metrics_listen: Some("127.0.0.1:0".into()), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let client = server.client().await;
    // Connecting makes no call: the connection is up once the server has
    // spoken HTTP/2.
    let (mut received, mut sent) = (0.0, 0.0);
    let (mut messages_in, mut messages_out) = (0.0, 0.0);

    for query in ["banana", "Banana split", "apple"] {
        let request = SearchRequest { query: query.into() };
        let answer = client.search(request.clone()).await.expect("OK");
        received += framed(&request);
        sent += framed(&answer);
        messages_in += 1.0;
        messages_out += 1.0;
    }
    let batches = vec![ClassifyRequest { queries: vec!["banana".into(), "kiwi".into()] }; 3];
    let mut answers = client.classify(tokio_stream::iter(batches.clone())).await.expect("starts");
    while let Some(answer) = answers.message().await.expect("OK") {
        sent += framed(&answer);
        messages_out += 1.0;
    }
    received += batches.iter().map(framed).sum::<f64>();
    messages_in += 3.0;
    let counts = vec![CountRequest { queries: vec!["banana".into()] }; 2];
    let summary = client.count(tokio_stream::iter(counts.clone())).await.expect("OK");
    received += counts.iter().map(framed).sum::<f64>();
    sent += framed(&summary);
    messages_in += 2.0;
    messages_out += 1.0;
    let scan = ScanRequest { text: "a banana\nbanana".into() };
    let mut found = client.scan(scan.clone()).await.expect("starts");
    received += framed(&scan);
    messages_in += 1.0;
    while let Some(answer) = found.message().await.expect("OK") {
        sent += framed(&answer);
        messages_out += 1.0;
    }
    // Connect JSON: a call like the others, translated to a gRPC frame.
    let connect = request("POST", "/search.v1.SearchService/Search")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"query":"banana"}"#)))
        .expect("request");
    assert_eq!(send(server.addr, Version::HTTP_11, connect).await.status, 200);
    received += framed(&SearchRequest { query: "banana".into() });
    sent += framed(&SearchResponse { status: 1 });
    messages_in += 1.0;
    messages_out += 1.0;
    // Refused before any message: an unknown method, a bad deadline.
    let unknown = request("POST", "/search.v1.SearchService/Nope")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .expect("request");
    assert_eq!(send(server.addr, Version::HTTP_2, unknown).await.header("grpc-status"), "12");
    let late = request("POST", "/search.v1.SearchService/Search")
        .header("content-type", "application/grpc")
        .header("grpc-timeout", "soon")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .expect("request");
    assert_eq!(send(server.addr, Version::HTTP_2, late).await.header("grpc-status"), "3");

    // Every call has ended by the time its answer was read whole; the
    // server records the end as the body completes.
    common::eventually("every call ended", || server.handle.in_flight() == 0).await;
    let samples = scrape(&server).await;
    let started = |method: &str, protocol: &str| {
        sample(&samples, &format!("grpc_server_call_started_total{{grpc_method=\"{method}\",protocol=\"{protocol}\"}}"))
    };
    let finished = |method: &str, protocol: &str, status: &str| {
        sample(
            &samples,
            &format!(
                "grpc_server_call_duration_seconds_count{{grpc_method=\"{method}\",protocol=\"{protocol}\",grpc_status=\"{status}\"}}"
            ),
        )
    };
    const SEARCH: &str = "search.v1.SearchService/Search";
    assert_eq!(started(SEARCH, "grpc"), 4.0, "three OK and one refused for its deadline");
    assert_eq!(finished(SEARCH, "grpc", "OK"), 3.0);
    assert_eq!(finished(SEARCH, "grpc", "INVALID_ARGUMENT"), 1.0);
    assert_eq!(started(SEARCH, "connect"), 1.0);
    assert_eq!(finished(SEARCH, "connect", "OK"), 1.0);
    for method in ["Classify", "Count", "Scan"] {
        let method = format!("search.v1.SearchService/{method}");
        assert_eq!((started(&method, "grpc"), finished(&method, "grpc", "OK")), (1.0, 1.0), "{method}");
    }
    let health = "grpc_server_call_started_total{grpc_method=\"grpc.health.v1.Health/Check\",protocol=\"grpc\"}";
    assert!(!samples.contains_key(health), "connecting made no call");
    assert_eq!(finished("other", "grpc", "UNIMPLEMENTED"), 1.0, "an unknown method is 'other'");
    // The histogram's buckets hold every call: +Inf is the count.
    let inf = format!(
        "grpc_server_call_duration_seconds_bucket{{le=\"+Inf\",grpc_method=\"{SEARCH}\",protocol=\"grpc\",grpc_status=\"OK\"}}"
    );
    assert_eq!(sample(&samples, &inf), 3.0);
    assert_eq!(sample(&samples, "search_server_messages_received_total"), messages_in);
    assert_eq!(sample(&samples, "search_server_messages_sent_total"), messages_out);
    assert_eq!(sample(&samples, "search_server_message_bytes_received_total"), received);
    assert_eq!(sample(&samples, "search_server_message_bytes_sent_total"), sent);
    assert_eq!(sample(&samples, "search_server_calls_in_flight"), 0.0);
    assert_eq!(sample(&samples, "search_server_calls_shed_total"), 0.0);
    assert!(sample(&samples, "search_server_connections") >= 1.0);
    assert_eq!(sample(&samples, "search_server_connections_refused_total"), 0.0);
    server.stop().await;
}

#[tokio::test]
async fn shed_calls_and_the_metrics_address_are_reported() {
    let config =
        ServerConfig { metrics_listen: Some("127.0.0.1:0".into()), max_concurrent_calls: 1, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<ClassifyRequest>(1);
    let _held = client.classify(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("starts");
    for _ in 0..3 {
        let refused = client.search(SearchRequest { query: "x".into() }).await.expect_err("shed");
        assert_eq!(refused.code(), Some(tonic::Code::ResourceExhausted));
    }
    let samples = scrape(&server).await;
    assert_eq!(sample(&samples, "search_server_calls_shed_total"), 3.0);
    assert_eq!(sample(&samples, "search_server_calls_in_flight"), 1.0);
    drop(tx);
    let addr = server.handle.metrics_addr().expect("metrics on");
    let elsewhere = send(addr, Version::HTTP_11, request("GET", "/").body(Full::default()).expect("request")).await;
    assert_eq!(elsewhere.status, 404);
    server.stop().await;
}
