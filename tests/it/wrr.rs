//! Weighted round robin (gRFC A58) over real servers with load reports:
//! three replicas reporting given figures, two of them busy; once the
//! weights are known (short blackout and update periods), the calls follow
//! them, whether the reports come in each call's trailer or on the
//! out-of-band stream, and from the end of the blackout, not the next
//! update period; servers without reports keep round robin. Where
//! calls went is the client's count of attempts per subchannel; the
//! weights known is `-v`'s weight events.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use search::client::{Client, ClientOptions, ConnectivityState, Event, LoadBalancing, WeightSettings};
use search::pb::v1::{ScanRequest, SearchRequest};
use search::server::{Figures, Orca, OrcaSettings, ServerConfig};
use tokio::time::Instant;

use crate::common::scripted::{ScriptedServer, always_ok, always_unavailable};
use crate::common::{self, TestServer};

/// Calls counted once the weights are known.
const CALLS: u64 = 600;

/// A replica reporting `figures`, served `qps` at `utilization`; `None`:
/// no load reports at all.
async fn replica(figures: Option<Figures>, qps: f64, utilization: f64) -> TestServer {
    let Some(figures) = figures else { return TestServer::start().await };
    let orca = Orca::new(OrcaSettings { figures, min_interval: Duration::from_millis(50) });
    orca.update(|report| {
        report.rps_fractional = qps;
        report.application_utilization = utilization;
    });
    TestServer::start_with("127.0.0.1:0", ServerConfig { orca: Some(orca), ..ServerConfig::default() }).await
}

/// Three replicas: the first two busy (90% for 100 queries a second:
/// weight 111), the third not (10%: weight 1000).
async fn one_idle_of_three(figures: Figures) -> Vec<TestServer> {
    vec![
        replica(Some(figures), 100.0, 0.9).await,
        replica(Some(figures), 100.0, 0.9).await,
        replica(Some(figures), 100.0, 0.1).await,
    ]
}

/// The servers' addresses.
fn addrs(servers: &[TestServer]) -> Vec<SocketAddr> {
    servers.iter().map(|server| server.addr).collect()
}

/// A weighted round robin client over `servers`: its weights in use 100 ms
/// after the first report; one attempt a call (a hedge goes elsewhere out of
/// turn). The weights it shows are recorded.
async fn client(addrs: &[SocketAddr], oob: bool) -> (Client, Arc<Mutex<HashMap<String, f64>>>) {
    let weights = WeightSettings {
        blackout_period: Duration::from_millis(100),
        weight_update_period: Duration::from_millis(100),
        enable_oob_load_report: oob,
        oob_reporting_period: Duration::from_millis(50),
        ..WeightSettings::default()
    };
    client_with(addrs, weights).await
}

/// A weighted round robin client over `addrs` with `weights`, as [`client`].
async fn client_with(addrs: &[SocketAddr], weights: WeightSettings) -> (Client, Arc<Mutex<HashMap<String, f64>>>) {
    let options =
        ClientOptions { lb: LoadBalancing::WeightedRoundRobin, weights, hedging: None, ..ClientOptions::default() };
    let target = common::ipv4(addrs.iter().copied());
    let client = Client::connect_with(&target, options).await.expect("connects");
    let shown = Arc::new(Mutex::new(HashMap::new()));
    let seen = Arc::clone(&shown);
    client.watch_subchannels(Box::new(move |event| {
        if let Event::Weight { address, weight } = event {
            seen.lock().expect("not poisoned").insert(address.clone(), *weight);
        }
    }));
    client.settle(Duration::from_secs(5)).await;
    (client, shown)
}

/// Drops the client, then stops the servers (no connection left to drain).
async fn stop(client: Client, servers: Vec<TestServer>) {
    drop(client);
    for server in servers {
        server.stop().await;
    }
}

async fn search(client: &Client) {
    let answer = client.search(SearchRequest { query: "Banana".into() }).await.expect("no Search call fails");
    assert_eq!(answer.status, 1);
}

