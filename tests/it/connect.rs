//! The Connect protocol on the gRPC port: unary JSON and binary over HTTP/1.1
//! and HTTP/2, GET for the side-effect-free Search, the streaming RPCs in
//! envelopes, the deadline, and every kind of bad input with the HTTP status
//! and Connect code connect-go gives it, checked in connect-go's order.

use crate::common::TestServer;
use crate::common::http::{Answer, envelope, envelopes, request, send};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::Version;
use http_body_util::Full;
use prost::Message;
use search::pb::v1::{SearchRequest, SearchResponse};
use search::server::ServerConfig;
use serde_json::{Value, json};

const H1: Version = Version::HTTP_11;
const H2: Version = Version::HTTP_2;
const SEARCH: &str = "/search.v1.SearchService/Search";

async fn post(server: &TestServer, version: Version, path: &str, content_type: &str, body: impl Into<Bytes>) -> Answer {
    let request = request("POST", path).header("content-type", content_type).body(Full::new(body.into()));
    send(server.addr, version, request.expect("valid request")).await
}

async fn get(server: &TestServer, path_and_query: &str) -> Answer {
    send(server.addr, H1, request("GET", path_and_query).body(Full::default()).expect("valid request")).await
}

/// The Connect error of an answer: its HTTP status, code and message.
fn error_of(answer: &Answer) -> (u16, String, String) {
    assert_eq!(answer.header("content-type"), "application/json", "{answer:?}");
    let body = answer.json();
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
    (answer.status.as_u16(), text("code"), text("message"))
}

