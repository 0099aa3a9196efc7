//! Compressed messages: gzip, deflate and zstd requests on every RPC kind,
//! answers compressed when the client asks and they are large enough, an
//! encoding the server lacks refused by name, a decompression bomb stopped
//! at the size limit, the client's `--compress`, and Connect's compression.

use std::io::Write;

use crate::common::TestServer;
use crate::common::http::{Answer, envelope, envelopes, request, send};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use http::Version;
use http_body_util::Full;
use prost::Message;
use search::client::{Client, ClientOptions, Compression as ClientCompression};
use search::pb::v1::search_service_server::{SearchService, SearchServiceServer};
use search::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};
use tokio_stream::StreamExt;
use tonic::Code;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("in memory");
    encoder.finish().expect("in memory")
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("in memory");
    encoder.finish().expect("in memory")
}

fn compress(encoding: &str, data: &[u8]) -> Vec<u8> {
    match encoding {
        "gzip" => gzip(data),
        "deflate" => zlib(data),
        "zstd" => zstd::bulk::compress(data, 3).expect("in memory"),
        other => panic!("no {other} here"),
    }
}

/// A raw gRPC call over HTTP/2 with `headers`, the whole body at once.
async fn grpc(server: &TestServer, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let mut builder = request("POST", path).header("content-type", "application/grpc").header("te", "trailers");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(server.addr, Version::HTTP_2, builder.body(Full::new(Bytes::from(body))).expect("valid request")).await
}

/// The gRPC status of an answer: its headers (trailers-only) or trailers.
fn status_of(answer: &Answer) -> (Code, String) {
    let status = tonic::Status::from_header_map(&answer.headers)
        .or_else(|| answer.trailers.as_ref().and_then(tonic::Status::from_header_map))
        .expect("a grpc-status");
    (status.code(), status.message().to_owned())
}

#[tokio::test]
async fn compressed_requests_of_every_kind_and_encoding_are_answered() {
    let server = TestServer::start().await;
    for encoding in ["gzip", "deflate", "zstd"] {
        let headers = [("grpc-encoding", encoding)];
        let framed = |message: &[u8]| envelope(1, &compress(encoding, message));

        let body = framed(&SearchRequest { query: "a BANANA".into() }.encode_to_vec());
        for path in ["/search.v1.SearchService/Search", "/Search/search"] {
            let answer = grpc(&server, path, &headers, body.clone()).await;
            assert_eq!(status_of(&answer).0, Code::Ok, "{encoding} {path}");
            let message = &envelopes(&answer.body)[0].1;
            assert_eq!(SearchResponse::decode(&message[..]).expect("a SearchResponse").status, 1);
        }

        let batch = |q: &[&str]| ClassifyRequest { queries: q.iter().map(|s| (*s).to_owned()).collect() };
        let body = [framed(&batch(&["banana", "no"]).encode_to_vec()), framed(&batch(&["x"]).encode_to_vec())].concat();
        let answer = grpc(&server, "/search.v1.SearchService/Classify", &headers, body).await;
        let statuses: Vec<i32> = envelopes(&answer.body)
            .iter()
            .flat_map(|(_, m)| ClassifyResponse::decode(&m[..]).expect("a ClassifyResponse").statuses)
            .collect();
        assert_eq!(statuses, [1, 0, 0], "{encoding}");

        let count = |q: &[&str]| CountRequest { queries: q.iter().map(|s| (*s).to_owned()).collect() };
        let body =
            [framed(&count(&["banana"]).encode_to_vec()), framed(&count(&["BANANA", "kiwi"]).encode_to_vec())].concat();
        let answer = grpc(&server, "/search.v1.SearchService/Count", &headers, body).await;
        let summary = CountResponse::decode(&envelopes(&answer.body)[0].1[..]).expect("a CountResponse");
        assert_eq!((summary.queries, summary.matches), (3, 2), "{encoding}");

        let body = framed(&ScanRequest { text: "banana\nbanana".into() }.encode_to_vec());
        let answer = grpc(&server, "/search.v1.SearchService/Scan", &headers, body).await;
        let found: usize = envelopes(&answer.body)
            .iter()
            .map(|(_, m)| ScanResponse::decode(&m[..]).expect("a ScanResponse").matches.len())
            .sum();
        assert_eq!(found, 2, "{encoding}");
    }
    server.stop().await;
}