/// Calls until `known` subchannels show a weight (bounded: 5,000 calls or
/// 10 s), then the calls of [`CALLS`] more, per server in `servers`' order.
async fn shares(client: &Client, shown: &Mutex<HashMap<String, f64>>, known: usize, addrs: &[SocketAddr]) -> Vec<u64> {
    let until = Instant::now() + Duration::from_secs(10);
    for _ in 0..5_000 {
        if shown.lock().expect("not poisoned").values().filter(|weight| **weight > 0.0).count() >= known
            || Instant::now() > until
        {
            break;
        }
        search(client).await;
    }
    let weights = shown.lock().expect("not poisoned").clone();
    assert!(weights.values().filter(|weight| **weight > 0.0).count() >= known, "weights shown: {weights:?}");
    let calls = |client: &Client| -> Vec<u64> {
        let backends = client.backends();
        addrs
            .iter()
            .map(|addr| {
                let address = addr.to_string();
                backends.iter().find(|backend| backend.address == address).map_or(0, |backend| backend.calls)
            })
            .collect()
    };
    let before = calls(client);
    for _ in 0..CALLS {
        search(client).await;
    }
    calls(client).iter().zip(&before).map(|(after, before)| after - before).collect()
}

/// The idle replica takes most calls: its weight is 9 times the others',
/// so about 82% (asserted: over 60%, and over three times either other's).
fn assert_follows_the_weights(shares: &[u64]) {
    println!("calls per replica (busy, busy, idle): {shares:?}");
    let (busy, idle) = (shares[0].max(shares[1]), shares[2]);
    assert!(idle * 100 > CALLS * 60, "the idle replica takes most calls: {shares:?}");
    assert!(idle > 3 * busy, "and far more than a busy one: {shares:?}");
    assert!(shares[0] > 0 && shares[1] > 0, "the busy ones still take some: {shares:?}");
}

#[tokio::test]
async fn calls_follow_the_weights_from_each_call_s_report() {
    let servers = one_idle_of_three(Figures::Given).await;
    let (client, shown) = client(&addrs(&servers), false).await;
    let shares = shares(&client, &shown, 3, &addrs(&servers)).await;
    assert_follows_the_weights(&shares);
    let weights = shown.lock().expect("not poisoned").clone();
    let idle = weights[&servers[2].addr.to_string()];
    assert!((idle - 1000.0).abs() < 1.0, "qps / utilization: {weights:?}");
    stop(client, servers).await;
}

#[tokio::test]
async fn a_weight_counts_once_its_blackout_ends_not_at_the_next_update() {
    // The weights are read every minute, and the blackout is 100 ms: the
    // calls follow the weights within the test's 10 s all the same.
    let servers = one_idle_of_three(Figures::Given).await;
    let weights = WeightSettings {
        blackout_period: Duration::from_millis(100),
        weight_update_period: Duration::from_secs(60),
        ..WeightSettings::default()
    };
    let began = Instant::now();
    let (client, shown) = client_with(&addrs(&servers), weights).await;
    let shares = shares(&client, &shown, 3, &addrs(&servers)).await;
    assert_follows_the_weights(&shares);
    assert!(began.elapsed() < Duration::from_secs(60), "before the first update: {:?}", began.elapsed());
    stop(client, servers).await;
}

#[tokio::test]
async fn calls_follow_the_weights_from_the_out_of_band_stream() {
    // Set figures go only on the out-of-band stream: no call's trailer has
    // them.
    let servers = one_idle_of_three(Figures::Set).await;
    let (client, shown) = client(&addrs(&servers), true).await;
    let shares = shares(&client, &shown, 3, &addrs(&servers)).await;
    assert_follows_the_weights(&shares);
    stop(client, servers).await;
}

#[tokio::test]
async fn a_server_without_reports_takes_the_mean_weight_s_share() {
    // Weights 111 and 1000 known; the silent one takes their mean, 555:
    // shares of about 7%, 60% and 33%.
    let servers = vec![
        replica(Some(Figures::Given), 100.0, 0.9).await,
        replica(Some(Figures::Given), 100.0, 0.1).await,
        replica(None, 0.0, 0.0).await,
    ];
    let (client, shown) = client(&addrs(&servers), false).await;
    let shares = shares(&client, &shown, 2, &addrs(&servers)).await;
    println!("calls per replica (busy, idle, silent): {shares:?}");
    let [busy, idle, silent] = shares[..] else { panic!("three replicas") };
    assert!(idle > silent && silent > busy, "by weight: {shares:?}");
    assert!((CALLS * 20..=CALLS * 45).contains(&(silent * 100)), "the silent one about a third: {shares:?}");
    stop(client, servers).await;
}

#[tokio::test]
async fn with_one_weight_known_calls_go_round_robin() {
    // A weight known for one replica only: fewer than two, round robin,
    // however idle it says it is.
    let servers = vec![
        replica(Some(Figures::Given), 100.0, 0.01).await,
        replica(Some(Figures::Given), 0.0, 0.0).await,
        replica(None, 0.0, 0.0).await,
    ];
    let (client, shown) = client(&addrs(&servers), false).await;
    let shares = shares(&client, &shown, 1, &addrs(&servers)).await;
    println!("calls per replica (reporting, no figures, silent): {shares:?}");
    for share in &shares {
        assert!(share.abs_diff(CALLS / 3) <= 2, "an even turn each: {shares:?}");
    }
    stop(client, servers).await;
}

