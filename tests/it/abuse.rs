//! HTTP/2 peers that abuse the protocol, and connections that overstay:
//! each limit acting on the real server, seen from the wire (the GOAWAY,
//! its error code and last stream), while a well-behaved client keeps
//! being served in the same test. The floods, with the server's memory,
//! are in `attacks.rs`.

use std::time::Duration;

use crate::common::TestServer;
use crate::common::frames::{
    self, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM, End, GoAway, HEADERS, NO_ERROR, PING, RST_STREAM, Raw, frame,
    grpc_headers,
};
use search::pb::v1::ClassifyRequest;
use search::server::ServerConfig;
use tokio::net::TcpStream;
use tokio::time::Instant;

const SEARCH: &str = "/search.v1.SearchService/Search";
const CLASSIFY: &str = "/search.v1.SearchService/Classify";

/// The GOAWAY that ended a connection, failing the test on any other end.
fn goaway(end: End) -> GoAway {
    match end {
        End::GoAway(goaway) => goaway,
        other => panic!("expected a GOAWAY, then the close: {other:?}"),
    }
}

/// Reads `raw` until the trailers of `stream` (its call is over).
async fn until_trailers(raw: &mut Raw, stream: u32) {
    loop {
        let frame = raw.next(Duration::from_secs(10)).await.expect("the call's answer");
        if frame.kind == HEADERS && frame.stream == stream && frame.flags & END_STREAM != 0 {
            return;
        }
    }
}

#[tokio::test]
async fn a_connection_idle_for_max_connection_idle_gets_a_goaway_and_a_busy_one_does_not() {
    let idle = Duration::from_millis(400);
    let config = ServerConfig { max_connection_idle: idle, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;

    // A call, then nothing: the idle time counts from the call's end, which
    // is after it was sent (the client sees the end later than the server,
    // by as much as a loaded machine makes it, so its own view of the end
    // is no lower bound).
    let mut raw = Raw::connect(server.addr).await;
    let sent = Instant::now();
    raw.call(1, SEARCH, &[0x0a, 0x06, b'b', b'a', b'n', b'a', b'n', b'a']).await;
    until_trailers(&mut raw, 1).await;
    // A client holding a call open longer than the idle time keeps its
    // connection: the stream still answers afterwards.
    let client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut held = client.classify(tokio_stream::wrappers::ReceiverStream::new(rx)).await.expect("starts");

    let goaway = goaway(raw.end(Duration::from_secs(10)).await.0);
    assert!(sent.elapsed() >= idle, "GOAWAY {:?} after the call, before the idle time", sent.elapsed());
    assert_eq!(goaway, GoAway { last_stream: 1, code: NO_ERROR, debug: String::new() });

    tokio::time::sleep(idle * 2).await;
    tx.send(ClassifyRequest { queries: vec!["banana".into()] }).await.expect("the stream is open");
    let answer = held.message().await.expect("answered on the held connection").expect("one answer");
    assert_eq!(answer.statuses, [1]);
    drop(tx);
    assert_eq!(server.answered().await, 1);
    server.stop().await;
}

#[tokio::test]
async fn an_aged_connection_gets_a_goaway_at_its_age_not_only_a_close_at_the_grace() {
    let age = Duration::from_millis(500);
    let config = ServerConfig {
        max_connection_age: age,
        max_connection_age_grace: Duration::from_secs(30),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let opened = Instant::now();
    let mut raw = Raw::connect(server.addr).await;
    let goaway = goaway(raw.end(Duration::from_secs(10)).await.0);
    assert_eq!((goaway.code, goaway.last_stream), (NO_ERROR, 0));
    // Up to 10% earlier, so that connections opened together spread out.
    let lived = opened.elapsed();
    assert!(lived >= age.mul_f64(0.9) && lived < Duration::from_secs(10), "lived {lived:?}");
    server.stop().await;
}

#[tokio::test]
async fn pings_between_calls_are_welcome() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr).await;
    for stream in (1..40).step_by(2) {
        raw.send(&frame(PING, 0, 0, &[1; 8])).await.expect("a ping");
        raw.call(stream, SEARCH, &[]).await;
        until_trailers(&mut raw, stream).await;
    }
    let (end, _) = raw.end(Duration::from_millis(500)).await;
    assert_eq!(end, End::Open, "a client that pings as it works keeps its connection");
    server.stop().await;
}

