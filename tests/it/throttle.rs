//! Client-side adaptive throttling (`Throttling`, `--throttle-ratio`):
//! against a server refusing every call, the client stops sending most of
//! them and fails them at once as its own; against one taking them, it
//! sends every one.

use std::time::Duration;

use crate::common::scripted::{ScriptedServer, always_ok, always_unavailable};
use crate::common::{self, ipv4};
use search::client::{Client, ClientOptions, Error, Throttling};
use search::pb::v1::SearchRequest;
use tonic::Code;

const CALLS: u64 = 200;

fn options(throttling: Option<Throttling>) -> ClientOptions {
    ClientOptions { throttling, ..common::bare(ClientOptions::default()) }
}

fn throttling() -> Option<Throttling> {
    Some(Throttling { ratio: 2.0, window: Duration::from_secs(60) })
}

/// `CALLS` calls one after another: how many failed as throttled, and how
/// many with the server's own refusal.
async fn run(server: &ScriptedServer, throttling: Option<Throttling>) -> (u64, u64) {
    let client = Client::connect_with(&ipv4([server.addr]), options(throttling)).await.expect("connects");
    let (mut throttled, mut refused) = (0, 0);
    for _ in 0..CALLS {
        match client.search(SearchRequest { query: "banana".into() }).await {
            Ok(_) => {}
            Err(err @ Error::Throttled { .. }) => {
                assert_eq!(err.code(), Some(Code::Unavailable));
                assert!(err.to_string().starts_with("UNAVAILABLE: not sent: the client is throttling itself"), "{err}");
                throttled += 1;
            }
            Err(err) => {
                assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
                refused += 1;
            }
        }
    }
    (throttled, refused)
}

#[tokio::test]
async fn a_client_refused_by_its_server_stops_sending_most_calls() {
    let server = ScriptedServer::start(always_unavailable, false).await;
    let (throttled, refused) = run(&server, throttling()).await;
    // Every call the server refuses raises the share refused locally to
    // requests / (requests + 1): of 200 calls only a handful go out.
    assert_eq!(throttled + refused, CALLS);
    assert_eq!(server.calls(), refused, "a throttled call is never sent");
    assert!((1..=30).contains(&refused), "{refused} sent, {throttled} throttled");
}

#[tokio::test]
async fn without_throttling_every_refused_call_is_sent() {
    let server = ScriptedServer::start(always_unavailable, false).await;
    assert_eq!(run(&server, None).await, (0, CALLS));
    assert_eq!(server.calls(), CALLS);
}

#[tokio::test]
async fn a_client_whose_server_takes_its_calls_throttles_none() {
    let server = ScriptedServer::start(always_ok, false).await;
    assert_eq!(run(&server, throttling()).await, (0, 0));
    assert_eq!(server.calls(), CALLS);
}