#[tokio::test]
async fn answers_are_compressed_when_asked_and_large_enough() {
    let server = TestServer::start().await;
    // A text with 500 occurrences: one answer of several KiB.
    let text = "banana ".repeat(500);
    let body = envelope(0, &ScanRequest { text }.encode_to_vec());
    let answer =
        grpc(&server, "/search.v1.SearchService/Scan", &[("grpc-accept-encoding", "identity, gzip")], body.clone())
            .await;
    assert_eq!(answer.header("grpc-encoding"), "gzip");
    let frames = envelopes(&answer.body);
    assert_eq!(frames[0].0, 1, "a large answer is compressed");
    let inflated = flate2::read::GzDecoder::new(&frames[0].1[..]);
    let matches: usize = {
        use std::io::Read;
        let mut bytes = Vec::new();
        let mut reader = inflated;
        reader.read_to_end(&mut bytes).expect("gzip");
        ScanResponse::decode(&bytes[..]).expect("a ScanResponse").matches.len()
    };
    assert_eq!(matches, 500);
    assert!(answer.header("grpc-accept-encoding").contains("gzip"), "the server says what it takes");

    // A small answer goes as it is, even when the client takes gzip.
    let small = envelope(0, &SearchRequest { query: "banana".into() }.encode_to_vec());
    let answer =
        grpc(&server, "/search.v1.SearchService/Search", &[("grpc-accept-encoding", "gzip")], small.clone()).await;
    assert_eq!(envelopes(&answer.body)[0].0, 0, "under the threshold: not compressed");
    // And nothing is compressed for a client that did not ask.
    let answer = grpc(&server, "/search.v1.SearchService/Scan", &[], body).await;
    assert_eq!(answer.header("grpc-encoding"), "");
    assert_eq!(envelopes(&answer.body)[0].0, 0);
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_encoding_is_refused_naming_the_known_ones() {
    let server = TestServer::start().await;
    let body = envelope(1, b"whatever");
    let answer = grpc(&server, "/search.v1.SearchService/Search", &[("grpc-encoding", "br")], body).await;
    let (code, message) = status_of(&answer);
    assert_eq!(code, Code::Unimplemented);
    assert!(message.contains("\"br\"") && message.contains("gzip, zstd and deflate"), "{message}");
    assert_eq!(answer.header("grpc-accept-encoding"), "gzip,zstd,deflate");
    server.stop().await;
}

#[tokio::test]
async fn a_decompression_bomb_stops_at_the_size_limit() {
    let server = TestServer::start().await;
    // 256 MiB of zeros, from about 256 KiB of gzip.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        encoder.write_all(&zeros).expect("in memory");
    }
    let bomb = encoder.finish().expect("in memory");
    assert!(bomb.len() < 4 << 20, "the bomb itself is under the limit: {} bytes", bomb.len());
    let answer =
        grpc(&server, "/search.v1.SearchService/Search", &[("grpc-encoding", "gzip")], envelope(1, &bomb)).await;
    let (code, message) = status_of(&answer);
    assert_eq!(code, Code::ResourceExhausted);
    assert_eq!(
        message,
        "the request message inflates to more than the server's limit of 4194304 bytes (--max-recv-bytes)"
    );
    // Corrupt data is the client's mistake, not the server's.
    let answer =
        grpc(&server, "/search.v1.SearchService/Search", &[("grpc-encoding", "gzip")], envelope(1, b"nope")).await;
    assert_eq!(status_of(&answer).0, Code::InvalidArgument);
    server.stop().await;
}