#[tokio::test]
async fn streams_reset_in_a_burst_get_a_goaway_enhance_your_calm() {
    let server = TestServer::start().await;
    // The h2 crate as the attacker: requests opened and reset at once,
    // never waiting for an answer (CVE-2023-44487).
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (sender, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    let mut sender = sender;
    let mut sent = 0;
    for _ in 0..100_000 {
        let Ok(ready) = sender.ready().await else { break };
        sender = ready;
        let request = http::Request::post(format!("http://{}{CLASSIFY}", server.addr))
            .header("content-type", "application/grpc")
            .body(())
            .expect("a request");
        let Ok((_, mut stream)) = sender.send_request(request, false) else { break };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
        // Let the connection task write now and then.
        if sent % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await.expect("the connection ends");
    let err = ended.expect("the connection task").expect_err("the server closed the connection");
    assert!(err.is_go_away(), "{err:?}");
    assert_eq!(err.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM), "{err:?}");
    assert!(sent < 100_000, "the server let all {sent} streams be opened and reset");
    assert_eq!(server.answered().await, 1);
    server.stop().await;
}

#[tokio::test]
async fn streams_reset_one_by_one_after_the_server_took_them_get_a_goaway() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr).await;
    // Each stream opened, its answer's headers awaited (the server took it
    // and started the call), then reset: h2's burst rule never sees a
    // stream it had not taken yet. The 500th premature reset (a stream
    // younger than 100 ms) is one too many.
    let mut stream = 1;
    let end = loop {
        assert!(stream < 4000, "no GOAWAY after {} streams reset", stream / 2);
        let _ = raw.send(&frame(HEADERS, END_HEADERS, stream, &grpc_headers(CLASSIFY))).await;
        let started = loop {
            match raw.next(Duration::from_secs(10)).await {
                Some(f) if f.kind == HEADERS && f.stream == stream => break true,
                Some(f) if f.kind == frames::GOAWAY => break false,
                Some(_) => {}
                None => break false,
            }
        };
        if !started {
            // The GOAWAY was read: the end from it on.
            break raw.end(Duration::from_secs(10)).await.0;
        }
        let _ = raw.send(&frame(RST_STREAM, 0, stream, &8u32.to_be_bytes())).await;
        stream += 2;
    };
    let goaway = goaway(end);
    assert_eq!((goaway.code, goaway.debug.as_str()), (ENHANCE_YOUR_CALM, "too_many_resets"));
    // The 500th stream, or a later one when it came in the same read (the
    // server serves what it read before its GOAWAY) or when a loaded
    // machine let a stream live past 100 ms before its reset was read.
    assert!(goaway.last_stream >= 999, "last stream {}", goaway.last_stream);
    assert_eq!(server.answered().await, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_client_cancelling_every_call_at_its_deadline_keeps_its_connection() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(server.addr).await;
    // Rounds of 200 calls held open by the server (Classify waits for its
    // queries), each cancelled once its deadline passed: every stream is
    // reset, 1,000 of them, which the rapid-reset guard would close at the
    // 500th if it counted resets of streams that lived as long as a
    // deadline (here 150 ms, past the 100 ms a premature reset is within).
    const ROUND: u32 = 200;
    let deadline = Duration::from_millis(150);
    let mut next = 1;
    for _ in 0..5 {
        let streams: Vec<u32> = (next..).step_by(2).take(ROUND as usize).collect();
        next += 2 * ROUND;
        let opened: Vec<u8> =
            streams.iter().flat_map(|&stream| frame(HEADERS, END_HEADERS, stream, &grpc_headers(CLASSIFY))).collect();
        raw.send(&opened).await.expect("calls");
        // Each call's answer headers: the server took it (its age counts
        // from before them).
        let mut started = 0;
        while started < streams.len() {
            let f = raw.next(Duration::from_secs(10)).await.expect("the answers' headers");
            assert_ne!(f.kind, frames::GOAWAY, "GOAWAY while the calls start");
            started += usize::from(f.kind == HEADERS);
        }
        tokio::time::sleep(deadline).await;
        let resets: Vec<u8> =
            streams.iter().flat_map(|&stream| frame(RST_STREAM, 0, stream, &8u32.to_be_bytes())).collect();
        raw.send(&resets).await.expect("cancels");
    }
    // The connection still serves.
    raw.call(next, SEARCH, &[0x0a, 0x06, b'b', b'a', b'n', b'a', b'n', b'a']).await;
    until_trailers(&mut raw, next).await;
    assert!(raw.goaway().is_none(), "GOAWAY {:?}", raw.goaway());
    server.stop().await;
}
