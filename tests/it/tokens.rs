//! Per-call credentials on the client side: the bearer token on every
//! attempt (retries, hedges, streaming calls) and health watch, a rotated
//! token file read again, the refusal over plaintext, and a caller the
//! server refuses (UNAUTHENTICATED, PERMISSION_DENIED): one line, its exit
//! code, one attempt. The servers are scripted ones that record the
//! `authorization` header of every request they get.

use std::process::Output;
use std::time::Duration;

use crate::common::scripted::{
    ScriptedServer, always_ok, always_permission_denied, always_unauthenticated, unavailable_first,
};
use crate::common::{client_with_env as client, ipv4};
use search::client::{
    Backoff, BearerToken, Client, ClientOptions, Error, Hedging, HedgingDelay, LoadBalancing, Target,
};
use search::pb::v1::{ScanRequest, SearchRequest};
use search::rpc::{SCAN_PATH, SEARCH_PATH};
use tonic::Code;

const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";

fn banana() -> SearchRequest {
    SearchRequest { query: "Banana".into() }
}

fn target(server: &ScriptedServer) -> Target {
    server.addr.to_string().parse().expect("a target")
}

/// Quick retries, no hedging, `token`.
fn with_token(token: BearerToken) -> ClientOptions {
    ClientOptions {
        backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(5), 2.0).expect("valid"),
        hedging: None,
        token: Some(token),
        ..ClientOptions::default()
    }
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

#[tokio::test]
async fn every_attempt_and_health_watch_carries_the_token() {
    let server = ScriptedServer::start(unavailable_first, true).await;
    // Round robin: health is watched (pick_first watches none).
    let options =
        ClientOptions { lb: LoadBalancing::RoundRobin, ..with_token(BearerToken::new("t0k3n-A").expect("a token")) };
    let client = Client::new(&target(&server), options).expect("a client");
    assert_eq!(client.search(banana()).await.expect("answered on the retry").status, 1);
    assert_eq!(client.stats().attempts, 2, "the first attempt failed UNAVAILABLE");
    assert_eq!(server.authorizations(SEARCH_PATH), [bearer("t0k3n-A"), bearer("t0k3n-A")], "the retry too");
    let watches = server.authorizations(HEALTH_WATCH);
    assert!(!watches.is_empty() && watches.iter().all(|seen| *seen == bearer("t0k3n-A")), "{watches:?}");
    let scan = client.scan(ScanRequest { text: "banana".into() }).await.expect_err("the scripted server has no Scan");
    assert_eq!(scan.code(), Some(Code::Unimplemented));
    assert_eq!(server.authorizations(SCAN_PATH), [bearer("t0k3n-A")], "a streaming call too");
}

#[tokio::test]
async fn a_hedge_carries_the_token() {
    // Round robin over a server that never answers a Search and one that
    // does: each call that goes to the first is hedged to the second.
    let holding = ScriptedServer::start_holding().await;
    let answering = ScriptedServer::start(always_ok, false).await;
    let options = ClientOptions {
        lb: LoadBalancing::RoundRobin,
        hedging: Some(Hedging { max_attempts: 2, delay: HedgingDelay::Fixed(Duration::from_millis(10)) }),
        health_check: None,
        outlier_detection: None,
        ..with_token(BearerToken::new("t0k3n-H").expect("a token"))
    };
    let client = Client::new(&ipv4([holding.addr, answering.addr]), options).expect("a client");
    client.settle(Duration::from_secs(5)).await;
    for _ in 0..4 {
        assert_eq!(client.search(banana()).await.expect("the hedge answers").status, 1);
    }
    let stats = client.stats();
    assert!(stats.hedges > 0, "{stats:?}");
    // Every attempt the holding server got was hedged, or was a hedge.
    let held = holding.authorizations(SEARCH_PATH);
    assert_eq!(held.len() as u64, stats.hedges, "{stats:?}");
    let answered = answering.authorizations(SEARCH_PATH);
    assert_eq!(answered.len(), 4);
    assert!(held.iter().chain(&answered).all(|seen| *seen == bearer("t0k3n-H")), "{held:?} {answered:?}");
}