#[tokio::test]
async fn unary_json_and_binary_over_both_http_versions() {
    let server = TestServer::start().await;
    for version in [H1, H2] {
        let answer = post(&server, version, SEARCH, "application/json", r#"{"query":"Banana"}"#).await;
        assert_eq!((answer.status.as_u16(), answer.text()), (200, r#"{"status":1}"#.to_owned()), "{version:?}");
        assert_eq!(answer.header("content-type"), "application/json");

        let request = SearchRequest { query: "an apple".into() }.encode_to_vec();
        let answer = post(&server, version, SEARCH, "application/proto", request).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), "application/proto");
        assert_eq!(SearchResponse::decode(answer.body.clone()).expect("a SearchResponse").status, 0);
    }
    // The article's path answers the same way; charset and unknown fields
    // change nothing.
    let answer =
        post(&server, H1, "/Search/search", "application/json; charset=utf-8", r#"{"query":"xBANANAx","x":[1]}"#).await;
    assert_eq!(answer.text(), r#"{"status":1}"#);
    server.stop().await;
}

#[tokio::test]
async fn get_calls_the_side_effect_free_search() {
    let server = TestServer::start().await;
    let json = "%7B%22query%22%3A%22Banana%22%7D";
    let answer = get(&server, &format!("{SEARCH}?connect=v1&encoding=json&message={json}")).await;
    assert_eq!((answer.status.as_u16(), answer.text()), (200, r#"{"status":1}"#.to_owned()));

    let binary = URL_SAFE_NO_PAD.encode(SearchRequest { query: "banana!".into() }.encode_to_vec());
    let answer = get(&server, &format!("{SEARCH}?connect=v1&encoding=proto&base64=1&message={binary}")).await;
    assert_eq!(SearchResponse::decode(answer.body.clone()).expect("a SearchResponse").status, 1);

    let answer = get(&server, &format!("{SEARCH}?connect=v1&encoding=json&base64=1&message=%%%")).await;
    let (status, code, message) = error_of(&answer);
    assert_eq!((status, code.as_str()), (400, "invalid_argument"));
    assert!(message.contains("base64"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn streams_go_in_envelopes_and_end_with_the_status() {
    let server = TestServer::start().await;
    // Server streaming over HTTP/1.1: one envelope per answer, then the end.
    let body = envelope(0, br#"{"text":"banana\nxx BANANA"}"#);
    let answer = post(&server, H1, "/search.v1.SearchService/Scan", "application/connect+json", body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/connect+json");
    let frames = envelopes(&answer.body);
    let (last, messages) = frames.split_last().expect("an end-of-stream message");
    assert_eq!(*last, (2, b"{}".to_vec()), "OK ends with an empty end-of-stream message");
    let found: Vec<Value> = messages
        .iter()
        .flat_map(|(flags, json)| {
            assert_eq!(*flags, 0);
            serde_json::from_slice::<Value>(json).expect("JSON")["matches"].as_array().cloned().unwrap_or_default()
        })
        .collect();
    assert_eq!(found, [json!({"line":"1","column":"1","offset":"0"}), json!({"line":"2","column":"4","offset":"10"})]);

    // Client streaming over HTTP/1.1.
    let body = [envelope(0, br#"{"queries":["banana","kiwi"]}"#), envelope(0, br#"{"queries":["BANANA"]}"#)].concat();
    let answer = post(&server, H1, "/search.v1.SearchService/Count", "application/connect+json", body).await;
    let frames = envelopes(&answer.body);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(serde_json::from_slice::<Value>(&frames[0].1).expect("JSON"), json!({"queries":"3","matches":"2"}));

    // Bidirectional over HTTP/2, in binary.
    let batch = |queries: &[&str]| {
        search::pb::v1::ClassifyRequest { queries: queries.iter().map(|q| (*q).to_owned()).collect() }.encode_to_vec()
    };
    let body = [envelope(0, &batch(&["banana", "no"])), envelope(0, &batch(&["BaNaNa"]))].concat();
    let answer = post(&server, H2, "/search.v1.SearchService/Classify", "application/connect+proto", body).await;
    let frames = envelopes(&answer.body);
    let answers: Vec<_> = frames[..2]
        .iter()
        .map(|(_, m)| {
            let r = search::pb::v1::ClassifyResponse::decode(&m[..]).expect("a ClassifyResponse");
            (r.first_index, r.statuses)
        })
        .collect();
    assert_eq!(answers, [(0, vec![1, 0]), (2, vec![1])]);
    assert_eq!(frames[2], (2, b"{}".to_vec()));
    server.stop().await;
}

#[tokio::test]
async fn a_failed_stream_says_why_in_its_end_message() {
    let config = ServerConfig { max_recv_bytes: 100, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let big = format!(r#"{{"queries":["{}"]}}"#, "a".repeat(200));
    let body = [envelope(0, br#"{"queries":["banana"]}"#), envelope(0, big.as_bytes())].concat();
    let answer = post(&server, H1, "/search.v1.SearchService/Count", "application/connect+json", body).await;
    assert_eq!(answer.status, 200, "streams report errors in the end message");
    let frames = envelopes(&answer.body);
    let end = frames.last().expect("an end message");
    assert_eq!(end.0, 2);
    let end: Value = serde_json::from_slice(&end.1).expect("JSON");
    assert_eq!(end["error"]["code"], "resource_exhausted");
    let message = end["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("over the server's limit of 100 bytes (--max-recv-bytes)"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn the_deadline_comes_from_connect_timeout_ms() {
    let server = TestServer::start().await;
    let zero = request("POST", SEARCH)
        .header("content-type", "application/json")
        .header("connect-timeout-ms", "0")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("valid request");
    let (status, code, _) = error_of(&send(server.addr, H1, zero).await);
    assert_eq!((status, code.as_str()), (504, "deadline_exceeded"));

    let soon = request("POST", SEARCH)
        .header("content-type", "application/json")
        .header("connect-timeout-ms", "soon")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("valid request");
    let (status, code, message) = error_of(&send(server.addr, H1, soon).await);
    assert_eq!((status, code.as_str()), (400, "invalid_argument"));
    assert!(message.contains("connect-timeout-ms"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_connect_go_answers_in_its_order() {
    let config = ServerConfig { max_recv_bytes: 1000, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let classify = "/search.v1.SearchService/Classify";

    // 1. Bidi over HTTP/1.1 comes first, whatever else is wrong.
    let answer = post(&server, H1, classify, "text/plain", "x").await;
    assert_eq!(answer.status, 505);

    // 2. The HTTP method: GET only where the contract has no side effects.
    let answer = send(
        server.addr,
        H1,
        request("GET", "/search.v1.SearchService/Count?encoding=json&message=%7B%7D")
            .body(Full::default())
            .expect("valid"),
    )
    .await;
    assert_eq!((answer.status.as_u16(), answer.header("allow")), (405, "POST"));
    let answer = send(
        server.addr,
        H1,
        request("PUT", SEARCH).header("content-type", "text/plain").body(Full::default()).expect("valid"),
    )
    .await;
    assert_eq!((answer.status.as_u16(), answer.header("allow")), (405, "GET, POST"));

    // 3. The content type, wrong or missing.
    let answer = post(&server, H1, SEARCH, "text/plain", "x").await;
    assert_eq!((answer.status.as_u16(), answer.header("accept-post")), (415, "application/json, application/proto"));
    let answer =
        send(server.addr, H1, request("POST", SEARCH).body(Full::new(Bytes::from_static(b"{}"))).expect("valid")).await;
    assert_eq!(answer.status, 415);
    let answer = post(&server, H1, "/search.v1.SearchService/Count", "application/json", "{}").await;
    assert_eq!(
        (answer.status.as_u16(), answer.header("accept-post")),
        (415, "application/connect+json, application/connect+proto"),
        "a stream takes enveloped content types"
    );

    // Then the call itself: JSON that does not parse, saying where.
    let (status, code, message) =
        error_of(&post(&server, H1, SEARCH, "application/json", "{\n \"query\": nope}").await);
    assert_eq!((status, code.as_str()), (400, "invalid_argument"));
    assert!(message.contains("search.v1.SearchRequest") && message.contains("line 2 column"), "{message}");

    // An oversized body, naming the limit.
    let big = format!(r#"{{"query":"{}"}}"#, "b".repeat(2000));
    let (status, code, message) = error_of(&post(&server, H1, SEARCH, "application/json", big).await);
    assert_eq!((status, code.as_str()), (429, "resource_exhausted"));
    assert!(message.contains("limit of 1000 bytes (--max-recv-bytes)"), "{message}");

    // An unknown compression.
    let brotli = request("POST", SEARCH)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("valid");
    let (status, code, message) = error_of(&send(server.addr, H1, brotli).await);
    assert_eq!((status, code.as_str()), (501, "unimplemented"));
    assert!(message.contains("\"br\""), "{message}");

    // An unknown method: HTTP 404.
    let answer = post(&server, H1, "/search.v1.SearchService/Nope", "application/json", "{}").await;
    assert_eq!(answer.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn health_answers_over_connect_json() {
    let server = TestServer::start().await;
    let answer = post(&server, H1, "/grpc.health.v1.Health/Check", "application/json", "{}").await;
    assert_eq!((answer.status.as_u16(), answer.json()), (200, json!({"status":"SERVING"})));
    let answer = post(&server, H1, "/grpc.health.v1.Health/Check", "application/json", r#"{"service":"nope"}"#).await;
    assert_eq!(error_of(&answer).0, 404, "NOT_FOUND maps to 404");
    server.stop().await;
}

#[tokio::test]
async fn a_server_stream_takes_exactly_one_request_message() {
    let server = TestServer::start().await;
    let scan = "/search.v1.SearchService/Scan";
    let one = envelope(0, br#"{"text":"banana"}"#);
    for (what, body) in [("two", [one.clone(), one.clone()].concat()), ("none", Vec::new())] {
        let answer = post(&server, H1, scan, "application/connect+json", body).await;
        let frames = envelopes(&answer.body);
        let end: Value = serde_json::from_slice(&frames.last().expect("an end message").1).expect("JSON");
        assert_eq!(end["error"]["code"], "unimplemented", "{what}: {end}");
        assert_eq!(frames.len(), 1, "{what}: no answer, only the end");
    }
    let answer = post(&server, H1, scan, "application/connect+json", one).await;
    assert_eq!(envelopes(&answer.body).len(), 2, "one message: one answer and the end");
    server.stop().await;
}
