//! The server's production behaviour: deadlines (default, cap, zero, work
//! stopping), bad input and its status codes, load shedding, health,
//! reflection, HTTP/2 settings and connection age (the drain: drain.rs).

use std::time::Duration;

use crate::common::{self, TestServer, eventually};
use bytes::Bytes;
use search::pb::v1::{ClassifyRequest, CountRequest, SearchRequest};
use search::server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

async fn channel(server: &TestServer) -> Channel {
    tonic::transport::Endpoint::from(server.target().uri()).connect().await.expect("connect")
}

/// A gRPC message: the 5-byte prefix (not compressed) and the payload.
fn framed(payload: &[u8]) -> Vec<u8> {
    common::http::envelope(0, payload)
}

/// A raw HTTP/2 connection, for what no well-behaved client does.
async fn raw_connection(server: &TestServer) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let (sender, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(connection);
    sender
}

fn grpc_request(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}{path}", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).expect("request")
}

/// The status a raw call ended with: from the headers (trailers-only) or the trailers.
async fn status_of(response: h2::client::ResponseFuture) -> (Code, String) {
    let response = response.await.expect("an HTTP response");
    let status = match tonic::Status::from_header_map(response.headers()) {
        Some(status) => status,
        None => {
            let mut body = response.into_body();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.expect("body data");
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            let trailers = body.trailers().await.expect("trailers").expect("some trailers");
            tonic::Status::from_header_map(&trailers).expect("a grpc-status")
        }
    };
    (status.code(), status.message().to_owned())
}

