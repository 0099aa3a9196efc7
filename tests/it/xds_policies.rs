//! What a Cluster resource says of its endpoints, applied by our client
//! over `xds:///` rather than its own flags: the cluster's weighted round
//! robin (gRFC A58 under A52's `wrr_locality`) following the replicas'
//! load reports; its outlier detection (A50) ejecting a replica that fails
//! its calls, and giving it back when the cluster drops the setting; ring
//! hash (A42) keeping each channel's calls on one endpoint; an
//! assignment's drop_overloads (A27) dropping their share unsent. And the
//! client's own health checking, hedging and transparent retries at work
//! under xDS. The management server changes the cluster while the client
//! runs; where calls went is the client's count of attempts per subchannel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use search::client::xds::ResourceType;
use search::client::{Backoff, Client, ClientOptions, ConnectivityState, Error, Target};
use search::pb::v1::SearchRequest;
use search::server::{Figures, Orca, OrcaSettings, ServerConfig};
use serde_json::{Value, json};
use tokio::time::Instant;
use tonic::Code;

use crate::common::scripted::{ScriptedServer, always_ok};
use crate::common::{self, TestServer};
use crate::xds::ControlPlane;

/// Listener `search` routing every call to cluster `main` over `servers`,
/// in one locality; `policy` merged into the cluster.
fn cluster(servers: &[TestServer], policy: &Value) -> Value {
    let endpoints: Vec<Value> = servers.iter().map(|s| json!({"address": s.addr.to_string()})).collect();
    let mut main = json!({"name": "main", "localities": [{"zone": "a", "endpoints": endpoints}]});
    for (key, value) in policy.as_object().expect("a cluster's fields") {
        main[key] = value.clone();
    }
    json!({
        "listeners": [{"name": "search", "port": 1, "routes": [{"match": {"prefix": "/"}, "cluster": "main"}]}],
        "clusters": [main]
    })
}

/// A client of `xds:///search`: one attempt a call, no hedge, a failed
/// endpoint dialed again within a fraction of a second. Its own outlier
/// detection is on (the default): under xDS the cluster's decides.
fn client(plane: &ControlPlane) -> Client {
    let target: Target = "xds:///search".parse().expect("an xds target");
    let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(100), 2.0).expect("a backoff");
    let options = ClientOptions {
        xds_bootstrap: Some(plane.bootstrap()),
        hedging: None,
        max_attempts: 1,
        backoff,
        ..ClientOptions::default()
    };
    Client::new(&target, options).expect("a client")
}

/// The attempts the client sent to each of `addrs`.
fn attempts(client: &Client, addrs: &[SocketAddr]) -> Vec<u64> {
    let backends = client.backends();
    addrs.iter().map(|addr| backends.iter().find(|b| b.address == addr.to_string()).map_or(0, |b| b.calls)).collect()
}

/// `calls` Search calls: the attempts each of `addrs` took, and how many
/// calls failed.
async fn spread(client: &Client, addrs: &[SocketAddr], calls: u64) -> (Vec<u64>, u64) {
    let before = attempts(client, addrs);
    let mut failed = 0;
    for _ in 0..calls {
        if client.search(SearchRequest { query: "Banana".into() }).await.is_err() {
            failed += 1;
        }
    }
    let after = attempts(client, addrs);
    (after.iter().zip(&before).map(|(a, b)| a - b).collect(), failed)
}

/// A replica reporting 100 queries a second at `utilization` in each
/// call's trailer: weight `100 / utilization`.
async fn reporting(utilization: f64) -> TestServer {
    let orca = Orca::new(OrcaSettings { figures: Figures::Given, min_interval: Duration::from_millis(50) });
    orca.update(|report| {
        report.rps_fractional = 100.0;
        report.application_utilization = utilization;
    });
    TestServer::start_with("127.0.0.1:0", ServerConfig { orca: Some(orca), ..ServerConfig::default() }).await
}