#[tokio::test]
async fn a_rotated_token_file_is_sent_from_the_next_call_on() {
    let server = ScriptedServer::start(always_ok, false).await;
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("token");
    std::fs::write(&path, "first-token\n").expect("write");
    let token = BearerToken::from_file(&path).expect("a token file");
    let client = Client::new(&target(&server), with_token(token)).expect("a client");
    client.search(banana()).await.expect("answered");
    // Rotated as the kubelet rotates a projected token: a new file in place.
    let next = dir.path().join("token.next");
    std::fs::write(&next, "second-token\n").expect("write");
    std::fs::rename(&next, &path).expect("rename");
    client.search(banana()).await.expect("answered");
    assert_eq!(server.authorizations(SEARCH_PATH), [bearer("first-token"), bearer("second-token")]);
}

#[tokio::test]
async fn a_refused_caller_is_neither_retried_nor_hedged() {
    for (script, code) in [
        (always_unauthenticated as fn(u64) -> _, Code::Unauthenticated),
        (always_permission_denied, Code::PermissionDenied),
    ] {
        let (first, second) = (ScriptedServer::start(script, false).await, ScriptedServer::start(script, false).await);
        // Retries and hedges on, over two servers; a hedge is due only after
        // the deadline, so that a second attempt can only be a retry, and a
        // call that went on waiting would end DEADLINE_EXCEEDED.
        let options = ClientOptions {
            timeout: Duration::from_secs(10),
            lb: LoadBalancing::RoundRobin,
            max_attempts: 5,
            hedging: Some(Hedging { max_attempts: 3, delay: HedgingDelay::Fixed(Duration::from_secs(60)) }),
            ..with_token(BearerToken::new("t0k3n-R").expect("a token"))
        };
        let client = Client::new(&ipv4([first.addr, second.addr]), options).expect("a client");
        client.settle(Duration::from_secs(5)).await;
        let err = client.search(banana()).await.expect_err("refused");
        assert_eq!(err.code(), Some(code), "{err}");
        let stats = client.stats();
        assert_eq!((stats.calls, stats.attempts, stats.hedges), (1, 1, 0), "{code:?}: {stats:?}");
        assert_eq!(first.calls() + second.calls(), 1, "{code:?}");
    }
}

