//! The four RPC kinds end to end, through the library client against a real
//! server on loopback, plus the article's legacy path.

use crate::common;

use crate::common::TestServer;
use search::client::Error;
use search::pb::v1::{ClassifyRequest, CountRequest, ScanMatch, ScanRequest, SearchRequest};
use search::rpc::LEGACY_SEARCH_PATH;
use search::server::ServerConfig;
use tokio_stream::StreamExt;
use tonic::codegen::http::uri::PathAndQuery;

fn queries(items: &[&str]) -> Vec<String> {
    items.iter().map(|&q| q.to_owned()).collect()
}

#[tokio::test]
async fn search_answers_like_the_article() {
    let server = TestServer::start().await;
    let client = server.client().await;
    for (query, status) in [("Banana", 1), ("Apple", 0), ("", 0), ("I like BANANAS", 1), ("ｂａｎａｎａ", 0)] {
        let response = client.search(SearchRequest { query: query.to_owned() }).await.expect("search");
        assert_eq!(response.status, status, "{query:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn classify_answers_every_query_in_order_with_indexes() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let batches = vec![
        ClassifyRequest { queries: queries(&["banana", "apple"]) },
        ClassifyRequest { queries: vec![] },
        ClassifyRequest { queries: queries(&["BANANA split", "bana\nna", "x"]) },
    ];
    let responses: Vec<_> = client
        .classify(tokio_stream::iter(batches))
        .await
        .expect("classify starts")
        .collect::<Result<_, _>>()
        .await
        .expect("classify ends OK");
    let answered: Vec<(u64, Vec<i32>)> = responses.into_iter().map(|r| (r.first_index, r.statuses)).collect();
    assert_eq!(answered, [(0, vec![1, 0]), (2, vec![]), (2, vec![1, 0, 0])]);
    server.stop().await;
}

#[tokio::test]
async fn classify_answers_while_the_client_still_sends() {
    let server = TestServer::start().await;
    let client = server.client().await;
    // The request stream stays open until the first answer came back: a
    // server that waited for the end of input would deadlock this test.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut responses =
        client.classify(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("classify starts");
    tx.send(ClassifyRequest { queries: queries(&["banana"]) }).await.expect("send first batch");
    let first = responses.message().await.expect("first answer").expect("a first answer");
    assert_eq!((first.first_index, first.statuses), (0, vec![1]));
    tx.send(ClassifyRequest { queries: queries(&["nope"]) }).await.expect("send second batch");
    drop(tx);
    let second = responses.message().await.expect("second answer").expect("a second answer");
    assert_eq!((second.first_index, second.statuses), (1, vec![0]));
    assert!(responses.message().await.expect("clean end").is_none());
    server.stop().await;
}

#[tokio::test]
async fn count_summarises_the_stream() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let batches = vec![
        CountRequest { queries: queries(&["banana", "apple", "Banana!"]) },
        CountRequest { queries: vec![] },
        CountRequest { queries: queries(&["xbananax"]) },
    ];
    let summary = client.count(tokio_stream::iter(batches)).await.expect("count");
    assert_eq!((summary.queries, summary.matches), (4, 3));
    let empty = client.count(tokio_stream::empty()).await.expect("count of nothing");
    assert_eq!((empty.queries, empty.matches), (0, 0));
    server.stop().await;
}

#[tokio::test]
async fn streaming_calls_take_messages_many_times_their_first_buffer_up_to_the_limit() {
    let config = ServerConfig { max_recv_bytes: 64 * 1024, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let client = server.client().await;
    // About 40 KiB a batch, every other query a match: the server's buffers
    // start at 1 KiB and must grow to take each batch whole.
    let batch: Vec<String> =
        (0..4000).map(|i| if i % 2 == 0 { format!("banana{i}") } else { format!("kiwi{i}") }).collect();
    let answers: Vec<_> = client
        .classify(tokio_stream::iter(vec![ClassifyRequest { queries: batch.clone() }; 2]))
        .await
        .expect("classify starts")
        .collect::<Result<_, _>>()
        .await
        .expect("classify ends OK");
    let answered: Vec<(u64, usize, i32)> =
        answers.iter().map(|r| (r.first_index, r.statuses.len(), r.statuses.iter().sum())).collect();
    assert_eq!(answered, [(0, 4000, 2000), (4000, 4000, 2000)]);
    let summary = client.count(tokio_stream::iter(vec![CountRequest { queries: batch.clone() }; 3])).await;
    let summary = summary.expect("count");
    assert_eq!((summary.queries, summary.matches), (12_000, 6000));

    // Twice as many queries: over the limit, refused with it named.
    let over = CountRequest { queries: [batch.as_slice(), batch.as_slice()].concat() };
    let refused = client.count(tokio_stream::iter(vec![over])).await;
    let Err(Error::Rpc(status)) = refused else { panic!("{refused:?}") };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.message().contains("over the server's limit of 65536 bytes (--max-recv-bytes)"), "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn scan_streams_every_occurrence_with_its_position() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let text = "banana\nno match\nxxBANANA and bAnAna\nbana\nna\n".to_owned();
    let matches: Vec<ScanMatch> = client
        .scan(ScanRequest { text })
        .await
        .expect("scan starts")
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("scan ends OK")
        .into_iter()
        .flat_map(|r| r.matches)
        .collect();
    let positions: Vec<(u64, u64, u64)> = matches.iter().map(|m| (m.line, m.column, m.offset)).collect();
    assert_eq!(positions, [(1, 1, 0), (3, 3, 18), (3, 14, 29)]);
    server.stop().await;
}

#[tokio::test]
async fn scan_sends_early_matches_before_the_end_of_a_large_text() {
    let server = TestServer::start().await;
    let client = server.client().await;
    // One match near the start, one at the end of ~3 MiB: two responses,
    // since the server sends what it found window by window.
    let text = format!("banana\n{}banana", "x".repeat(3 << 20));
    let responses: Vec<_> = client
        .scan(ScanRequest { text })
        .await
        .expect("scan starts")
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("scan ends OK");
    let offsets: Vec<Vec<u64>> = responses.iter().map(|r| r.matches.iter().map(|m| m.offset).collect()).collect();
    assert_eq!(offsets, [vec![0], vec![7 + (3 << 20)]]);
    let none = client.scan(ScanRequest { text: "no match here".into() }).await.expect("scan starts");
    assert_eq!(none.collect::<Vec<_>>().await.len(), 0, "no occurrences: no responses");
    server.stop().await;
}

/// The article's messages, field for field: `SearchParam { string query = 1; }`
/// and `SearchStatus { int32 status = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
struct SearchParam {
    #[prost(string, tag = "1")]
    query: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SearchStatus {
    #[prost(int32, tag = "1")]
    status: i32,
}

#[tokio::test]
async fn the_legacy_path_answers_the_articles_messages() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Endpoint::from(server.target().uri().clone()).connect().await.expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    for (query, status) in [("Banana", 1), ("Apple", 0), ("bAnAnA", 1)] {
        grpc.ready().await.expect("channel ready");
        let response = grpc
            .unary::<SearchParam, SearchStatus, _>(
                tonic::Request::new(SearchParam { query: query.to_owned() }),
                PathAndQuery::from_static(LEGACY_SEARCH_PATH),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .expect("legacy call");
        assert_eq!(response.into_inner().status, status, "{query:?}");
    }
    // Only that one legacy method exists: its neighbours are unknown.
    grpc.ready().await.expect("channel ready");
    let err = grpc
        .unary::<SearchParam, SearchStatus, _>(
            tonic::Request::new(SearchParam::default()),
            PathAndQuery::from_static("/Search/other"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("no such method");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert_eq!(err.message(), "no method /Search/other on this server");
    // A method the v1 service lacks, and a service the server lacks.
    for path in ["/search.v1.SearchService/Nope", "/search.v2.SearchService/Search"] {
        grpc.ready().await.expect("channel ready");
        let err = grpc
            .unary::<SearchParam, SearchStatus, _>(
                tonic::Request::new(SearchParam::default()),
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .expect_err("no such method");
        assert_eq!(
            (err.code(), err.message()),
            (tonic::Code::Unimplemented, &*format!("no method {path} on this server"))
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_naming_the_target() {
    // Bind then drop: the port is (almost certainly) closed for the test.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let target = format!("127.0.0.1:{port}").parse().expect("valid target");
    let err = search::client::Client::connect(&target).await.expect_err("nothing listens there");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with(&format!("cannot connect to 127.0.0.1:{port}: Connection refused")), "{message}");
}

/// Field 1 sent as the varint 1: a string field of the wrong wire type,
/// then a well-typed query after it where the message has room for one.
const MISTYPED: [u8; 2] = [0x08, 0x01];

/// Sends `body` to `path` as `content_type` over HTTP/2 and returns the
/// answer's status (`grpc-status`, or Connect's in the end message or the
/// HTTP status) and its messages.
async fn raw_call(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (String, Vec<(u8, Vec<u8>)>, common::http::Answer) {
    use common::http::{envelopes, request, send};
    let request = request("POST", path)
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("request");
    let answer = send(server.addr, http::Version::HTTP_2, request).await;
    let status = answer
        .trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| answer.headers.get("grpc-status"))
        .map_or_else(|| answer.status.as_str().to_owned(), |v| v.to_str().expect("ASCII").to_owned());
    let messages = if content_type.starts_with("application/grpc") || content_type.starts_with("application/connect") {
        envelopes(&answer.body)
    } else {
        vec![(0, answer.body.to_vec())]
    };
    (status, messages, answer)
}

#[tokio::test]
async fn a_field_of_the_wrong_wire_type_is_skipped_on_every_path() {
    // As protobuf's runtimes (C++, Java, Go, Python) keep such a field as
    // unknown and answer, so does every path of this server: the direct
    // unary path, the article's path, tonic's streaming codec, and Connect
    // and gRPC-Web on top of them.
    use common::http::envelope;
    use prost::Message;
    use search::pb::v1::{ClassifyResponse, CountResponse, SearchResponse};
    let server = TestServer::start().await;
    let banana = SearchRequest { query: "banana".into() }.encode_to_vec();
    let mistyped_then_banana = [&MISTYPED[..], &banana].concat();
    let search = |message: &[u8]| SearchResponse::decode(message).expect("a SearchResponse").status;

    for path in ["/search.v1.SearchService/Search", "/Search/search"] {
        let (status, messages, _) = raw_call(&server, path, "application/grpc", envelope(0, &MISTYPED)).await;
        assert_eq!((status.as_str(), search(&messages[0].1)), ("0", 0), "{path}: answered, query empty");
        let body = envelope(0, &mistyped_then_banana);
        let (status, messages, _) = raw_call(&server, path, "application/grpc", body).await;
        assert_eq!((status.as_str(), search(&messages[0].1)), ("0", 1), "{path}: the later query is read");
    }
    let (status, messages, _) = raw_call(
        &server,
        "/search.v1.SearchService/Search",
        "application/grpc-web+proto",
        envelope(0, &mistyped_then_banana),
    )
    .await;
    // gRPC-Web's status is in its trailer frame (flagged 0x80).
    let trailer = String::from_utf8_lossy(&messages[1].1).into_owned();
    assert_eq!((status.as_str(), search(&messages[0].1)), ("200", 1), "gRPC-Web");
    assert_eq!((messages[1].0, trailer.contains("grpc-status:0")), (0x80, true), "gRPC-Web: {trailer:?}");
    let (status, messages, _) =
        raw_call(&server, "/search.v1.SearchService/Search", "application/proto", mistyped_then_banana.clone()).await;
    assert_eq!((status.as_str(), search(&messages[0].1)), ("200", 1), "Connect unary");

    let two = [envelope(0, &mistyped_then_banana), envelope(0, &MISTYPED)].concat();
    let (status, messages, _) = raw_call(&server, "/search.v1.SearchService/Count", "application/grpc", two).await;
    let count = CountResponse::decode(&messages[0].1[..]).expect("a CountResponse");
    assert_eq!((status.as_str(), count.queries, count.matches), ("0", 1, 1), "Count");
    let body = envelope(0, &mistyped_then_banana);
    let (status, messages, _) = raw_call(&server, "/search.v1.SearchService/Classify", "application/grpc", body).await;
    let classified = ClassifyResponse::decode(&messages[0].1[..]).expect("a ClassifyResponse");
    assert_eq!((status.as_str(), classified.statuses), ("0", vec![1]), "Classify");
    let text = [&MISTYPED[..], &ScanRequest { text: "a banana".into() }.encode_to_vec()].concat();
    let (status, messages, _) =
        raw_call(&server, "/search.v1.SearchService/Scan", "application/grpc", envelope(0, &text)).await;
    assert_eq!((status.as_str(), messages.len()), ("0", 1), "Scan finds the match");
    let (_, messages, _) =
        raw_call(&server, "/search.v1.SearchService/Count", "application/connect+proto", envelope(0, &MISTYPED)).await;
    assert_eq!(messages.len(), 2, "Connect stream: an answer and the end message");
    let count = CountResponse::decode(&messages[0].1[..]).expect("a CountResponse");
    assert_eq!((count.queries, messages[1].0), (0, 2), "Connect stream: answered, then ended");
    server.stop().await;
}