#[tokio::test]
async fn a_weighted_round_robin_cluster_follows_the_load_reports() {
    // Two busy replicas (weight 111) and an idle one (weight 1000).
    let servers = vec![reporting(0.9).await, reporting(0.9).await, reporting(0.1).await];
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let Some(plane) = ControlPlane::start(&cluster(&servers, &json!({}))).await else { return };
    let client = client(&plane);
    let (round_robin, failed) = spread(&client, &addrs, 300).await;
    println!("cluster main, round robin, 300 calls (busy, busy, idle): {round_robin:?}");
    assert_eq!(failed, 0);
    assert!(round_robin.iter().all(|n| (70..=130).contains(n)), "a turn each, reports or not: {round_robin:?}");

    let weighted = json!({
        "lb_policy": "weighted_round_robin",
        "weighted_round_robin": {"blackout_period": "0.1s", "weight_update_period": "0.1s"}
    });
    plane.rewrite(&cluster(&servers, &weighted));
    // Calls until the weights are in use (bounded: 3,000 calls or 10 s).
    let until = Instant::now() + Duration::from_secs(10);
    let mut warm = (vec![0; 3], 0);
    for _ in 0..30 {
        warm = spread(&client, &addrs, 100).await;
        if warm.0[2] > 70 || Instant::now() > until {
            break;
        }
    }
    println!("the last 100 calls before the weights count: {:?}", warm.0);
    const CALLS: u64 = 600;
    let (shares, failed) = spread(&client, &addrs, CALLS).await;
    println!("cluster main, weighted round robin, {CALLS} calls (busy, busy, idle): {shares:?}");
    assert_eq!(failed, 0);
    // 1000 / 1222 of the calls, about 82%, to the idle replica.
    assert!(shares[2] * 100 > CALLS * 65, "the idle replica takes most calls: {shares:?}");
    assert!(shares[2] > 3 * shares[0].max(shares[1]), "far more than a busy one: {shares:?}");
    assert!(shares[0] > 0 && shares[1] > 0, "the busy ones still take some: {shares:?}");
}

/// The subchannel of `addr`'s state.
fn state_of(client: &Client, addr: SocketAddr) -> Option<ConnectivityState> {
    client.backends().into_iter().find(|b| b.address == addr.to_string()).map(|b| b.state)
}

#[tokio::test]
async fn a_clusters_outlier_detection_ejects_a_failing_replica_and_only_while_it_has_it() {
    let good = TestServer::start().await;
    // Refuses every Search call it gets.
    let bad =
        TestServer::start_with("127.0.0.1:0", ServerConfig { fail_calls: u32::MAX, ..ServerConfig::default() }).await;
    let addrs = [good.addr, bad.addr];
    let servers = [good, bad];
    let Some(plane) = ControlPlane::start(&cluster(&servers, &json!({}))).await else { return };
    let client = client(&plane);

    // No outlier detection in the cluster: the client's own (a sweep a
    // second) is not used, so after 2.5 s the bad replica still fails
    // half the calls.
    let until = Instant::now() + Duration::from_millis(2500);
    let mut last = (vec![0; 2], 0);
    for _ in 0..100 {
        last = spread(&client, &addrs, 50).await;
        if Instant::now() > until {
            break;
        }
    }
    println!("no outlier detection in the cluster, the last 50 calls after 2.5 s: {:?}, {} failed", last.0, last.1);
    assert!(last.1 >= 10, "the bad replica keeps its share: {last:?}");

    let ejecting = json!({"outlier_detection": {
        "interval": "0.2s", "base_ejection_time": "30s", "max_ejection_percent": 50,
        "enforcing_success_rate": 0, "enforcing_failure_percentage": 100, "failure_percentage_threshold": 50,
        "failure_percentage_minimum_hosts": 2, "failure_percentage_request_volume": 10
    }});
    plane.rewrite(&cluster(&servers, &ejecting));
    let until = Instant::now() + Duration::from_secs(10);
    while state_of(&client, addrs[1]) != Some(ConnectivityState::TransientFailure) && Instant::now() < until {
        spread(&client, &addrs, 10).await;
    }
    let (shares, failed) = spread(&client, &addrs, 200).await;
    println!("the cluster's outlier detection on, 200 calls: {shares:?}, {failed} failed");
    assert_eq!((shares, failed), (vec![200, 0], 0), "the bad replica is ejected");

    // The cluster drops outlier detection: the ejection ends with it.
    plane.rewrite(&cluster(&servers, &json!({})));
    common::eventually("the bad replica back", || state_of(&client, addrs[1]) == Some(ConnectivityState::Ready)).await;
    let (shares, failed) = spread(&client, &addrs, 100).await;
    println!("outlier detection dropped, 100 calls: {shares:?}, {failed} failed");
    assert!(failed >= 25 && shares[1] == failed, "the bad replica takes calls again: {shares:?}, {failed}");
}