#[tokio::test]
async fn verbose_shows_each_weight_and_a_bench_follows_them() {
    let servers = one_idle_of_three(Figures::Given).await;
    let target = common::ipv4(servers.iter().map(|server| server.addr)).to_string();
    let args = [
        "-v",
        "-t",
        &target,
        "--lb",
        "weighted_round_robin",
        "--wrr-blackout-period",
        "100ms",
        "--wrr-weight-update-period",
        "100ms",
        "--hedging-delay",
        "off",
        "--json",
        "bench",
        "-n",
        "5000",
        "-c",
        "2",
        "-z",
        "20s",
    ];
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_client")).args(args).output().await.expect("runs");
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{log}");
    for (server, weight) in servers.iter().zip(["111.1", "111.1", "1000.0"]) {
        let line = format!("client: subchannel {} weight {weight}\n", server.addr);
        assert!(log.contains(&line), "{line:?} in {log}");
    }
    let report: search::cli::bench::Report = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let calls = |server: &TestServer| report.backends.get(&server.addr.to_string()).copied().unwrap_or(0);
    println!("bench calls per replica: {:?}", servers.iter().map(calls).collect::<Vec<_>>());
    assert!(calls(&servers[2]) > calls(&servers[0]).max(calls(&servers[1])), "{:?}", report.backends);
    for server in servers {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checking_and_outlier_detection_act_under_it() {
    let _machine = common::needs_a_quiet_machine().await;
    let weighted = [replica(Some(Figures::Given), 100.0, 0.9).await, replica(Some(Figures::Given), 100.0, 0.1).await];
    // Neither reports: each takes the mean weight.
    let flipping = ScriptedServer::start(always_ok, true).await;
    let failing = ScriptedServer::start(always_unavailable, false).await;
    let all = [weighted[0].addr, weighted[1].addr, flipping.addr, failing.addr];
    let (client, shown) = client(&all, false).await;
    // Calls until the failing one is ejected (bounded); its calls are
    // retried elsewhere while the retry budget lasts.
    for _ in 0..2_000 {
        if client.stats().ejections > 0 {
            break;
        }
        let _ = client.search(SearchRequest { query: "Banana".into() }).await;
    }
    assert!(client.stats().ejections > 0, "the failing replica is ejected: {:?}", client.backends());
    flipping.set_serving(false).await;
    let flipped = flipping.addr.to_string();
    let watcher = client.clone();
    common::eventually("the NOT_SERVING replica is out", move || {
        watcher.backends().iter().any(|b| b.address == flipped && b.state == ConnectivityState::TransientFailure)
    })
    .await;
    let (flipped_before, failing_before) = (flipping.calls(), failing.calls());
    let shares = shares(&client, &shown, 2, &all).await;
    println!("calls per replica (busy, idle, not serving, ejected): {shares:?}");
    assert_eq!(flipping.calls() - flipped_before, 0, "none to the NOT_SERVING one: {shares:?}");
    assert_eq!(failing.calls() - failing_before, 0, "none to the ejected one: {shares:?}");
    assert!(shares[1] > 3 * shares[0] && shares[0] > 0, "the rest by weight: {shares:?}");
    drop(client);
    for server in weighted {
        server.stop().await;
    }
}

#[tokio::test]
async fn a_streaming_call_s_trailer_reports_too() {
    // Only Scan calls: their reports come in the trailers at their ends.
    let servers = one_idle_of_three(Figures::Given).await;
    let (client, shown) = client(&addrs(&servers), false).await;
    let until = Instant::now() + Duration::from_secs(10);
    for _ in 0..2_000 {
        if shown.lock().expect("not poisoned").values().filter(|weight| **weight > 0.0).count() == 3
            || Instant::now() > until
        {
            break;
        }
        let mut answers = client.scan(ScanRequest { text: "banana banana".into() }).await.expect("scans");
        while answers.message().await.expect("no Scan fails").is_some() {}
    }
    let weights = shown.lock().expect("not poisoned").clone();
    let idle = weights.get(&servers[2].addr.to_string()).copied().unwrap_or_default();
    assert!((idle - 1000.0).abs() < 1.0, "weights from the streams' trailers: {weights:?}");
    stop(client, servers).await;
}