#[tokio::test]
async fn a_client_refuses_a_token_over_plaintext_to_a_target_that_is_not_loopback() {
    let token = || BearerToken::new("t0k3n-P").expect("a token");
    let options = |token| ClientOptions { token: Some(token), ..ClientOptions::default() };
    let remote: Target = "example.com:80".parse().expect("a target");
    let err = Client::new(&remote, options(token())).expect_err("plaintext, not loopback");
    assert!(matches!(err, Error::TokenOverPlaintext { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "a token is not sent over plaintext to example.com:80, which is not loopback: call an https:// target, \
         or allow the token over plaintext"
    );
    Client::new(&remote, options(token().allowing_plaintext(true))).expect("allowed");
    Client::new(&remote, ClientOptions::default()).expect("no token, nothing to refuse");
    for allowed in ["https://example.com:443", "localhost:80", "127.0.0.1:80", "unix:/tmp/search.sock"] {
        Client::new(&allowed.parse().expect("a target"), options(token())).expect(allowed);
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn the_binary_sends_search_token_or_the_token_file_and_never_prints_it() {
    let server = ScriptedServer::start(unavailable_first, true).await;
    let port = server.addr.port();
    // -v with everything logged: the retry, the channel's events, and what
    // tonic, hyper and h2 say at their most verbose.
    for (n, target) in [format!("127.0.0.1:{port}"), format!("localhost:{port}")].iter().enumerate() {
        let env = [("SEARCH_TOKEN", "env-t0k3n"), ("RUST_LOG", "trace")];
        let args = ["-t", target, "-v", "--lb", "round_robin", "--hedging-delay", "off", "Banana"];
        let output = client(&args, &env).await;
        assert_eq!((output.status.code(), &*output.stdout), (Some(0), &b"status=1\n"[..]), "{}", stderr(&output));
        let retried = stderr(&output).contains("retrying");
        assert!(retried || n > 0, "-v showed the retry of the first call: {}", stderr(&output));
        assert!(!stderr(&output).contains("env-t0k3n"), "{}", stderr(&output));
    }
    let searched = server.authorizations(SEARCH_PATH);
    assert_eq!(searched, [bearer("env-t0k3n"), bearer("env-t0k3n"), bearer("env-t0k3n")], "the retry too");
    assert!(server.authorizations(HEALTH_WATCH).iter().all(|seen| *seen == bearer("env-t0k3n")));

    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("token");
    std::fs::write(&file, "file-t0k3n\n").expect("write");
    let file = file.to_str().expect("UTF-8");
    let target = server.addr.to_string();
    let output = client(&["-t", &target, "-v", "Banana"], &[("SEARCH_TOKEN_FILE", file)]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("file-t0k3n"), "{}", stderr(&output));
    assert_eq!(server.authorizations(SEARCH_PATH).last(), Some(&bearer("file-t0k3n")));

    let both = client(&["-t", &target, "--token-file", file, "Banana"], &[("SEARCH_TOKEN", "env-t0k3n")]).await;
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    std::fs::write(file, "not a token\n").expect("write");
    let bad = client(&["-t", &target, "--token-file", file, "Banana"], &[]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("has a character a bearer token cannot hold"), "{}", stderr(&bad));
    assert!(!stderr(&bad).contains("not a token"), "the token is never quoted: {}", stderr(&bad));
}

#[tokio::test]
async fn the_binary_refuses_a_token_over_plaintext_unless_the_flag_allows_it() {
    let server = ScriptedServer::start(always_ok, false).await;
    // 0.0.0.0 is not loopback by definition (it is the unspecified
    // address), yet Linux connects it to this machine: a stand-in for a
    // plaintext server elsewhere that keeps the test on loopback.
    let target = format!("0.0.0.0:{}", server.addr.port());
    let env = [("SEARCH_TOKEN", "t0k3n-Z")];
    let refused = client(&["-t", &target, "Banana"], &env).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let message = format!("the token is not sent over plaintext to {target}, which is not loopback");
    assert!(stderr(&refused).contains(&message), "{}", stderr(&refused));
    assert!(!stderr(&refused).contains("t0k3n-Z"), "{}", stderr(&refused));
    assert_eq!(server.calls(), 0, "nothing was sent");
    let allowed = client(&["-t", &target, "--allow-token-over-plaintext", "Banana"], &env).await;
    assert_eq!((allowed.status.code(), &*allowed.stdout), (Some(0), &b"status=1\n"[..]), "{}", stderr(&allowed));
    assert_eq!(server.authorizations(SEARCH_PATH), [bearer("t0k3n-Z")]);
    let without_token = client(&["-t", &target, "Banana"], &[]).await;
    assert_eq!(without_token.status.code(), Some(0), "no token, nothing to refuse: {}", stderr(&without_token));
}

#[tokio::test]
async fn a_refused_caller_gets_one_line_its_exit_code_and_one_attempt() {
    let cases = [
        (
            always_unauthenticated as fn(u64) -> _,
            Some("t0k3n-U"),
            80,
            "UNAUTHENTICATED: token expired (the server did not accept the token: give a valid, current one with --token-file or SEARCH_TOKEN)",
        ),
        (
            always_unauthenticated,
            None,
            80,
            "UNAUTHENTICATED: token expired (the server wants a token: give one with --token-file or SEARCH_TOKEN)",
        ),
        (
            always_permission_denied,
            Some("t0k3n-D"),
            71,
            "PERMISSION_DENIED: no rule allows this caller (the server's policy does not let this caller make this call: call as an identity it allows, or ask its operator to allow this one)",
        ),
        (
            always_permission_denied,
            None,
            71,
            "PERMISSION_DENIED: no rule allows this caller (the server's policy does not let a caller without a token make this call: give one with --token-file or SEARCH_TOKEN)",
        ),
    ];
    for (script, token, code, line) in cases {
        let (first, second) = (ScriptedServer::start(script, false).await, ScriptedServer::start(script, false).await);
        let target = format!("ipv4:{},{}", first.addr, second.addr);
        let env: Vec<(&str, &str)> = token.map(|token| ("SEARCH_TOKEN", token)).into_iter().collect();
        // Hedges due only after the deadline: a second attempt would be a retry.
        let args = ["-t", &target, "--lb", "round_robin", "--timeout", "10s", "--hedging-delay", "60s", "Banana"];
        let output = client(&args, &env).await;
        assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
        assert_eq!(stderr(&output), format!("client: {line}\n"), "one line");
        assert_eq!(first.calls() + second.calls(), 1, "one attempt: {line}");
        // With -v, the same line ends what it prints, and no token appears.
        let verbose = client(&[&args[..8], &["-v", "Banana"]].concat(), &env).await;
        assert_eq!(verbose.status.code(), Some(code), "{}", stderr(&verbose));
        let printed = stderr(&verbose);
        assert_eq!(printed.lines().last(), Some(format!("client: {line}").as_str()), "{printed}");
        assert!(token.is_none_or(|token| !printed.contains(token)), "{printed}");
        assert_eq!(first.calls() + second.calls(), 2, "one attempt again: {printed}");
    }
}
