//! The drain: calls the kernel had already queued on the listening socket
//! when it began are answered, and calls in flight finish within the grace
//! and are cut after it.

use std::time::Duration;

use prost::Message;
use search::pb::v1::{ClassifyRequest, CountRequest, SearchRequest, SearchResponse};
use search::server::{self, Listeners, ServerConfig};
use tonic::Code;

use crate::common::frames::{DATA, End, Raw};
use crate::common::{self, TestServer, eventually};

/// Calls sent on connections the kernel accepted (the listen queue) but the
/// server had not taken when the drain began: each is answered, and its
/// connection then ends with a GOAWAY naming it. Closing the socket with
/// them queued resets them, their calls lost after they were sent, which a
/// proxy such as nginx does not retry.
#[tokio::test]
async fn calls_queued_on_the_listening_socket_when_the_drain_begins_are_answered() {
    let listeners = Listeners::bind("127.0.0.1:0").await.expect("bind");
    let addr = listeners.local_addrs().expect("its address")[0];
    let request = SearchRequest { query: "Banana".into() }.encode_to_vec();
    let mut queued = Vec::new();
    for _ in 0..16 {
        let mut raw = Raw::connect(addr).await;
        raw.call(1, "/search.v1.SearchService/Search", &request).await;
        queued.push(raw);
    }
    // The shutdown is due from the start: the server drains at once.
    let serving = tokio::spawn(server::serve(listeners, ServerConfig::default(), std::future::ready(())));
    let answer = common::http::envelope(0, &SearchResponse { status: 1 }.encode_to_vec());
    for (i, mut raw) in queued.into_iter().enumerate() {
        let (end, frames) = raw.end(Duration::from_secs(10)).await;
        let data: Vec<u8> =
            frames.iter().filter(|f| f.kind == DATA && f.stream == 1).flat_map(|f| f.payload.clone()).collect();
        assert_eq!(data, answer, "connection {i} was not answered ({end:?})");
        assert!(matches!(&end, End::GoAway(goaway) if goaway.last_stream == 1), "connection {i}: {end:?}");
    }
    serving.await.expect("join").expect("drains cleanly");
}

#[tokio::test]
async fn the_drain_lets_calls_finish_and_cuts_what_outlives_the_grace() {
    let config = ServerConfig { grace: Duration::from_millis(500), ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let client = server.client().await;

    // A Count in flight when the signal arrives, finished afterwards.
    let (count_tx, count_rx) = tokio::sync::mpsc::channel(4);
    let counting = client.clone();
    let count =
        tokio::spawn(async move { counting.count(tokio_stream::wrappers::ReceiverStream::new(count_rx)).await });
    count_tx.send(CountRequest { queries: vec!["banana".into()] }).await.expect("send");
    // A Classify that would run forever.
    let (forever_tx, forever_rx) = tokio::sync::mpsc::channel::<ClassifyRequest>(1);
    let mut forever = client.classify(tokio_stream::wrappers::ReceiverStream::new(forever_rx)).await.expect("starts");
    eventually("both calls are in flight", || server.handle.in_flight() == 2).await;

    let handle = server.handle.clone();
    let addr = server.addr;
    let stopping = server.begin_stop();
    // No new connections once the drain starts.
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed during the drain");
    count_tx.send(CountRequest { queries: vec!["Banana".into(), "kiwi".into()] }).await.expect("send after the signal");
    drop(count_tx);
    let counted = count.await.expect("join").expect("the call in flight completes");
    assert_eq!((counted.queries, counted.matches), (3, 2));

    let cut = forever.message().await.expect_err("cut after the grace");
    let search::client::Error::Rpc(cut) = cut else { panic!("{cut:?}") };
    assert_eq!(cut.code(), Code::Unavailable);
    assert!(cut.message().contains("drain's grace period"), "{cut:?}");
    stopping.await.expect("join").expect("the server returns cleanly");
    assert_eq!(handle.in_flight(), 0);
    drop(forever_tx);
}
