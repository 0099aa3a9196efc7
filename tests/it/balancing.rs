//! The client over several servers: grpc's target forms, one subchannel per
//! address, pick_first and round_robin, a replica that drains and comes
//! back, DNS names with several addresses, and a Unix socket. Where calls
//! went is read from each server's own `/metrics`, not from the client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::frames::{ACK, GOAWAY, HEADERS, SETTINGS, frame};
use crate::common::{self, TestServer};
use search::client::{Client, ClientOptions, ConnectivityState, LoadBalancing, Target};
use search::pb::v1::SearchRequest;
use search::server::{self, Listeners, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

fn with_metrics() -> ServerConfig {
    ServerConfig {
        metrics_listen: Some("127.0.0.1:0".into()),
        grace: Duration::from_secs(2),
        ..ServerConfig::default()
    }
}

async fn replicas(n: usize) -> Vec<TestServer> {
    let mut servers = Vec::new();
    for _ in 0..n {
        servers.push(TestServer::start_with("127.0.0.1:0", with_metrics()).await);
    }
    servers
}

/// `ipv4:` with every server's address.
fn ipv4(servers: &[TestServer]) -> Target {
    common::ipv4(servers.iter().map(|server| server.addr))
}

async fn client(target: &Target, lb: LoadBalancing) -> Client {
    let client =
        Client::connect_with(target, ClientOptions { lb, ..ClientOptions::default() }).await.expect("connects");
    client.settle(Duration::from_secs(5)).await;
    client
}

async fn search(client: &Client) {
    let answer = client.search(SearchRequest { query: "Banana".into() }).await.expect("no Search call fails");
    assert_eq!(answer.status, 1);
}

#[tokio::test]
async fn round_robin_spreads_calls_evenly_over_every_address() {
    let servers = replicas(3).await;
    // One attempt a call: a hedge (after a call slower than the hedging
    // delay, as on a loaded machine) would go to the next address out of turn.
    let options = ClientOptions { lb: LoadBalancing::RoundRobin, hedging: None, ..ClientOptions::default() };
    let client = Client::connect_with(&ipv4(&servers), options).await.expect("connects");
    client.settle(Duration::from_secs(5)).await;
    assert_eq!(client.backends().len(), 3);
    assert!(client.backends().iter().all(|b| b.state == ConnectivityState::Ready), "{:?}", client.backends());
    let before: Vec<u64> = served_counts(&servers).await;
    for _ in 0..300 {
        search(&client).await;
    }
    let after = served_counts(&servers).await;
    let served: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(served, [100, 100, 100], "round robin: one call each in turn");
    for server in servers {
        server.stop().await;
    }
}

async fn served_counts(servers: &[TestServer]) -> Vec<u64> {
    let mut counts = Vec::new();
    for server in servers {
        counts.push(server.searches().await);
    }
    counts
}

#[tokio::test]
async fn pick_first_sticks_to_the_first_address_and_moves_on_when_it_goes() {
    let mut servers = replicas(2).await;
    let client = client(&ipv4(&servers), LoadBalancing::PickFirst).await;
    for _ in 0..20 {
        search(&client).await;
    }
    assert_eq!(served_counts(&servers).await, [20, 0], "every call on the first address");
    let first = servers.remove(0);
    first.stop().await;
    for _ in 0..20 {
        search(&client).await;
    }
    assert_eq!(servers[0].searches().await, 20, "the second takes over, no call failed");
    servers.remove(0).stop().await;
}

#[tokio::test]
async fn a_replica_that_drains_and_comes_back_costs_no_search_call() {
    let mut servers = replicas(3).await;
    let target = ipv4(&servers);
    let client = client(&target, LoadBalancing::RoundRobin).await;
    // Four callers for three seconds; a second in, one replica drains, and
    // it comes back on its port half a second later.
    let end = Instant::now() + Duration::from_secs(3);
    let mut callers = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        callers.push(tokio::spawn(async move {
            let mut calls = 0u64;
            while Instant::now() < end {
                search(&client).await;
                calls += 1;
            }
            calls
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gone = servers.remove(0);
    let addr = gone.addr;
    let before_drain = gone.searches().await;
    gone.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back = TestServer::start_with(&addr.to_string(), with_metrics()).await;
    let mut calls = 0;
    for caller in callers {
        calls += caller.await.expect("every Search call succeeded");
    }
    let after_restart = back.searches().await;
    assert!(calls > 100, "{calls} calls");
    assert!(before_drain > 0, "the replica served before its drain");
    assert!(after_restart > 0, "the restarted replica is used again: {:?} {:?}", client.backends(), client.stats());
    let stats = client.stats();
    assert!(stats.attempts >= stats.calls, "{stats:?}");
    back.stop().await;
    for server in servers {
        server.stop().await;
    }
}

#[tokio::test]
async fn a_dns_name_becomes_a_subchannel_per_address() {
    // The server binds every address localhost has (127.0.0.1, and ::1
    // where there is IPv6), all on one port.
    let listeners = Listeners::bind("localhost:0").await.expect("bind localhost");
    let bound = listeners.local_addrs().expect("addresses").len();
    let port = listeners.local_addrs().expect("addresses")[0].port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listeners, ServerConfig::default(), async {
        let _ = stopped.await;
    }));
    let target: Target = format!("dns:///localhost:{port}").parse().expect("a dns target");
    let client = client(&target, LoadBalancing::RoundRobin).await;
    for _ in 0..10 {
        search(&client).await;
    }
    let backends = client.backends();
    assert_eq!(backends.len(), bound, "{backends:?}");
    assert!(backends.iter().all(|b| b.calls >= 5), "round robin over every address: {backends:?}");
    let _ = stop.send(());
    serving.await.expect("join").expect("serves");
}

#[tokio::test]
async fn a_unix_socket_serves_and_is_removed_when_the_server_stops() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("search.sock");
    let listeners = Listeners::bind(&format!("unix:{}", path.display())).await.expect("bind the socket");
    assert_eq!(listeners.display_addr().expect("address"), format!("unix:{}", path.display()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listeners, ServerConfig::default(), async {
        let _ = stopped.await;
    }));
    let target: Target = format!("unix:{}", path.display()).parse().expect("a unix target");
    let client = client(&target, LoadBalancing::PickFirst).await;
    search(&client).await;
    assert_eq!(client.backends()[0].address, format!("unix:{}", path.display()));
    let _ = stop.send(());
    serving.await.expect("join").expect("serves");
    assert!(!path.exists(), "the socket file is removed");
}

#[tokio::test]
async fn the_cli_spreads_a_bench_and_shows_its_subchannels() {
    let servers = replicas(3).await;
    let target = ipv4(&servers).to_string();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
        // No hedges, as above: one attempt a call, each address in turn.
        .args([
            "-t",
            &target,
            "--lb",
            "round_robin",
            "--hedging-delay",
            "off",
            "--json",
            "bench",
            "-n",
            "300",
            "-c",
            "3",
        ])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: search::cli::bench::Report = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report.ok, 300);
    let spread: Vec<u64> = report.backends.values().copied().collect();
    assert_eq!(spread, [100, 100, 100], "{:?}", report.backends);
    assert_eq!((report.client.calls, report.client.attempts), (300, 300));
    assert_eq!(served_counts(&servers).await.iter().sum::<u64>(), 300);

    // A bench settles the channel before its first call, so every
    // subchannel has connected and answered its health check by then. (A
    // single call may go out, and the process end, before any health
    // answer: round robin sends to a connecting subchannel when none is
    // READY yet.)
    let verbose = tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["-v", "-t", &target, "--lb", "round_robin", "bench", "-n", "3", "-c", "1"])
        .output()
        .await
        .expect("runs");
    assert_eq!(verbose.status.code(), Some(0));
    let log = String::from_utf8_lossy(&verbose.stderr);
    for server in &servers {
        let connected = format!("client: subchannel {} IDLE -> CONNECTING\n", server.addr);
        let ready = format!("client: subchannel {} CONNECTING -> READY (health: SERVING", server.addr);
        assert!(log.contains(&connected) && log.contains(&ready), "{log}");
    }
    for server in servers {
        server.stop().await;
    }
}