/// Sends `body` as the whole request body of a call to `path`, the way a
/// broken or hostile client could, and returns the status it ended with.
async fn raw_call(server: &TestServer, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (Code, String) {
    let mut sender = raw_connection(server).await.ready().await.expect("ready");
    let (response, mut send) = sender.send_request(grpc_request(server, path, headers), false).expect("send headers");
    send.send_data(Bytes::from(body), true).expect("send body");
    status_of(response).await
}

#[tokio::test]
async fn the_server_default_deadline_ends_a_stream_and_its_work() {
    let config = ServerConfig { default_timeout: Duration::from_millis(300), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut client = search::pb::v1::search_service_client::SearchServiceClient::new(channel(&server).await);
    // The request stream stays open: only the deadline can end this call.
    let (tx, rx) = tokio::sync::mpsc::channel::<ClassifyRequest>(1);
    let mut answers =
        client.classify(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("starts").into_inner();
    assert_eq!(server.handle.in_flight(), 1);
    let err = answers.message().await.expect_err("cut at the deadline");
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(err.message(), "the call's deadline of 300ms passed");
    // The handler's stream was dropped: nothing runs for nobody.
    eventually("the call leaves the server", || server.handle.in_flight() == 0).await;
    drop(tx);
    server.stop().await;
}

#[tokio::test]
async fn a_client_deadline_is_capped_by_the_server() {
    let config = ServerConfig { max_timeout: Duration::from_millis(200), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut client = search::pb::v1::search_service_client::SearchServiceClient::new(channel(&server).await);
    let (tx, rx) = tokio::sync::mpsc::channel::<CountRequest>(1);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    request.set_timeout(Duration::from_secs(3600));
    let err = client.count(request).await.expect_err("capped to 200ms");
    assert_eq!((err.code(), err.message()), (Code::DeadlineExceeded, "the call's deadline of 200ms passed"));
    drop((tx, client)); // else the drain waits out its grace for this connection
    server.stop().await;
}

#[tokio::test]
async fn a_zero_or_malformed_deadline_is_refused_clearly() {
    let server = TestServer::start().await;
    let search = framed(&[]);
    let (code, message) =
        raw_call(&server, "/search.v1.SearchService/Search", &[("grpc-timeout", "0m")], search.clone()).await;
    assert_eq!(code, Code::DeadlineExceeded);
    assert_eq!(message, "the call's deadline (grpc-timeout 0) had passed when it arrived");
    let (code, message) =
        raw_call(&server, "/search.v1.SearchService/Search", &[("grpc-timeout", "soon")], search).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("invalid grpc-timeout header \"soon\""), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_goes_away_stops_its_stream() {
    let server = TestServer::start().await;
    let classify = framed(&prost::Message::encode_to_vec(&ClassifyRequest { queries: vec!["banana".into()] }));

    // Cancelled: RST_STREAM while the request is still open.
    let mut sender = raw_connection(&server).await.ready().await.expect("ready");
    let (response, mut send) =
        sender.send_request(grpc_request(&server, "/search.v1.SearchService/Classify", &[]), false).expect("open");
    send.send_data(Bytes::from(classify.clone()), false).expect("send a batch");
    let response = response.await.expect("response headers");
    assert_eq!(server.handle.in_flight(), 1);
    send.send_reset(h2::Reason::CANCEL);
    eventually("the cancelled call leaves the server", || server.handle.in_flight() == 0).await;
    drop(response);

    // Gone: the whole connection closes with the call open.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let (sender, connection) = h2::client::handshake(tcp).await.expect("handshake");
    let connection = tokio::spawn(connection);
    let mut sender = sender.ready().await.expect("ready");
    let (response, mut send) =
        sender.send_request(grpc_request(&server, "/search.v1.SearchService/Classify", &[]), false).expect("open");
    send.send_data(Bytes::from(classify), false).expect("send a batch");
    let _response = response.await.expect("response headers");
    assert_eq!(server.handle.in_flight(), 1);
    connection.abort(); // drops the socket
    eventually("the call of a closed connection leaves the server", || server.handle.in_flight() == 0).await;
    server.stop().await;
}

/// A message with field 1 as raw bytes: lets a test send a `string` field
/// that is not UTF-8, which no honest client can.
#[derive(Clone, PartialEq, prost::Message)]
struct RawQuery {
    #[prost(bytes = "vec", tag = "1")]
    query: Vec<u8>,
}

#[tokio::test]
async fn bad_input_gets_the_right_code_and_a_clear_message() {
    let server = TestServer::start().await;
    let not_utf8 = prost::Message::encode_to_vec(&RawQuery { query: b"ban\xffana".to_vec() });
    let (code, message) = raw_call(&server, "/search.v1.SearchService/Search", &[], framed(&not_utf8)).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.starts_with("the request is not a valid protobuf message: "), "{message}");
    assert!(message.contains("not UTF-8"), "{message}");
    // The same inside a stream (the status travels in the trailers).
    let (code, _) = raw_call(&server, "/search.v1.SearchService/Count", &[], framed(&not_utf8)).await;
    assert_eq!(code, Code::InvalidArgument);

    let (code, message) = raw_call(&server, "/search.v1.SearchService/Search", &[], framed(&[0x0a, 0x05, b'a'])).await;
    assert_eq!(code, Code::InvalidArgument, "a corrupt message: {message}");

    let mut truncated = framed(b"\x0a\x06banana");
    truncated.truncate(7);
    let (code, message) = raw_call(&server, "/search.v1.SearchService/Search", &[], truncated).await;
    assert_eq!(
        (code, message.as_str()),
        (Code::InvalidArgument, "the request body ended inside a message: 2 of its 8 bytes arrived")
    );

    let (code, _) = raw_call(&server, "/search.v1.SearchService/Nope", &[], framed(&[])).await;
    assert_eq!(code, Code::Unimplemented);

    let client = server.client().await;
    let huge = client.search(SearchRequest { query: "x".repeat(5 << 20) }).await.expect_err("too large");
    let search::client::Error::Rpc(status) = huge else { panic!("{huge:?}") };
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("over the server's limit of 4194304 bytes (--max-recv-bytes)"), "{status:?}");
    // The server is unharmed by all of it.
    assert_eq!(client.search(SearchRequest { query: "Banana".into() }).await.expect("fine").status, 1);
    server.stop().await;
}

#[tokio::test]
async fn load_is_shed_at_the_limit_not_queued() {
    let config = ServerConfig { max_concurrent_calls: 1, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let held = client.classify(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("first call");
    let refused = client.search(SearchRequest { query: "Banana".into() }).await.expect_err("over the limit");
    let search::client::Error::Rpc(status) = refused else { panic!("{refused:?}") };
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("limit of 1 calls in flight (--max-concurrent-calls)"), "{status:?}");
    drop((tx, held));
    eventually("the held call ends", || server.handle.in_flight() == 0).await;
    assert_eq!(client.search(SearchRequest { query: "Banana".into() }).await.expect("room again").status, 1);
    server.stop().await;
}

#[tokio::test]
async fn health_reports_serving_and_watch_sees_the_drain() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let config = ServerConfig { grace: Duration::from_millis(500), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut health = HealthClient::new(channel(&server).await);
    for service in ["", "search.v1.SearchService"] {
        let response = health.check(HealthCheckRequest { service: service.into() }).await.expect("check");
        assert_eq!(response.into_inner().status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "nope.v1.Nope".into() }).await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);

    let mut watch = health
        .watch(HealthCheckRequest { service: "search.v1.SearchService".into() })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("an update").expect("one");
    assert_eq!(first.status(), ServingStatus::Serving);
    let stopping = server.begin_stop();
    let next = watch.message().await.expect("an update").expect("one");
    assert_eq!(next.status(), ServingStatus::NotServing, "NOT_SERVING as soon as the drain starts");
    stopping.await.expect("join").expect("drains cleanly");
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_and_describe_the_service() {
    use prost::Message;
    use tonic_reflection::pb::{v1, v1alpha};

    let server = TestServer::start().await;
    let channel = channel(&server).await;

    let request = |message| v1::ServerReflectionRequest { host: String::new(), message_request: Some(message) };
    let mut v1_client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let requests = vec![
        request(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
        request(v1::server_reflection_request::MessageRequest::FileContainingSymbol("search.v1.SearchService".into())),
    ];
    let mut responses = v1_client.server_reflection_info(tokio_stream::iter(requests)).await.expect("v1").into_inner();
    let listed = responses.next().await.expect("a response").expect("ok").message_response;
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = listed else {
        panic!("{listed:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["search.v1.SearchService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    let described = responses.next().await.expect("a response").expect("ok").message_response;
    let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) = described else {
        panic!("{described:?}")
    };
    let file =
        prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice()).expect("a descriptor");
    let methods: Vec<String> = file.service[0].method.iter().map(|m| m.name().to_owned()).collect();
    assert_eq!(methods, ["Search", "Classify", "Count", "Scan"]);

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let alpha_request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        alpha.server_reflection_info(tokio_stream::iter([alpha_request])).await.expect("v1alpha").into_inner();
    let listed = responses.next().await.expect("a response").expect("ok").message_response;
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) = listed else {
        panic!("{listed:?}")
    };
    assert!(list.service.iter().any(|s| s.name == "search.v1.SearchService"));
    server.stop().await;
}

/// Opens a raw HTTP/2 connection (preface and empty SETTINGS) and returns
/// it with the server's first SETTINGS frame's parameters.
async fn raw_h2(server: &TestServer) -> (tokio::net::TcpStream, Vec<(u16, u32)>) {
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    socket.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.expect("preface");
    let mut header = [0u8; 9];
    socket.read_exact(&mut header).await.expect("a frame");
    assert_eq!(header[3], 0x4, "the server starts with SETTINGS");
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0; len];
    socket.read_exact(&mut payload).await.expect("settings payload");
    let settings = payload
        .chunks(6)
        .map(|p| (u16::from_be_bytes([p[0], p[1]]), u32::from_be_bytes([p[2], p[3], p[4], p[5]])))
        .collect();
    (socket, settings)
}

#[tokio::test]
async fn streams_per_connection_are_capped_in_the_http2_settings() {
    let config = ServerConfig { max_concurrent_streams: 7, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let (socket, settings) = raw_h2(&server).await;
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    assert!(settings.contains(&(MAX_CONCURRENT_STREAMS, 7)), "{settings:?}");
    drop(socket);
    server.stop().await;
}

#[tokio::test]
async fn keepalive_closes_a_connection_whose_peer_never_answers_pings() {
    let config = ServerConfig {
        keepalive_interval: Duration::from_millis(100),
        keepalive_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let (mut socket, _) = raw_h2(&server).await;
    // Read (and never answer) until the server gives up on us.
    let mut sink = vec![0; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server closes a connection that does not answer its pings");
    server.stop().await;
}

#[tokio::test]
async fn an_aged_connection_is_closed_and_the_client_reconnects() {
    let config = ServerConfig {
        max_connection_age: Duration::from_millis(200),
        max_connection_age_grace: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<ClassifyRequest>(1);
    let mut held = client.classify(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("starts");
    let ended = tokio::time::timeout(Duration::from_secs(10), held.message()).await.expect("the connection is closed");
    assert!(ended.is_err(), "a call on an aged connection ends: {ended:?}");
    drop(tx);
    assert_eq!(client.search(SearchRequest { query: "banana".into() }).await.expect("reconnected").status, 1);
    server.stop().await;
}
