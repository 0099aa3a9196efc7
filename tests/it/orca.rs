//! Load reports (ORCA): every answer's `endpoint-load-metrics-bin` trailer
//! carries the server's figures and the handler's named cost; the
//! out-of-band stream reports at the interval asked for, never under the
//! server's minimum; with reports off, neither exists.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::Version;
use http_body_util::Full;
use prost::Message;
use search::pb::v1::search_service_client::SearchServiceClient;
use search::pb::v1::{ClassifyRequest, CountRequest, SearchRequest};
use search::pb::xds::data::orca::v3::OrcaLoadReport;
use search::pb::xds::service::orca::v3::OrcaLoadReportRequest;
use search::pb::xds::service::orca::v3::open_rca_service_client::OpenRcaServiceClient;
use search::server::{Figures, ORCA_TRAILER, Orca, OrcaSettings, Search, ServerConfig};
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;

use crate::common::http::{envelope, envelopes, request, send};
use crate::common::{TestServer, eventually};

fn config(figures: Figures, min_interval: Duration) -> (ServerConfig, Orca) {
    let orca = Orca::new(OrcaSettings { figures, min_interval });
    (ServerConfig { orca: Some(orca.clone()), ..ServerConfig::default() }, orca)
}

async fn channel(server: &TestServer) -> Channel {
    tonic::transport::Endpoint::from(server.target().uri().clone()).connect().await.expect("connect")
}

/// The load report of an answer's metadata (tonic merges a unary answer's
/// trailers into it), if any.
fn report(metadata: &MetadataMap) -> Option<OrcaLoadReport> {
    let value = metadata.get_bin(ORCA_TRAILER.as_str())?;
    let bytes = value.to_bytes().expect("base64");
    Some(OrcaLoadReport::decode(bytes).expect("an OrcaLoadReport"))
}

/// A report as the raw header value, decoded by hand as a peer would:
/// checks the encoding, not tonic's reading of it.
fn raw_report(metadata: &MetadataMap) -> Option<OrcaLoadReport> {
    let value = metadata.as_ref().get(ORCA_TRAILER)?;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(value.as_bytes()).expect("base64");
    Some(OrcaLoadReport::decode(bytes.as_slice()).expect("an OrcaLoadReport"))
}

async fn search_report(client: &mut SearchServiceClient<Channel>) -> Option<OrcaLoadReport> {
    let answer = client.search(SearchRequest { query: "Banana".into() }).await.expect("served");
    report(answer.metadata())
}

