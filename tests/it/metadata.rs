//! The caller's own request metadata (`ClientOptions::metadata`, the
//! client's `-H`): a text and a `-bin` header arrive intact on every attempt
//! of every kind of call, through the library and the binary; bad headers
//! are one-line usage errors; a header larger than the server takes is a
//! clear error.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use search::client::{Backoff, Client, ClientOptions, Metadata, Target};
use search::pb::v1::search_service_server::SearchServiceServer;
use search::pb::v1::{ScanRequest, SearchRequest};
use search::server::Search;
use tokio::sync::oneshot;
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use crate::common::{TestServer, client_with_env, serve_grpc};

/// What one attempt carried: `x-tenant`'s values and `x-trace-bin`'s bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    tenant: Vec<String>,
    trace: Option<Vec<u8>>,
}

/// Records the headers of every attempt and fails the first `failures` of
/// them with UNAVAILABLE, in front of the real Search handlers.
#[derive(Clone, Default)]
struct Recorder {
    failures: usize,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    fn record(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let tenant = metadata.get_all("x-tenant").iter().map(|v| v.to_str().unwrap_or("?").to_owned()).collect();
        let trace = metadata.get_bin("x-trace-bin").and_then(|v| v.to_bytes().ok()).map(|bytes| bytes.to_vec());
        let mut seen = self.seen.lock().expect("lock");
        seen.push(Seen { tenant, trace });
        if seen.len() <= self.failures { Err(Status::unavailable("failing on purpose")) } else { Ok(()) }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Serves the Search service behind `recorder` on a free port until the
/// returned sender is dropped.
async fn serve(recorder: Recorder) -> (SocketAddr, oneshot::Sender<()>) {
    let intercepted = SearchServiceServer::with_interceptor(Search, move |request: Request<()>| {
        recorder.record(request.metadata()).map(|()| request)
    });
    serve_grpc(intercepted).await
}

fn target(addr: SocketAddr) -> Target {
    addr.to_string().parse().expect("a target")
}

/// What every attempt of a call with `-H 'x-tenant: acme' -H 'x-tenant:
/// beta' -H 'x-trace-bin: AAEC/w'` must carry.
fn expected() -> Seen {
    Seen { tenant: vec!["acme".into(), "beta".into()], trace: Some(vec![0, 1, 2, 255]) }
}

#[tokio::test]
async fn every_attempt_of_every_call_carries_the_callers_headers() {
    let recorder = Recorder { failures: 2, ..Recorder::default() };
    let (addr, _stop) = serve(recorder.clone()).await;
    let metadata = Metadata::parse(["x-tenant: acme", "X-Tenant: beta", "x-trace-bin: AAEC/w"]).expect("valid");
    let options = ClientOptions {
        metadata,
        hedging: None,
        backoff: Backoff::new(std::time::Duration::from_millis(1), std::time::Duration::from_millis(2), 2.0)
            .expect("a backoff"),
        ..ClientOptions::default()
    };
    let client = Client::new(&target(addr), options).expect("a client");
    assert_eq!(client.search(SearchRequest { query: "Banana".into() }).await.expect("the third attempt").status, 1);
    client.classify(tokio_stream::empty()).await.expect("classify");
    client.count(tokio_stream::empty()).await.expect("count");
    client.scan(ScanRequest { text: "banana".into() }).await.expect("scan");
    let want = vec![expected(); 6];
    assert_eq!(recorder.seen(), want, "two failed attempts and the one that succeeded, then each stream");
}

#[tokio::test]
async fn a_client_without_headers_sends_none() {
    let recorder = Recorder::default();
    let (addr, _stop) = serve(recorder.clone()).await;
    let client = Client::new(&target(addr), ClientOptions::default()).expect("a client");
    client.search(SearchRequest { query: "Banana".into() }).await.expect("search");
    assert_eq!(recorder.seen(), [Seen { tenant: vec![], trace: None }]);
}

#[tokio::test]
async fn dash_h_and_search_header_send_headers_from_the_command_line() {
    let recorder = Recorder::default();
    let (addr, _stop) = serve(recorder.clone()).await;
    let addr = addr.to_string();
    let flags = ["-t", &addr, "-H", "x-tenant: acme", "-H", "x-tenant:beta", "-H", "x-trace-bin: AAEC/w=="];
    let search = client_with_env(&[&flags[..], &["Banana"]].concat(), &[]).await;
    assert_eq!((search.status.code(), &search.stdout[..]), (Some(0), &b"status=1\n"[..]), "{search:?}");
    let bench = client_with_env(&[&flags[..], &["bench", "-n", "2", "-c", "1"]].concat(), &[]).await;
    assert_eq!(bench.status.code(), Some(0), "{bench:?}");
    let env = [("SEARCH_HEADER", "x-tenant: acme\nx-tenant: beta\nx-trace-bin: AAEC/w\n")];
    let from_env = client_with_env(&["-t", &addr, "count", "/dev/null"], &env).await;
    assert_eq!(from_env.status.code(), Some(0), "{from_env:?}");
    let want = vec![expected(); 4];
    assert_eq!(recorder.seen(), want, "search, bench's two calls, count (its headers from SEARCH_HEADER)");
}

#[tokio::test]
async fn bad_headers_are_one_line_usage_errors() {
    let cases = [
        (&["-H", "x-tenant acme"][..], "-H: a header is `name: value`, and `x-tenant` has no colon"),
        (&["-H", "x tenant: acme"], "-H: `x tenant` is not a header name gRPC sends"),
        (
            &["-H", "x-tenant: caf\u{e9}"],
            "-H: the value of `x-tenant` has a character gRPC metadata cannot hold at byte 3",
        ),
        (&["-H", ":path: /evil"], "-H: `:path` is reserved: an HTTP/2 pseudo-header, which the client sets"),
        (&["-H", "grpc-timeout: 1S"], "-H: `grpc-timeout` is reserved: gRPC's own (grpc-*)"),
        (&["-H", "Content-Type: text/plain"], "-H: `content-type` is reserved: the client sets it"),
        (&["-H", "te: gzip"], "-H: `te` is reserved: the client sets it"),
        (&["-H", "user-agent: me"], "-H: `user-agent` is reserved: the client sets it"),
        (&["-H", "host: example.com"], "-H: `host` is reserved: HTTP/2 carries it as :authority"),
        (&["-H", "connection: close"], "-H: `connection` is reserved: HTTP/2 forbids connection headers"),
        (&["-H", "x-trace-bin: ***"], "-H: the value of `x-trace-bin` is not base64"),
        (
            &["-H", "authorization: Bearer abc", "--token-file", "TOKEN"],
            "-H authorization and a token (--token-file or SEARCH_TOKEN) cannot be used together",
        ),
    ];
    let dir = tempfile::tempdir().expect("a directory");
    let token = dir.path().join("token");
    std::fs::write(&token, "t0k3n\n").expect("write the token");
    let token = token.to_str().expect("UTF-8");
    for (flags, message) in cases {
        let flags = &flags.iter().map(|flag| if *flag == "TOKEN" { token } else { flag }).collect::<Vec<_>>()[..];
        let output = client_with_env(&[flags, &["-t", "127.0.0.1:1", "Banana"]].concat(), &[]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("error: {message}")), "{flags:?}: {stderr}");
        assert!(!stderr.contains("acme") && !stderr.contains("abc"), "no value quoted: {stderr}");
    }
    let with_env_token = client_with_env(
        &["-t", "127.0.0.1:1", "-H", "Authorization: Bearer abc", "Banana"],
        &[("SEARCH_TOKEN", "t0k3n")],
    )
    .await;
    assert_eq!(with_env_token.status.code(), Some(2), "{with_env_token:?}");
}

#[tokio::test]
async fn an_authorization_header_and_a_token_are_refused_together_by_the_library() {
    let options = ClientOptions {
        metadata: Metadata::parse(["authorization: Bearer abc"]).expect("valid"),
        token: Some(search::client::BearerToken::new("t0k3n").expect("a token")),
        ..ClientOptions::default()
    };
    let err = Client::new(&"127.0.0.1:1".parse().expect("a target"), options).expect_err("refused");
    assert!(matches!(err, search::client::Error::AuthorizationTwice), "{err}");
    let alone = ClientOptions {
        metadata: Metadata::parse(["authorization: Bearer abc"]).expect("valid"),
        ..ClientOptions::default()
    };
    assert!(Client::new(&"127.0.0.1:1".parse().expect("a target"), alone).is_ok(), "the header alone is sent");
}

#[tokio::test]
async fn a_header_larger_than_the_server_takes_is_a_clear_error() {
    let server = TestServer::start().await;
    let addr = server.addr.to_string();
    let big = format!("x-big: {}", "a".repeat(20 * 1024));
    let output = client_with_env(&["-t", &addr, "-H", &big, "Banana"], &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("a 20 KiB header against --max-header-bytes 16KiB: exit {:?}, {stderr}", output.status.code());
    assert_eq!(output.status.code(), Some(66), "UNKNOWN, as gRPC reads HTTP 431: {stderr}");
    assert_eq!(
        stderr,
        "client: UNKNOWN: grpc-status header missing, mapped from HTTP status code 431 (the server refused the \
         request's headers as too large: send fewer or smaller -H headers, or raise the server's --max-header-bytes)\n"
    );
    let small = client_with_env(&["-t", &addr, "-H", &big[..8 * 1024], "Banana"], &[]).await;
    assert_eq!(small.status.code(), Some(0), "8 KiB is taken: {small:?}");
    server.stop().await;
}
