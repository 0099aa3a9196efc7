//! The client over an `xds:///` target, against the tests' management
//! server (`peers/xds/control_plane.py`) and our own servers as replicas:
//! calls routed by path to weighted clusters in their shares, the
//! endpoints EDS gives followed as the scenario changes, a Listener gone
//! failing calls UNAVAILABLE with its name, and the binary's usage errors.
//! Where calls went is read from each replica's own `/metrics`.

use search::client::xds::{ResourceType, Status};
use std::net::SocketAddr;
use std::time::Duration;

use search::client::{Backoff, Client, ClientOptions, ConnectivityState, Error, Metadata, Target};
use search::pb::v1::SearchRequest;
use search::server::ServerConfig;
use serde_json::{Value, json};
use tonic::Code;

use crate::common::scripted::{self, ScriptedServer};
use crate::common::{self, TestServer};
use crate::xds::ControlPlane;

async fn replicas(n: usize) -> Vec<TestServer> {
    let config = || ServerConfig { metrics_listen: Some("127.0.0.1:0".into()), ..ServerConfig::default() };
    let mut servers = Vec::new();
    for _ in 0..n {
        servers.push(TestServer::start_with("127.0.0.1:0", config()).await);
    }
    servers
}

/// One locality holding `servers`.
fn locality(servers: &[&TestServer]) -> Value {
    let endpoints: Vec<Value> = servers.iter().map(|s| json!({"address": s.addr.to_string()})).collect();
    json!([{"zone": "a", "endpoints": endpoints}])
}

/// Listener `search`, its routes by RDS: a route for another service
/// first (to a cluster that does not exist), then `search.v1.` to `to`.
fn scenario(to: &Value, main: &[&TestServer], canary: &[&TestServer]) -> Value {
    let mut search = json!({"match": {"prefix": "/search.v1."}});
    for (key, value) in to.as_object().expect("a route's target") {
        search[key] = value.clone();
    }
    json!({
        "listeners": [{"name": "search", "port": 1, "rds": "search-routes", "routes": [
            {"match": {"prefix": "/elsewhere.v1."}, "cluster": "elsewhere"},
            search
        ]}],
        "clusters": [
            {"name": "main", "localities": locality(main)},
            {"name": "canary", "localities": locality(canary)}
        ]
    })
}

/// A client of `xds:///search` that redials a failed endpoint within a
/// fraction of a second, one attempt a call (a hedge would add calls out
/// of the shares).
fn client(plane: &ControlPlane) -> Client {
    let target: Target = "xds:///search".parse().expect("an xds target");
    let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(100), 2.0).expect("a backoff");
    let options =
        ClientOptions { xds_bootstrap: Some(plane.bootstrap()), hedging: None, backoff, ..ClientOptions::default() };
    Client::new(&target, options).expect("a client")
}

async fn searches(servers: &[TestServer]) -> Vec<u64> {
    let mut counts = Vec::new();
    for server in servers {
        counts.push(server.searches().await);
    }
    counts
}