/// A Search that reports the request's `grpc-encoding`, to see what the
/// client sent.
#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl SearchService for Echo {
    async fn search(
        &self,
        request: tonic::Request<SearchRequest>,
    ) -> Result<tonic::Response<SearchResponse>, tonic::Status> {
        let compressed = request.metadata().get("grpc-encoding").is_some_and(|v| v == "gzip" || v == "zstd");
        Ok(tonic::Response::new(SearchResponse { status: i32::from(compressed) }))
    }
    type ClassifyStream = tokio_stream::Empty<Result<ClassifyResponse, tonic::Status>>;
    async fn classify(
        &self,
        _: tonic::Request<tonic::Streaming<ClassifyRequest>>,
    ) -> Result<tonic::Response<Self::ClassifyStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not here"))
    }
    async fn count(
        &self,
        _: tonic::Request<tonic::Streaming<CountRequest>>,
    ) -> Result<tonic::Response<CountResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not here"))
    }
    type ScanStream = tokio_stream::Empty<Result<ScanResponse, tonic::Status>>;
    async fn scan(&self, _: tonic::Request<ScanRequest>) -> Result<tonic::Response<Self::ScanStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not here"))
    }
}

#[tokio::test]
async fn the_client_compresses_when_told_to() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let service = SearchServiceServer::new(Echo)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Zstd);
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let target = addr.to_string().parse().expect("a target");
    for (compression, sent) in [(None, 0), (Some(ClientCompression::Gzip), 1), (Some(ClientCompression::Zstd), 1)] {
        let client = Client::new(&target, ClientOptions { compression, ..ClientOptions::default() }).expect("client");
        let answer = client.search(SearchRequest { query: "x".into() }).await.expect("answered");
        assert_eq!(answer.status, sent, "{compression:?}");
    }
    serving.abort();

    // And against the real server, every RPC kind, compressed both ways.
    let server = TestServer::start().await;
    let options = ClientOptions { compression: Some(ClientCompression::Gzip), ..ClientOptions::default() };
    let client = Client::new(&server.target(), options).expect("client");
    assert_eq!(client.search(SearchRequest { query: "Banana".into() }).await.expect("search").status, 1);
    let batches = tokio_stream::iter(vec![CountRequest { queries: vec!["banana".into(); 3] }]);
    assert_eq!(client.count(batches).await.expect("count").matches, 3);
    let mut scan = client.scan(ScanRequest { text: "banana ".repeat(500) }).await.expect("scan");
    let mut found = 0;
    while let Some(answer) = scan.next().await {
        found += answer.expect("an answer").matches.len();
    }
    assert_eq!(found, 500, "a compressed answer is read");
    server.stop().await;
}

#[tokio::test]
async fn connect_compresses_both_ways() {
    let server = TestServer::start().await;
    let path = "/search.v1.SearchService/Search";
    let body = gzip(br#"{"query":"xxBANANAxx"}"#);
    let unary = request("POST", path)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip")
        .body(Full::new(Bytes::from(body)))
        .expect("valid");
    let answer = send(server.addr, Version::HTTP_11, unary).await;
    assert_eq!(answer.text(), r#"{"status":1}"#, "a small answer is not compressed");
    assert_eq!(answer.header("content-encoding"), "");

    // A stream whose answer is large: compressed envelopes when asked.
    let scan = envelope(0, format!(r#"{{"text":"{}"}}"#, "banana ".repeat(500)).as_bytes());
    let stream = request("POST", "/search.v1.SearchService/Scan")
        .header("content-type", "application/connect+json")
        .header("connect-accept-encoding", "zstd")
        .body(Full::new(Bytes::from(scan)))
        .expect("valid");
    let answer = send(server.addr, Version::HTTP_11, stream).await;
    assert_eq!(answer.header("connect-content-encoding"), "zstd");
    let frames = envelopes(&answer.body);
    assert_eq!(frames[0].0, 1, "compressed");
    let json = zstd::bulk::decompress(&frames[0].1, 1 << 20).expect("zstd");
    let value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    assert_eq!(value["matches"].as_array().map(Vec::len), Some(500));

    // A bomb in a Connect body stops at the limit too.
    let bomb = gzip(&vec![b' '; 8 << 20]);
    let bombed = request("POST", path)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(Full::new(Bytes::from(bomb)))
        .expect("valid");
    let answer = send(server.addr, Version::HTTP_11, bombed).await;
    assert_eq!(answer.status, 429);
    assert!(answer.text().contains("inflates to more than the server's limit"), "{}", answer.text());
    server.stop().await;
}
