//! Peers that connect and then misbehave: each limit acting on the real
//! server, while a well-behaved client keeps being served in the same test.

use crate::common;

use std::time::Duration;

use crate::common::TestServer;
use search::pb::v1::SearchRequest;
use search::server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The HTTP/2 connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the server closes `stream` within `within`: a read that ends
/// (EOF or reset) rather than waits.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // The server may say something first (its SETTINGS, a GOAWAY).
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_connection_that_says_nothing_is_closed_at_the_handshake_timeout() {
    let config = ServerConfig { handshake_timeout: Duration::from_millis(300), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut preface_only = TcpStream::connect(server.addr).await.expect("connect");
    preface_only.write_all(PREFACE).await.expect("write");
    let mut half_a_head = TcpStream::connect(server.addr).await.expect("connect");
    half_a_head.write_all(b"POST /search.v1.SearchService/Search HTTP/1.1\r\nHost: x\r\n").await.expect("write");

    // A client that talks is served all the while.
    assert_eq!(server.answered().await, 1);
    for (what, stream) in
        [("silent", &mut silent), ("preface, no SETTINGS", &mut preface_only), ("half a head", &mut half_a_head)]
    {
        assert!(closed_within(stream, Duration::from_secs(10)).await, "{what}: still open");
    }
    // A connection that said its first word in time stays: the call above
    // went over one, and a new one still works after the timeout passed.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.answered().await, 1);
    server.stop().await;
}

#[tokio::test]
async fn the_first_word_in_time_keeps_a_connection_open() {
    let config = ServerConfig { handshake_timeout: Duration::from_millis(300), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    // The preface and an empty SETTINGS frame, then nothing: the handshake
    // is done, so the handshake timeout no longer applies.
    let mut polite = TcpStream::connect(server.addr).await.expect("connect");
    polite.write_all(PREFACE).await.expect("write");
    polite.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]).await.expect("write");
    assert!(!closed_within(&mut polite, Duration::from_millis(900)).await, "closed although it said its first word");
    drop(polite);
    server.stop().await;
}

#[tokio::test]
async fn past_max_connections_new_ones_are_closed_at_once_and_counted() {
    let config = ServerConfig { max_connections: 3, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    // Two idle connections and one client hold the three places.
    let idle: Vec<TcpStream> = vec![
        TcpStream::connect(server.addr).await.expect("connect"),
        TcpStream::connect(server.addr).await.expect("connect"),
    ];
    let client = server.client().await;
    assert_eq!(client.search(SearchRequest { query: "banana".into() }).await.expect("served").status, 1);
    assert_eq!(server.handle.connections(), 3);

    let mut over = TcpStream::connect(server.addr).await.expect("the kernel accepts");
    assert!(closed_within(&mut over, Duration::from_secs(10)).await, "the fourth is closed at once");
    assert_eq!(server.handle.refused_connections(), 1);
    // The client on a held place is still served.
    assert_eq!(client.search(SearchRequest { query: "apple".into() }).await.expect("served").status, 0);

    // A place given back is taken again.
    drop(idle);
    common::eventually("closed connections give their places back", || server.handle.connections() == 1).await;
    assert_eq!(server.answered().await, 1);
    assert_eq!(server.handle.refused_connections(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_header_block_over_max_header_bytes_is_refused_and_the_connection_serves_on() {
    let config = ServerConfig { max_header_bytes: 4096, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (sender, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let mut sender = sender.ready().await.expect("ready");
    let request = |extra: usize| {
        http::Request::post(format!("http://{}/search.v1.SearchService/Search", server.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("x-padding", "p".repeat(extra))
            .body(())
            .expect("a request")
    };
    let (response, _) = sender.send_request(request(8192), true).expect("sent");
    let status = response.await.map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(431), "a large header block is refused: 431 Request Header Fields Too Large");
    // The same connection still serves a request within the limit.
    let mut sender = sender.ready().await.expect("the connection lives on");
    let (response, _) = sender.send_request(request(10), true).expect("sent");
    assert_eq!(response.await.expect("answered").status(), 200);
    server.stop().await;
}

/// Sends an HTTP/1.1 Connect Search whose head carries `padding` bytes of
/// header, writing as the server reads; the answer as text, read until the
/// server closes or 10 s pass.
async fn http1_search_with_padding(server: &TestServer, padding: usize) -> String {
    let body = br#"{"query":"banana"}"#;
    let head = format!(
        "POST /search.v1.SearchService/Search HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nx-padding: {}\r\n\r\n",
        body.len(),
        "p".repeat(padding)
    );
    let (mut read, mut write) = TcpStream::connect(server.addr).await.expect("connect").into_split();
    let request = [head.as_bytes(), body].concat();
    // The server may answer and close before it read everything.
    let writing = tokio::spawn(async move { write.write_all(&request).await });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer)).await;
    let _ = writing.await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_request_head_over_max_header_bytes_is_refused_over_http1_as_over_http2() {
    let server = TestServer::start().await;
    // The default --max-header-bytes, 16 KiB: a head within it is served,
    // one over it (by a little, or by 420 KiB) is refused.
    let within = http1_search_with_padding(&server, 15 << 10).await;
    assert!(within.starts_with("HTTP/1.1 200 OK\r\n") && within.ends_with(r#"{"status":1}"#), "{within}");
    for padding in [17 << 10, 420 << 10] {
        let over = http1_search_with_padding(&server, padding).await;
        assert!(over.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{padding} bytes: {over}");
    }
    assert_eq!(server.answered().await, 1);
    server.stop().await;
}