#[tokio::test]
async fn every_answer_carries_the_server_s_measured_figures() {
    let (config, _) = config(Figures::Measured, Duration::from_secs(30));
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut client = SearchServiceClient::new(channel(&server).await);
    let answer = client.search(SearchRequest { query: "Banana".into() }).await.expect("served");
    let first = raw_report(answer.metadata()).expect("the first answer has a report");
    assert_eq!(Some(first), report(answer.metadata()), "tonic reads what a peer reads");
    // The sampler's first sample has the memory; the calls per second
    // follow at its next, a second later.
    let mut last = None;
    for _ in 0..30 {
        let report = search_report(&mut client).await.expect("a load report on every answer");
        if report.rps_fractional > 0.0 && report.mem_utilization > 0.0 {
            last = Some(report);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = last.expect("calls per second and memory reported within 3 s");
    assert!(report.mem_utilization < 1.0, "{report:?}");
    assert!(report.cpu_utilization >= 0.0 && report.application_utilization >= 0.0, "{report:?}");
    assert!(report.eps.abs() < f64::EPSILON, "no call failed: {report:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_handler_s_named_cost_rides_on_its_call_s_trailers() {
    let (config, orca) = config(Figures::Measured, Duration::from_secs(30));
    orca.update(|report| {
        report.named_metrics.insert("shard".into(), 7.0);
    });
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut client = SearchServiceClient::new(channel(&server).await);
    let batches = [3, 4, 5].map(|n| ClassifyRequest { queries: vec!["banana".to_owned(); n] });
    let answer = client.classify(tokio_stream::iter(batches)).await.expect("classify starts");
    let mut answers = answer.into_inner();
    while answers.message().await.expect("an answer").is_some() {}
    let trailers = answers.trailers().await.expect("trailers").expect("trailers present");
    let report = report(&trailers).expect("a load report in the trailers");
    assert_eq!(report.request_cost.get(Search::LINES_COST), Some(&12.0), "{report:?}");
    assert_eq!(report.named_metrics.get("shard"), Some(&7.0), "the server's figures too: {report:?}");
    // A Search records no cost of its own.
    let searched = search_report(&mut client).await.expect("a load report");
    assert!(searched.request_cost.is_empty(), "{searched:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_failed_call_carries_a_report_too_and_counts_as_an_error() {
    let (config, _) = config(Figures::Measured, Duration::from_secs(30));
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut client = SearchServiceClient::new(channel(&server).await);
    // A query over the size limit fails before the handler: trailers-only.
    let huge = SearchRequest { query: "b".repeat(5 << 20) };
    let err = client.search(huge).await.expect_err("too large");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(report(err.metadata()).is_some(), "a trailers-only answer carries the report: {err:?}");
    let mut errors = 0.0;
    for _ in 0..30 {
        errors = search_report(&mut client).await.expect("a load report").eps;
        if errors > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(errors > 0.0, "the failed call counts in the errors per second");
    server.stop().await;
}

#[tokio::test]
async fn with_reports_off_there_is_no_trailer_and_no_stream() {
    let server = TestServer::start().await;
    let channel = channel(&server).await;
    let mut client = SearchServiceClient::new(channel.clone());
    let answer = client.search(SearchRequest { query: "Banana".into() }).await.expect("served");
    assert_eq!(report(answer.metadata()), None);
    let mut orca = OpenRcaServiceClient::new(channel);
    let err = orca.stream_core_metrics(OrcaLoadReportRequest::default()).await.expect_err("not served");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    server.stop().await;
}

/// The out-of-band stream: the figures at once, then at each interval.
/// On tokio's paused clock, so the intervals are exact and nothing waits.
#[tokio::test(start_paused = true)]
async fn the_stream_reports_at_the_interval_asked_for_never_under_the_minimum() {
    let (config, orca) = config(Figures::Set, Duration::from_secs(5));
    orca.update(|report| report.cpu_utilization = 0.25);
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut client = OpenRcaServiceClient::new(channel(&server).await);
    for (asked, expected) in
        [(Duration::from_secs(8), Duration::from_secs(8)), (Duration::from_secs(1), Duration::from_secs(5))]
    {
        let request = OrcaLoadReportRequest {
            report_interval: Some(asked.try_into().expect("a duration")),
            request_cost_names: vec![],
        };
        let mut reports = client.stream_core_metrics(request).await.expect("the stream starts").into_inner();
        let first = reports.message().await.expect("a report").expect("at once");
        let start = tokio::time::Instant::now();
        assert!((first.cpu_utilization - 0.25).abs() < f64::EPSILON, "{first:?}");
        orca.update(|report| report.cpu_utilization = 0.5);
        let second = reports.message().await.expect("a report").expect("another");
        let waited = start.elapsed();
        assert!(waited >= expected && waited < expected + Duration::from_secs(1), "asked {asked:?}: {waited:?}");
        assert!((second.cpu_utilization - 0.5).abs() < f64::EPSILON, "the figures as they stand: {second:?}");
        orca.update(|report| report.cpu_utilization = 0.25);
    }
    server.stop().await;
}

#[tokio::test]
async fn the_stream_keeps_only_the_costs_asked_for() {
    let (config, orca) = config(Figures::Set, Duration::from_millis(10));
    orca.update(|report| {
        report.request_cost.insert("lines".into(), 3.0);
        report.request_cost.insert("bytes".into(), 9.0);
    });
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut client = OpenRcaServiceClient::new(channel(&server).await);
    let request = OrcaLoadReportRequest { report_interval: None, request_cost_names: vec!["lines".into()] };
    let mut reports = client.stream_core_metrics(request).await.expect("the stream starts").into_inner();
    let report = reports.message().await.expect("a report").expect("at once");
    assert_eq!(report.request_cost.len(), 1, "{report:?}");
    assert_eq!(report.request_cost.get("lines"), Some(&3.0));
    eventually("the stream is counted as a call in flight", || server.handle.in_flight() == 1).await;
    drop(reports);
    server.stop().await;
}

/// gRPC-Web carries the report in its trailer frame, and the Connect
/// protocol as the metadata it copies trailers into: a unary answer's
/// `trailer-` header, a stream's end message.
#[tokio::test]
async fn the_web_protocols_carry_the_report_as_their_trailers() {
    let (config, _) = config(Figures::Measured, Duration::from_secs(30));
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let search = SearchRequest { query: "Banana".into() }.encode_to_vec();
    let post = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        let request = request("POST", path).header("content-type", content_type).header("x-grpc-web", "1");
        send(server.addr, Version::HTTP_11, request.body(Full::new(Bytes::from(body))).expect("a request"))
    };
    let web = post("/search.v1.SearchService/Search", "application/grpc-web+proto", envelope(0, &search)).await;
    let frames = envelopes(&web.body);
    let trailers = String::from_utf8_lossy(&frames.last().expect("a trailer frame").1).to_lowercase();
    assert!(trailers.contains("endpoint-load-metrics-bin:"), "{trailers}");

    let connect = post("/search.v1.SearchService/Search", "application/proto", search.clone()).await;
    assert_eq!(connect.status, 200, "{connect:?}");
    let value = connect.header("trailer-endpoint-load-metrics-bin");
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(value).expect("base64");
    OrcaLoadReport::decode(bytes.as_slice()).expect("a report");

    let count = CountRequest { queries: vec!["banana".into(), "kiwi".into()] }.encode_to_vec();
    let stream = post("/search.v1.SearchService/Count", "application/connect+proto", envelope(0, &count)).await;
    let frames = envelopes(&stream.body);
    let end: serde_json::Value = serde_json::from_slice(&frames.last().expect("an end message").1).expect("JSON");
    let value = end["metadata"]["endpoint-load-metrics-bin"][0].as_str().expect("the report in the end message");
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(value).expect("base64");
    let report = OrcaLoadReport::decode(bytes.as_slice()).expect("a report");
    assert_eq!(report.request_cost.get(Search::LINES_COST), Some(&2.0), "Count's lines: {report:?}");
    server.stop().await;
}