#[tokio::test]
async fn a_round_robin_bench_survives_a_replica_restart_with_retries_off() {
    let mut servers = replicas(3).await;
    let target = ipv4(&servers).to_string();
    // client bench turns retries off: only calls that never reached a
    // server are resent (transparently, on another subchannel).
    let bench = tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["-t", &target, "--lb", "round_robin", "--json", "bench", "-z", "3s", "-n", "100000000", "-c", "4"])
        .output();
    let restart = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let gone = servers.remove(0);
        let addr = gone.addr;
        gone.stop().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        TestServer::start_with(&addr.to_string(), with_metrics()).await
    };
    let (output, back) = tokio::join!(bench, restart);
    let output = output.expect("runs");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: search::cli::bench::Report = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report.status_codes.keys().collect::<Vec<_>>(), ["OK"], "no call failed: {:?}", report.status_codes);
    assert!(report.calls > 100, "{}", report.calls);
    assert!(back.searches().await > 0, "the restarted replica is used again");
    assert_eq!(report.backends.len(), 3, "{:?}", report.backends);
    back.stop().await;
    for server in servers {
        server.stop().await;
    }
}

/// A peer that completes the HTTP/2 handshake, then answers each call's
/// HEADERS with a graceful GOAWAY that takes no stream (last stream 0,
/// NO_ERROR), as a server going away does for the calls it did not take:
/// the call reached it and was not processed. Returns its address and how
/// many calls it turned away.
async fn going_away() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("an address");
    let turned_away = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&turned_away);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut preface = [0; 24];
                if socket.read_exact(&mut preface).await.is_err() {
                    return;
                }
                let _ = socket.write_all(&frame(SETTINGS, 0, 0, &[])).await;
                let mut header = [0; 9];
                while socket.read_exact(&mut header).await.is_ok() {
                    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
                    let mut payload = vec![0; len];
                    if socket.read_exact(&mut payload).await.is_err() {
                        return;
                    }
                    if header[3] == SETTINGS && header[4] & ACK == 0 {
                        let _ = socket.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
                    } else if header[3] == HEADERS {
                        count.fetch_add(1, Ordering::SeqCst);
                        // Last stream 0, NO_ERROR; the connection stays open.
                        let _ = socket.write_all(&frame(GOAWAY, 0, 0, &[0; 8])).await;
                    }
                }
            });
        }
    });
    (addr, turned_away)
}

#[tokio::test]
async fn a_call_past_a_graceful_goaway_goes_to_another_subchannel_with_retries_off() {
    let (away, turned_away) = going_away().await;
    let server = TestServer::start_with("127.0.0.1:0", with_metrics()).await;
    let target: Target = format!("ipv4:{away},{}", server.addr).parse().expect("a target");
    let options = ClientOptions { lb: LoadBalancing::PickFirst, max_attempts: 1, ..ClientOptions::default() };
    // pick_first dials the first address first: the call goes to the peer
    // going away, which has spoken HTTP/2 (its SETTINGS) before it is READY.
    let client = Client::new(&target, options).expect("a client");
    search(&client).await;
    assert!(turned_away.load(Ordering::SeqCst) >= 1, "the peer going away saw the call");
    assert_eq!(server.searches().await, 1, "the server answered it");
    let stats = client.stats();
    assert_eq!(stats.calls, 1);
    assert!(stats.attempts >= 2, "sent again after the GOAWAY, not retried by policy: {stats:?}");
    server.stop().await;
}