#[tokio::test]
async fn the_clients_health_checking_and_hedging_keep_working_under_xds() {
    let well = ScriptedServer::start(always_ok, true).await;
    let sick = ScriptedServer::start(always_ok, true).await;
    let hung = ScriptedServer::start_holding().await;
    let endpoints = |servers: &[&ScriptedServer]| -> Value {
        let endpoints: Vec<Value> = servers.iter().map(|s| json!({"address": s.addr.to_string()})).collect();
        json!({
            "listeners": [{"name": "search", "port": 1, "routes": [{"match": {"prefix": "/"}, "cluster": "main"}]}],
            "clusters": [{"name": "main", "localities": [{"zone": "a", "endpoints": endpoints}]}]
        })
    };
    let Some(plane) = ControlPlane::start(&endpoints(&[&well, &sick])).await else { return };
    let target: Target = "xds:///search".parse().expect("an xds target");
    // The defaults: health checking and hedging on.
    let options = ClientOptions {
        xds_bootstrap: Some(plane.bootstrap()),
        timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    let client = Client::new(&target, options).expect("a client");
    let search = || client.search(SearchRequest { query: "Banana".into() });
    search().await.expect("a first call");

    // Health checking (A17): a replica NOT_SERVING gets no call.
    sick.set_serving(false).await;
    common::eventually("the sick replica out", || {
        state_of(&client, sick.addr) == Some(ConnectivityState::TransientFailure)
    })
    .await;
    let (well_before, sick_before) = (well.calls(), sick.calls());
    for _ in 0..40 {
        search().await.expect("every call answered by the well replica");
    }
    println!("health checking under xds: well {} sick {}", well.calls() - well_before, sick.calls() - sick_before);
    assert_eq!((well.calls() - well_before, sick.calls() - sick_before), (40, 0));

    // Hedging: a replica that never answers costs a call its hedging delay,
    // not its deadline.
    plane.rewrite(&endpoints(&[&well, &hung]));
    common::eventually("the hung replica READY", || state_of(&client, hung.addr) == Some(ConnectivityState::Ready))
        .await;
    let well_before = well.calls();
    for _ in 0..40 {
        search().await.expect("every call answered, by a hedge when the first attempt hangs");
    }
    let held = hung.timeouts("/search.v1.SearchService/Search").len();
    println!("hedging under xds: 40 calls answered, {held} first attempts held by the hung replica");
    assert_eq!(well.calls() - well_before, 40);
    assert!(held > 0, "round robin gave the hung replica some first attempts");
}

/// Cluster `main` over `servers` by ring hash, its route hashing `hashing`.
fn ring(servers: &[TestServer], hashing: &Value) -> Value {
    let mut scenario = cluster(servers, &json!({"lb_policy": "ring_hash"}));
    scenario["listeners"][0]["routes"][0]["hash_policy"] = hashing.clone();
    scenario
}

#[tokio::test]
async fn a_ring_hash_cluster_keeps_each_channels_calls_on_one_endpoint() {
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(TestServer::start().await);
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let by_channel = json!([{"filter_state": {"key": "io.grpc.channel_id"}}]);
    let Some(plane) = ControlPlane::start(&ring(&servers, &by_channel)).await else { return };
    let mut chosen = Vec::new();
    for n in 0..4 {
        let (shares, failed) = spread(&client(&plane), &addrs, 30).await;
        println!("ring hash by channel, client {n}, 30 calls: {shares:?}");
        assert_eq!(failed, 0);
        assert!(shares.contains(&30), "every call of one channel to one endpoint: {shares:?}");
        chosen.push(shares.iter().position(|n| *n == 30));
    }
    println!("the endpoints the four channels hashed to: {chosen:?}");

    // No hash policy: a random hash per call, spread over the ring.
    plane.rewrite(&ring(&servers, &json!([])));
    let client = client(&plane);
    let (shares, failed) = spread(&client, &addrs, 400).await;
    println!("ring hash without a hash policy, 400 calls: {shares:?}");
    assert_eq!(failed, 0);
    assert!(shares.iter().all(|n| *n >= 40), "each endpoint takes a share: {shares:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_turned_away_by_a_rotating_replica_go_out_again_transparently_under_xds() {
    let _machine = common::loads_the_machine().await;
    // Replicas that age each connection out after 300 ms (a GOAWAY, the
    // close 10 s later): a call racing the GOAWAY is turned away unsent.
    let config = ServerConfig {
        max_connection_age: Duration::from_millis(300),
        max_connection_age_grace: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    let servers = vec![
        TestServer::start_with("127.0.0.1:0", config.clone()).await,
        TestServer::start_with("127.0.0.1:0", config).await,
    ];
    let Some(plane) = ControlPlane::start(&cluster(&servers, &json!({}))).await else { return };
    // One attempt a call: only a transparent retry may save one.
    let client = client(&plane);
    let (calls, failed) = common::searches_until(&client, 6, Instant::now() + Duration::from_secs(3), 20_000).await;
    let resent = client.stats().resent;
    println!("rotating replicas under xds: {calls} calls, {} failed, {resent} sent again", failed.len());
    assert!(calls > 200, "{calls} calls");
    assert!(failed.is_empty(), "{} of {calls} failed: {:?}", failed.len(), &failed[..failed.len().min(3)]);
    assert!(resent > 0, "the rotations turned calls away, which went out again: {:?}", client.stats());
}

#[tokio::test]
async fn an_assignments_drop_overloads_drop_their_share_of_calls_unsent() {
    let servers = vec![TestServer::start().await];
    let addrs = [servers[0].addr];
    let drops = |percent: u32| {
        let mut scenario = cluster(&servers, &json!({}));
        scenario["clusters"][0]["drop_overloads"] =
            json!([{"category": "throttle", "drop_percentage": {"numerator": percent, "denominator": "HUNDRED"}}]);
        scenario
    };
    let Some(plane) = ControlPlane::start(&drops(100)).await else { return };
    let client = client(&plane);
    let err = client.search(SearchRequest { query: "Banana".into() }).await.expect_err("every call dropped");
    println!("a call dropped: {err}");
    assert!(matches!(&err, Error::Rpc(status) if status.code() == Code::Unavailable), "{err:?}");
    assert!(err.to_string().contains("drop_overloads (category \"throttle\": 100% of calls)"), "{err}");
    assert_eq!(attempts(&client, &addrs), [0], "a dropped call is never sent");
    // A loop of calls that fail without waiting still lets the runtime's
    // other tasks run (this test's runtime has one thread).
    let other = Arc::new(AtomicBool::new(false));
    let ran = Arc::clone(&other);
    tokio::spawn(async move { ran.store(true, Ordering::SeqCst) });
    let mut calls = 0;
    while !other.load(Ordering::SeqCst) && calls < 10_000 {
        let _ = client.search(SearchRequest { query: "Banana".into() }).await;
        calls += 1;
    }
    println!("another task ran after {calls} dropped calls in a loop");
    assert!(other.load(Ordering::SeqCst), "10,000 dropped calls in a loop never let another task run");

    plane.rewrite(&drops(25));
    let updated = |client: &Client| {
        let dump = client.xds_dump().unwrap_or_default();
        dump.iter().any(|e| e.kind == ResourceType::ClusterLoadAssignment && e.state.version != "1")
    };
    common::eventually("the new assignment", || updated(&client)).await;
    const CALLS: u64 = 400;
    let (sent, failed) = spread(&client, &addrs, CALLS).await;
    println!("25% dropped, {CALLS} calls: {failed} failed, {} sent", sent[0]);
    // 100 expected; its standard deviation is 8.7.
    assert!((60..=140).contains(&failed), "about a quarter dropped: {failed}");
    assert_eq!(sent[0] + failed, CALLS, "a dropped call is never sent, every other is");
}