/// `calls` Search calls, each answered; the calls each replica took.
async fn spread(client: &Client, servers: &[TestServer], calls: u64) -> Vec<u64> {
    let before = searches(servers).await;
    for _ in 0..calls {
        let answer = client.search(SearchRequest { query: "Banana".into() }).await.expect("no call fails");
        assert_eq!(answer.status, 1);
    }
    let after = searches(servers).await;
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

#[tokio::test]
async fn calls_take_the_weighted_clusters_shares_and_follow_eds() {
    let servers = replicas(3).await;
    let [a, b, c] = [&servers[0], &servers[1], &servers[2]];
    let Some(plane) =
        ControlPlane::start(&scenario(&json!({"weighted_clusters": {"main": 80, "canary": 20}}), &[a, b], &[c])).await
    else {
        return;
    };
    let client = client(&plane);
    const CALLS: u64 = 400;
    let shares = spread(&client, &servers, CALLS).await;
    println!(
        "xds:///search, main 80 (a, b) / canary 20 (c), {CALLS} calls: a {} b {} c {}",
        shares[0], shares[1], shares[2]
    );
    assert_eq!(shares.iter().sum::<u64>(), CALLS, "every call went to a replica once");
    // 80 expected; its standard deviation is 8: this is 5 of them.
    assert!((40..=120).contains(&shares[2]), "canary took {} of {CALLS}, not about 20%", shares[2]);
    assert!(shares[0] > 100 && shares[1] > 100, "main's two endpoints share its calls: {shares:?}");

    // main now only c, and the route to main alone: a and b get no call.
    plane.rewrite(&scenario(&json!({"cluster": "main"}), &[c], &[a]));
    let only_c = |client: &Client| {
        let backends = client.backends();
        backends.len() == 1 && backends[0].address == c.addr.to_string()
    };
    common::eventually("the channel holds c alone", || only_c(&client)).await;
    let shares = spread(&client, &servers, 50).await;
    println!("after the update, 50 calls: a {} b {} c {}", shares[0], shares[1], shares[2]);
    assert_eq!(shares, [0, 0, 50], "calls go where EDS says after the update");
}

#[tokio::test]
async fn a_listener_removed_fails_calls_unavailable_naming_it() {
    let servers = replicas(1).await;
    let Some(plane) = ControlPlane::start(&scenario(&json!({"cluster": "main"}), &[&servers[0]], &[&servers[0]])).await
    else {
        return;
    };
    let client = client(&plane);
    assert_eq!(spread(&client, &servers, 3).await, [3]);
    plane.rewrite(&json!({"listeners": [], "clusters": []}));
    let gone = |client: &Client| {
        let dump = client.xds_dump().unwrap_or_default();
        dump.iter().any(|e| e.kind == ResourceType::Listener && e.state.status == Status::DoesNotExist)
    };
    common::eventually("the Listener does not exist", || gone(&client)).await;
    let err = client.search(SearchRequest { query: "Banana".into() }).await.expect_err("no Listener");
    println!("a call without its Listener: {err}");
    assert!(matches!(&err, Error::Rpc(status) if status.code() == Code::Unavailable), "{err:?}");
    assert!(err.to_string().contains("Listener \"search\" does not exist"), "{err}");
}

#[tokio::test]
async fn the_binary_refuses_an_authority_and_a_missing_bootstrap_as_usage_errors() {
    let env = [("GRPC_XDS_BOOTSTRAP", ""), ("GRPC_XDS_BOOTSTRAP_CONFIG", "")];
    let out = common::client_with_env(&["-t", "xds://td.example/search", "Banana"], &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("write xds:///NAME"), "{stderr}");
    let out = common::client_with_env(&["-t", "xds:///search", "Banana"], &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("xds:///search needs grpc's xDS bootstrap"), "{stderr}");
}

/// Cluster `main` of `localities` (each: zone, priority, weight, replicas,
/// and the health EDS gives them), all of `search.v1.` routed to it.
fn prioritized(localities: &[(&str, u32, u32, &[&TestServer], &str)]) -> Value {
    let localities: Vec<Value> = localities
        .iter()
        .map(|(zone, priority, weight, servers, health)| {
            let endpoints: Vec<Value> =
                servers.iter().map(|s| json!({"address": s.addr.to_string(), "health": health})).collect();
            json!({"zone": zone, "priority": priority, "weight": weight, "endpoints": endpoints})
        })
        .collect();
    json!({
        "listeners": [{"name": "search", "port": 1, "routes": [{"match": {"prefix": "/"}, "cluster": "main"}]}],
        "clusters": [{"name": "main", "localities": localities}]
    })
}

fn state_of(client: &Client, addr: SocketAddr) -> Option<ConnectivityState> {
    client.backends().into_iter().find(|b| b.address == addr.to_string()).map(|b| b.state)
}

#[tokio::test]
async fn the_first_priority_with_a_live_endpoint_takes_the_calls_and_unhealthy_endpoints_none() {
    let mut servers = replicas(3).await;
    let scenario = {
        let [a, b, c] = [&servers[0], &servers[1], &servers[2]];
        prioritized(&[("a", 0, 1, &[a], "HEALTHY"), ("u", 0, 1, &[c], "UNHEALTHY"), ("b", 1, 1, &[b], "UNKNOWN")])
    };
    let Some(plane) = ControlPlane::start(&scenario).await else { return };
    let client = client(&plane);
    let shares = spread(&client, &servers, 30).await;
    println!("priority 0 (a; c UNHEALTHY), priority 1 (b), 30 calls: a {} b {} c {}", shares[0], shares[1], shares[2]);
    assert_eq!(shares, [30, 0, 0], "priority 0's one usable endpoint takes every call");

    // a stops: priority 1 takes over.
    let addr = servers[0].addr;
    servers.remove(0).stop().await;
    let failed = |client: &Client| state_of(client, addr) == Some(ConnectivityState::TransientFailure);
    common::eventually("a failed", || failed(&client)).await;
    let shares = spread(&client, &servers, 30).await;
    println!("a down, 30 calls: b {} c {}", shares[0], shares[1]);
    assert_eq!(shares, [30, 0], "priority 1 takes the calls while priority 0 has failed");

    // a comes back on its address: priority 0 takes the calls again.
    let config = ServerConfig { metrics_listen: Some("127.0.0.1:0".into()), ..ServerConfig::default() };
    servers.insert(0, TestServer::start_with(&addr.to_string(), config).await);
    common::eventually("a READY again", || state_of(&client, addr) == Some(ConnectivityState::Ready)).await;
    let shares = spread(&client, &servers, 30).await;
    println!("a back, 30 calls: a {} b {} c {}", shares[0], shares[1], shares[2]);
    assert_eq!(shares, [30, 0, 0], "priority 0 takes the calls back");
}

#[tokio::test]
async fn localities_of_a_priority_take_calls_by_their_weights() {
    let servers = replicas(3).await;
    let [a, b, c] = [&servers[0], &servers[1], &servers[2]];
    let Some(plane) =
        ControlPlane::start(&prioritized(&[("a", 0, 3, &[a, b], "HEALTHY"), ("c", 0, 1, &[c], "HEALTHY")])).await
    else {
        return;
    };
    let client = client(&plane);
    // Every endpoint READY first, so that the weights alone decide.
    client.reach().await.expect("reaches a replica");
    common::eventually("every endpoint READY", || {
        servers.iter().all(|s| state_of(&client, s.addr) == Some(ConnectivityState::Ready))
    })
    .await;
    const CALLS: u64 = 400;
    let shares = spread(&client, &servers, CALLS).await;
    println!(
        "locality a (a, b) weight 3, locality c (c) weight 1, {CALLS} calls: a {} b {} c {}",
        shares[0], shares[1], shares[2]
    );
    // c's 100 expected; standard deviation 8.7: this is about 4.5 of them.
    assert!((60..=140).contains(&shares[2]), "locality c took {} of {CALLS}, not about a quarter", shares[2]);
    assert!(shares[0] > 100 && shares[1] > 100, "round robin within locality a: {shares:?}");
}

#[tokio::test]
async fn the_routes_max_stream_duration_caps_the_calls_deadline() {
    let holding = ScriptedServer::start_holding().await;
    let route = json!({"match": {"prefix": "/"}, "cluster": "main", "max_stream_duration": "0.3s"});
    let Some(plane) = ControlPlane::start(&json!({
        "listeners": [{"name": "search", "port": 1, "routes": [route]}],
        "clusters": [{"name": "main", "localities": [{"zone": "a", "endpoints": [{"address": holding.addr.to_string()}]}]}]
    }))
    .await else { return };
    // The client's own timeout (20 s) is far longer than the route's cap.
    let err = client(&plane).search(SearchRequest { query: "Banana".into() }).await.expect_err("never answered");
    let sent = holding.timeouts("/search.v1.SearchService/Search");
    println!("a call capped by its route: {err}; grpc-timeout sent: {sent:?}");
    // The error names the deadline the call had: the route's.
    assert!(matches!(err, Error::DeadlineExceeded { timeout, .. } if timeout == Duration::from_millis(300)), "{err:?}");
    let micros = |t: &str| match t.split_at(t.len() - 1) {
        (n, "u") => n.parse::<u64>().ok(),
        (n, "m") => n.parse::<u64>().ok().map(|n| n * 1000),
        (n, "S") => n.parse::<u64>().ok().map(|n| n * 1_000_000),
        _ => None,
    };
    let first = sent.first().cloned().flatten().and_then(|t| micros(&t)).expect("a grpc-timeout");
    assert!(first <= 300_000, "the route's 0.3s caps the client's 20s: grpc-timeout {first}us");
}

#[tokio::test]
async fn a_cluster_over_its_max_requests_fails_the_call_unavailable() {
    let holding = ScriptedServer::start_holding().await;
    let endpoints = json!([{"zone": "a", "endpoints": [{"address": holding.addr.to_string()}]}]);
    let Some(plane) = ControlPlane::start(&json!({
        "listeners": [{"name": "search", "port": 1, "routes": [{"match": {"prefix": "/"}, "cluster": "main"}]}],
        "clusters": [{"name": "main", "max_requests": 1, "localities": endpoints}]
    }))
    .await
    else {
        return;
    };
    let client = client(&plane);
    let held = tokio::spawn({
        let client = client.clone();
        async move { client.search(SearchRequest { query: "Banana".into() }).await }
    });
    let one_under_way = || holding.calls() == 1;
    common::eventually("the first call under way", one_under_way).await;
    let before = client.stats();
    let err = client.search(SearchRequest { query: "Banana".into() }).await.expect_err("over max_requests");
    let attempts = client.stats().since(&before).attempts;
    println!("a second call with max_requests 1: {err}; {attempts} attempts");
    assert_eq!(attempts, 0, "a drop fails at once, never sent again after a backoff");
    assert!(matches!(&err, Error::Rpc(status) if status.code() == Code::Unavailable), "{err:?}");
    assert!(err.to_string().contains("max_requests (1)"), "{err}");
    assert_eq!(holding.calls(), 1, "the second call never reached the server");
    held.abort();
}

#[tokio::test]
async fn xds_status_prints_every_resource_the_client_holds() {
    let servers = replicas(1).await;
    let Some(plane) = ControlPlane::start(&scenario(&json!({"cluster": "main"}), &[&servers[0]], &[&servers[0]])).await
    else {
        return;
    };
    let env = [("GRPC_XDS_BOOTSTRAP", ""), ("GRPC_XDS_BOOTSTRAP_CONFIG", &plane.bootstrap_json() as &str)];
    let out = common::client_with_env(&["-t", "xds:///search", "xds-status"], &env).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let dump: Vec<Value> = serde_json::from_str(&stdout).expect("a JSON list");
    let held: Vec<String> =
        dump.iter().map(|e| format!("{} {} {}", e["type"], e["name"], e["status"]).replace('"', "")).collect();
    println!("client xds-status: {held:?}");
    for expected in ["search ACKED", "search-routes ACKED", "main ACKED", "elsewhere DOES_NOT_EXIST"] {
        assert!(held.iter().any(|h| h.ends_with(expected)), "{expected} in {held:?}");
    }
    assert_eq!(held.len(), 5, "LDS, RDS, two CDS and main's EDS: {held:?}");
    let out = common::client_with_env(&["-t", "127.0.0.1:1", "xds-status"], &env).await;
    assert_eq!(out.status.code(), Some(2), "an xds:/// target only");
}

#[tokio::test]
async fn the_routes_retry_policy_replaces_the_clients() {
    let failing = ScriptedServer::start(scripted::always_unavailable, false).await;
    let retry = json!({"retry_on": "unavailable", "num_retries": 1, "retry_back_off": {"base_interval": "0.01s"}});
    let Some(plane) = ControlPlane::start(&json!({
        "listeners": [{"name": "search", "port": 1,
                       "routes": [{"match": {"prefix": "/"}, "cluster": "main", "retry_policy": retry}]}],
        "clusters": [{"name": "main", "localities": [{"zone": "a", "endpoints": [{"address": failing.addr.to_string()}]}]}]
    }))
    .await else { return };
    // The client's own --max-attempts is 5; the route's num_retries 1 makes it 2.
    let err = client(&plane).search(SearchRequest { query: "Banana".into() }).await.expect_err("always UNAVAILABLE");
    println!("a call under a route's retry policy of 1 retry: {err}; the server saw {} attempts", failing.calls());
    assert!(matches!(&err, Error::Rpc(status) if status.code() == Code::Unavailable), "{err:?}");
    assert_eq!(failing.calls(), 2, "the route's num_retries 1: two attempts, not the client's five");
}

#[tokio::test]
async fn a_route_matching_a_header_takes_the_calls_that_carry_it() {
    let servers = replicas(2).await;
    let [main, canary] = [&servers[0], &servers[1]];
    let blue = json!({"prefix": "/", "headers": [{"name": "x-shard", "string_match": {"exact": "blue"}}]});
    let Some(plane) = ControlPlane::start(&json!({
        "listeners": [{"name": "search", "port": 1, "routes": [
            {"match": blue, "cluster": "canary"},
            {"match": {"prefix": "/"}, "cluster": "main"}
        ]}],
        "clusters": [
            {"name": "main", "localities": locality(&[main])},
            {"name": "canary", "localities": locality(&[canary])}
        ]
    }))
    .await
    else {
        return;
    };
    let with = |header: &[&str]| {
        let target: Target = "xds:///search".parse().expect("an xds target");
        let metadata = Metadata::parse(header.iter().copied()).expect("valid headers");
        let options = ClientOptions {
            xds_bootstrap: Some(plane.bootstrap()),
            hedging: None,
            metadata,
            ..ClientOptions::default()
        };
        Client::new(&target, options).expect("a client")
    };
    const CALLS: u64 = 20;
    let shares = spread(&with(&["x-shard: blue"]), &servers, CALLS).await;
    println!("x-shard: blue, {CALLS} calls: main {} canary {}", shares[0], shares[1]);
    assert_eq!(shares, [0, CALLS], "the header's route takes every call that carries it");
    let shares = spread(&with(&[]), &servers, CALLS).await;
    println!("no header, {CALLS} calls: main {} canary {}", shares[0], shares[1]);
    assert_eq!(shares, [CALLS, 0], "a call without it falls through to main");
    let shares = spread(&with(&["x-shard: green", "x-other: blue"]), &servers, CALLS).await;
    assert_eq!(shares, [CALLS, 0], "another value, or the value under another name, does not match");

    // The binary's -H, the same way.
    let bootstrap = plane.bootstrap_json();
    let env = [("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap.as_str())];
    let before = searches(&servers).await;
    for header in ["x-shard: blue", "x-shard: green"] {
        let out = common::client_with_env(&["-t", "xds:///search", "-H", header, "Banana"], &env).await;
        assert_eq!((out.status.code(), &out.stdout[..]), (Some(0), &b"status=1\n"[..]), "{out:?}");
    }
    let after = searches(&servers).await;
    assert_eq!([after[0] - before[0], after[1] - before[1]], [1, 1], "blue to canary, green to main");
}
