//! Gray failures made real, on loopback, against real server processes: a
//! replica frozen with SIGSTOP (its kernel still accepts and ACKs), a
//! replica black-holed with iptables (every packet to and from its port
//! dropped), a replica made slow by a proxy that delays everything it
//! sends. Each of the client's mechanisms (keepalive, health checking,
//! outlier detection, hedging) has a test here that fails without it, and
//! each fault a run at the client's defaults that loses no call beside a
//! run with the mechanisms off that does.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::proxy;
use crate::common::scripted::{ScriptedServer, always_ok, always_unavailable};
use crate::common::{TestServer, eventually, ipv4};
use search::client::{Client, ClientOptions, ConnectivityState, Event, Hedging, HedgingDelay, Keepalive, Target};
use search::pb::v1::SearchRequest;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A server process of its own, to be frozen, black-holed or delayed.
struct Replica {
    addr: SocketAddr,
    child: Child,
    /// Its log (stderr), line by line.
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    async fn start(args: &[&str]) -> Self {
        Self::start_at("127.0.0.1:0", args).await
    }

    /// A replica listening on `listen` (a port freed by one killed, say).
    async fn start_at(listen: &str, args: &[&str]) -> Self {
        let args: Vec<&str> = ["--listen", listen, "--grace", "1s"].iter().chain(args).copied().collect();
        let (mut child, addr) = common::server_process(&args).await;
        let addr = addr.parse().expect("an address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let kept = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().expect("log").push(line);
            }
        });
        Self { addr, child, log }
    }

    /// SIGSTOP: the process stops; its kernel still accepts connections and
    /// ACKs what is sent to them.
    fn freeze(&self) {
        common::signal(&self.child, libc::SIGSTOP);
    }

    fn thaw(&self) {
        common::signal(&self.child, libc::SIGCONT);
    }

    /// Its call lines for Search that ended with `code`.
    fn searches_ending(&self, code: &str) -> usize {
        let needle = format!("code=\"{code}\"");
        let log = self.log.lock().expect("log");
        log.iter().filter(|line| line.contains("SearchService/Search") && line.contains(&needle)).count()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // A stopped process is killed just as well, but thaw it first so
        // that nothing is left stopped if the kill fails.
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

/// Every packet to and from a loopback port dropped, by iptables rules this
/// test owns (tagged with its process and the port), removed when dropped,
/// even when the test fails; and the rules of a test process that died
/// without removing its own (killed) removed by the next.
struct BlackHole {
    port: u16,
    /// Drop only this share of the packets, in percent (`None`: all).
    loss: Option<u8>,
}

/// The start of every tag: `search-gray-test-PID-PORT`.
const TAG: &str = "search-gray-test-";

impl BlackHole {
    fn rule(&self, way: &str) -> Vec<String> {
        let tag = format!("{TAG}{}-{}", std::process::id(), self.port);
        let mut rule: Vec<String> =
            ["INPUT", "-p", "tcp", way, &self.port.to_string(), "-m", "comment", "--comment", &tag]
                .map(str::to_owned)
                .to_vec();
        if let Some(percent) = self.loss {
            let share = format!("{:.2}", f64::from(percent) / 100.0);
            rule.extend(["-m", "statistic", "--mode", "random", "--probability", &share].map(str::to_owned));
        }
        rule.extend(["-j", "DROP"].map(str::to_owned));
        rule
    }

    fn iptables(action: &str, rule: &[String]) -> bool {
        std::process::Command::new("iptables")
            .arg(action)
            .args(rule)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Whether this machine lets the test add netfilter rules (iptables
    /// installed, and the rights to use it).
    fn possible() -> bool {
        std::process::Command::new("iptables")
            .args(["-w", "-L", "INPUT", "-n"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Removes the rules of test processes that are gone: a port they
    /// black-holed is free again, and the next server to take it would be
    /// unreachable. Rules of running tests (this one, or another run's)
    /// stay.
    fn sweep() {
        let Ok(listed) = std::process::Command::new("iptables").args(["-w", "-S", "INPUT"]).output() else { return };
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some(tag) = words.iter().find_map(|word| word.strip_prefix(TAG)) else { continue };
            let owner = tag.split_once('-').and_then(|(pid, _)| pid.parse::<u32>().ok());
            if owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
                continue;
            }
            let rule: Vec<String> = words.iter().skip(1).map(|word| (*word).to_owned()).collect();
            eprintln!("removing a black hole its test left behind: {line}");
            Self::iptables("-D", &rule);
        }
    }

    fn open(port: u16) -> Self {
        Self::lossy(port, None)
    }

    /// `loss` percent of the packets to and from `port` dropped (`None`: all).
    fn lossy(port: u16, loss: Option<u8>) -> Self {
        Self::sweep();
        let hole = Self { port, loss };
        for way in ["--dport", "--sport"] {
            assert!(Self::iptables("-I", &hole.rule(way)), "iptables -I {:?}", hole.rule(way));
        }
        hole
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        for way in ["--dport", "--sport"] {
            // Every copy of the rule, should one have been added twice.
            while Self::iptables("-D", &self.rule(way)) {}
        }
    }
}

/// Three replicas (real server processes) and a round-robin target over
/// them; `through` puts a delaying proxy in front of the second.
struct Fleet {
    replicas: Vec<Replica>,
    /// The addresses the client is given (the proxy's for a proxied replica).
    addrs: Vec<SocketAddr>,
    target: Target,
    delay: proxy::Delay,
}

impl Fleet {
    async fn start(args: &[&str]) -> Self {
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(Replica::start(args).await);
        }
        let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
        let target = ipv4(addrs.iter().copied());
        Self { replicas, addrs, target, delay: proxy::Delay::default() }
    }

    /// The fleet with its second replica reached through a proxy whose
    /// delay the test sets.
    async fn start_proxied(args: &[&str]) -> Self {
        let mut fleet = Self::start(args).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let front = listener.local_addr().expect("addr");
        tokio::spawn(proxy::serve(listener, fleet.replicas[1].addr, Arc::clone(&fleet.delay)));
        fleet.addrs[1] = front;
        fleet.target = ipv4(fleet.addrs.iter().copied());
        fleet
    }
}

/// What a run's calls ended with.
#[derive(Debug, Default)]
struct Ends {
    ok: u64,
    failed: BTreeMap<String, u64>,
}

/// Calls Search at `rate` per second for `length` (open model: each call
/// on its own, whatever the others do), while `faults` runs beside.
async fn drive(client: &Client, rate: u32, length: Duration, faults: impl Future<Output = ()>) -> Ends {
    let calls = async {
        let started = Instant::now();
        let mut running = tokio::task::JoinSet::new();
        let mut n = 0u32;
        while started.elapsed() < length {
            n += 1;
            tokio::time::sleep_until(started + Duration::from_secs(1) * n / rate).await;
            let client = client.clone();
            running.spawn(async move { client.search(SearchRequest { query: "Banana".into() }).await });
        }
        let mut ends = Ends::default();
        while let Some(ended) = running.join_next().await {
            match ended.expect("a call never panics") {
                Ok(answer) => {
                    assert_eq!(answer.status, 1);
                    ends.ok += 1;
                }
                Err(err) => {
                    *ends.failed.entry(err.code().map_or("CONNECT".into(), |c| format!("{c:?}"))).or_default() += 1
                }
            }
        }
        ends
    };
    let (ends, ()) = tokio::join!(calls, faults);
    ends
}

/// The client's defaults (no policy, health or hedging named: `auto`
/// makes a target of three addresses round robin), the fault runs' 1 s
/// deadline.
fn defaults() -> ClientOptions {
    ClientOptions { timeout: Duration::from_secs(1), ..ClientOptions::default() }
}

/// Before these mechanisms: no keepalive, health checking, outlier
/// detection, hedging or retries.
fn bare() -> ClientOptions {
    common::bare(defaults())
}

async fn settled(target: &Target, options: ClientOptions) -> Client {
    let client = Client::connect_with(target, options).await.expect("connects");
    client.settle(Duration::from_secs(5)).await;
    assert!(client.backends().iter().all(|b| b.state == ConnectivityState::Ready), "{:?}", client.backends());
    client
}

/// The events of `client` from now on, as `client -v` prints them.
fn recorded(client: &Client) -> Arc<Mutex<Vec<Event>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&events);
    client.watch_subchannels(Box::new(move |event| kept.lock().expect("events").push(event.clone())));
    events
}

/// Whether an event says `address` went to TRANSIENT_FAILURE because of `why`.
fn failed_because(events: &Mutex<Vec<Event>>, address: SocketAddr, why: &str) -> bool {
    events.lock().expect("events").iter().any(|event| match event {
        Event::Subchannel { address: a, to: ConnectivityState::TransientFailure, why: Some(w), .. } => {
            *a == address.to_string() && w.contains(why)
        }
        _ => false,
    })
}

/// 2 s of a fault in a 4 s run at 150 calls/s.
const RATE: u32 = 150;
const RUN: Duration = Duration::from_secs(4);
const FAULT_AT: Duration = Duration::from_secs(1);
const FAULT_FOR: Duration = Duration::from_secs(2);

async fn frozen_run(options: ClientOptions) -> (Ends, Client, SocketAddr) {
    let fleet = Fleet::start(&[]).await;
    let client = settled(&fleet.target, options).await;
    let frozen = &fleet.replicas[1];
    let ends = drive(&client, RATE, RUN, async {
        tokio::time::sleep(FAULT_AT).await;
        frozen.freeze();
        tokio::time::sleep(FAULT_FOR).await;
        frozen.thaw();
    })
    .await;
    (ends, client, frozen.addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_replica_costs_no_call_at_the_defaults_and_is_ejected() {
    let _machine = common::needs_a_quiet_machine().await;
    let (ends, client, frozen) = frozen_run(defaults()).await;
    let stats = client.stats();
    assert!(ends.failed.is_empty(), "no call failed: {ends:?} {stats:?}");
    assert!(stats.hedges_won > 0, "hedges answered the calls the frozen replica held: {stats:?}");
    let backend = client.backends().into_iter().find(|b| b.address == frozen.to_string()).expect("listed");
    assert!(stats.ejections >= 1 && backend.ejected, "the frozen replica was ejected: {stats:?} {backend:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_hedging_or_ejection_a_frozen_replica_fails_calls() {
    let _machine = common::needs_a_quiet_machine().await;
    let (ends, client, _) = frozen_run(bare()).await;
    let failed = ends.failed.get("DeadlineExceeded").copied().unwrap_or(0);
    assert!(failed > 10, "the calls the frozen replica held ran out of time: {ends:?}");
    assert_eq!(client.stats().hedges, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_detection_alone_ejects_a_frozen_replica() {
    let _machine = common::needs_a_quiet_machine().await;
    // No hedging: the held calls fail at their deadline, which counts.
    let options = ClientOptions { outlier_detection: defaults().outlier_detection, ..bare() };
    let (ends, client, frozen) = frozen_run(options).await;
    let stats = client.stats();
    assert!(stats.ejections >= 1, "ejected: {stats:?} {ends:?}");
    let backend = client.backends().into_iter().find(|b| b.address == frozen.to_string()).expect("listed");
    assert!(backend.ejected, "{backend:?}");
}

/// Whether netfilter can be used here; says on stderr that `test` is
/// skipped when it cannot.
fn netfilter_or_skip(test: &str) -> bool {
    let possible = BlackHole::possible();
    if !possible {
        // Straight to stderr: the test harness would swallow a printed line.
        let _ =
            writeln!(std::io::stderr(), "{test}: SKIPPED: iptables cannot add rules here (not installed, or not root)");
    }
    possible
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_replica_costs_no_call_at_the_defaults() {
    if !netfilter_or_skip("a_black_holed_replica_costs_no_call_at_the_defaults") {
        return;
    }
    let _machine = common::needs_a_quiet_machine().await;
    for (options, loses) in [(defaults(), false), (bare(), true)] {
        let fleet = Fleet::start(&[]).await;
        let client = settled(&fleet.target, options).await;
        let port = fleet.replicas[1].addr.port();
        let ends = drive(&client, RATE, RUN, async {
            tokio::time::sleep(FAULT_AT).await;
            let hole = BlackHole::open(port);
            tokio::time::sleep(FAULT_FOR).await;
            drop(hole);
        })
        .await;
        if loses {
            assert!(ends.failed.values().sum::<u64>() > 10, "without the mechanisms calls are lost: {ends:?}");
        } else {
            assert!(ends.failed.is_empty(), "no call failed: {ends:?} {:?}", client.stats());
            assert!(client.stats().hedges_won > 0, "{:?}", client.stats());
        }
    }
}

/// A run at the defaults with `fault` on the fleet from `FAULT_AT`: no call
/// may fail.
async fn costs_no_call(fleet: &mut Fleet, fault: impl AsyncFnOnce(&mut Fleet)) -> Client {
    let client = settled(&fleet.target, defaults()).await;
    let calls = async {
        let ends = drive(&client, RATE, RUN, std::future::ready(())).await;
        assert!(ends.failed.is_empty(), "no call failed: {ends:?} {:?}", client.stats());
    };
    let faults = async {
        tokio::time::sleep(FAULT_AT).await;
        fault(fleet).await;
    };
    tokio::join!(calls, faults);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_losing_30_percent_of_its_packets_costs_no_call_at_the_defaults() {
    if !netfilter_or_skip("a_replica_losing_30_percent_of_its_packets_costs_no_call_at_the_defaults") {
        return;
    }
    let _machine = common::needs_a_quiet_machine().await;
    let mut fleet = Fleet::start(&[]).await;
    let port = fleet.replicas[0].addr.port();
    costs_no_call(&mut fleet, async |_| {
        let lossy = BlackHole::lossy(port, Some(30));
        tokio::time::sleep(FAULT_FOR).await;
        drop(lossy);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_frozen_replicas_of_three_cost_no_call_at_the_defaults() {
    let _machine = common::needs_a_quiet_machine().await;
    let mut fleet = Fleet::start(&[]).await;
    let client = costs_no_call(&mut fleet, async |fleet| {
        fleet.replicas[0].freeze();
        fleet.replicas[1].freeze();
        tokio::time::sleep(FAULT_FOR).await;
        fleet.replicas[0].thaw();
        fleet.replicas[1].thaw();
    })
    .await;
    assert!(client.stats().hedges_won > 0, "hedges answered what the frozen ones held: {:?}", client.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_and_restarted_costs_no_call_at_the_defaults() {
    let _machine = common::needs_a_quiet_machine().await;
    let mut fleet = Fleet::start(&[]).await;
    let client = costs_no_call(&mut fleet, async |fleet| {
        let addr = fleet.replicas[0].addr;
        common::signal(&fleet.replicas[0].child, libc::SIGKILL);
        let _ = fleet.replicas[0].child.wait().await;
        tokio::time::sleep(FAULT_FOR).await;
        fleet.replicas[0] = Replica::start_at(&addr.to_string(), &[]).await;
    })
    .await;
    // The restarted replica takes calls again.
    let addr = fleet.replicas[0].addr.to_string();
    common::eventually("the restarted replica READY", || {
        client.backends().iter().any(|b| b.address == addr && b.state == ConnectivityState::Ready)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_with_the_first_replica_frozen_is_answered_within_its_deadline() {
    let _machine = common::needs_a_quiet_machine().await;
    let fleet = Fleet::start(&[]).await;
    fleet.replicas[0].freeze();
    // The defaults (round robin over three addresses) and pick_first
    // (Happy Eyeballs: the next address 250 ms on): the frozen replica
    // accepts the connection but never speaks HTTP/2, so it is never READY.
    for lb in [None, Some("pick_first")] {
        let mut args = vec!["-t".to_owned(), fleet.target.to_string(), "--timeout".into(), "1s".into()];
        args.extend(lb.map(|lb| ["--lb".to_owned(), lb.to_owned()]).into_iter().flatten());
        args.push("Banana".into());
        let output = Command::new(env!("CARGO_BIN_EXE_client")).args(&args).output().await.expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{lb:?}: answered within the 1 s deadline: {stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "status=1\n");
    }
    fleet.replicas[0].thaw();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_replica_loses_to_hedges_and_is_ejected() {
    let _machine = common::needs_a_quiet_machine().await;
    let fleet = Fleet::start_proxied(&[]).await;
    let client = settled(&fleet.target, defaults()).await;
    let events = recorded(&client);
    let ends = drive(&client, RATE, RUN, async {
        tokio::time::sleep(FAULT_AT).await;
        proxy::set(&fleet.delay, Duration::from_millis(300));
        tokio::time::sleep(FAULT_FOR).await;
        proxy::set(&fleet.delay, Duration::ZERO);
    })
    .await;
    let stats = client.stats();
    assert!(ends.failed.is_empty(), "{ends:?}");
    assert!(stats.hedges_won > 0, "{stats:?}");
    // An attempt that lost to a hedge after the hedging delay was slow: its
    // replica is ejected for it, though it never failed a call.
    assert!(failed_because(&events, fleet.addrs[1], "ejected for 30s"), "{:?}", events.lock().expect("events"));
}

/// A peer that takes every call and never answers, recording how each
/// stream ended: the hanging replica, seen from the wire.
async fn hanging_peer() -> (SocketAddr, Arc<Mutex<Vec<(String, Option<h2::Reason>)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let ends = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&ends);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let ends = Arc::clone(&kept);
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else { return };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    let ends = Arc::clone(&ends);
                    let path = request.uri().path().to_owned();
                    tokio::spawn(async move {
                        let reset = std::future::poll_fn(|cx| respond.poll_reset(cx)).await.ok();
                        ends.lock().expect("ends").push((path, reset));
                    });
                }
            });
        }
    });
    (addr, ends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedge_that_wins_cancels_the_attempt_it_beat() {
    let _machine = common::needs_a_quiet_machine().await;
    let server = TestServer::start().await;
    let (peer, ends) = hanging_peer().await;
    // The hanging peer has no health service to answer: no health checks,
    // no ejection, so that it keeps its turn.
    let options = ClientOptions {
        hedging: Some(Hedging { max_attempts: 2, delay: HedgingDelay::Fixed(Duration::from_millis(20)) }),
        health_check: None,
        outlier_detection: None,
        ..defaults()
    };
    // Not `settled`: its first call (`connect_with`'s) may go to the peer
    // that never answers, and fail at the 1 s deadline.
    let client = Client::new(&ipv4([server.addr, peer]), options).expect("a client");
    client.settle(Duration::from_secs(5)).await;
    for _ in 0..20 {
        let answer = client.search(SearchRequest { query: "Banana".into() }).await.expect("the hedge answers");
        assert_eq!(answer.status, 1);
    }
    let stats = client.stats();
    // The peer's Search streams (it also got the client's first health probe).
    let searches = || -> Vec<Option<h2::Reason>> {
        let ends = ends.lock().expect("ends");
        ends.iter().filter(|(path, _)| path.ends_with("/Search")).map(|(_, reset)| *reset).collect()
    };
    eventually("every Search stream the peer took was reset", || searches().len() as u64 == stats.hedges_won).await;
    assert!((5..=15).contains(&stats.hedges_won), "round robin sent about half the calls to the peer first: {stats:?}");
    assert!(searches().iter().all(|end| *end == Some(h2::Reason::CANCEL)), "RST_STREAM CANCEL each: {:?}", searches());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_its_client_cancels_is_logged_once_as_cancelled() {
    let replica = Replica::start(&[]).await;
    let socket = tokio::net::TcpStream::connect(replica.addr).await.expect("connects");
    let (mut h2, connection) = h2::client::handshake(socket).await.expect("HTTP/2");
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{}/search.v1.SearchService/Search", replica.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request");
    // The request's body never comes: the call waits, then the client
    // resets the stream (as a hedge's loser is reset).
    let (response, stream) = h2.send_request(request, false).expect("sent");
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop((response, stream));
    eventually("the call is logged", || replica.searches_ending("CANCELLED") == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = replica.log.lock().expect("log").clone();
    let lines: Vec<&String> = log.iter().filter(|line| line.contains("SearchService/Search")).collect();
    assert_eq!(lines.len(), 1, "one line for the call: {lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_closes_a_connection_whose_peer_went_silent() {
    let _machine = common::needs_a_quiet_machine().await;
    // Servers that allow the quick pings of this test.
    let fleet = Fleet::start(&["--min-ping-interval", "100ms"]).await;
    let quick =
        Keepalive { time: Duration::from_millis(500), timeout: Duration::from_millis(500), without_calls: true };
    for (keepalive, notices) in [(Some(quick), true), (None, false)] {
        let options = ClientOptions { keepalive, ..bare() };
        let client = settled(&fleet.target, options).await;
        let events = recorded(&client);
        let frozen = &fleet.replicas[1];
        frozen.freeze();
        let noticed = tokio::time::timeout(Duration::from_secs(4), async {
            while !failed_because(&events, frozen.addr, "no answer to a keepalive ping within 500ms") {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        frozen.thaw();
        assert_eq!(noticed.is_ok(), notices, "keepalive {keepalive:?}: {:?}", events.lock().expect("events"));
        if !notices {
            let backend = client.backends().into_iter().find(|b| b.address == frozen.addr.to_string());
            assert_eq!(backend.map(|b| b.state), Some(ConnectivityState::Ready), "nothing noticed the freeze");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_only_to_servers_whose_health_says_serving() {
    let _machine = common::needs_a_quiet_machine().await;
    let checked = ClientOptions { hedging: None, ..defaults() };
    for (options, watches) in [(checked.clone(), true), (ClientOptions { health_check: None, ..checked }, false)] {
        let good = TestServer::start().await;
        let flipping = ScriptedServer::start(always_ok, true).await;
        let no_health = ScriptedServer::start(always_ok, false).await;
        let target = ipv4([good.addr, flipping.addr, no_health.addr]);
        let client = settled(&target, options).await;
        let calls = |n| {
            let client = client.clone();
            async move {
                for _ in 0..n {
                    client.search(SearchRequest { query: "Banana".into() }).await.expect("no call fails");
                }
            }
        };
        calls(60).await;
        assert_eq!((flipping.calls(), no_health.calls()), (20, 20), "round robin over all three");
        // A server without the health service is taken as healthy (grpc's rule).
        flipping.set_serving(false).await;
        if watches {
            let flipped = flipping.addr.to_string();
            let client = client.clone();
            eventually("the NOT_SERVING server's subchannel is out", move || {
                client.backends().iter().any(|b| b.address == flipped && b.state == ConnectivityState::TransientFailure)
            })
            .await;
        }
        let before = flipping.calls();
        calls(60).await;
        let during = flipping.calls() - before;
        if watches {
            assert_eq!(during, 0, "no call to a server that says NOT_SERVING");
            flipping.set_serving(true).await;
            let back = flipping.addr.to_string();
            let watcher = client.clone();
            eventually("SERVING again: back in", move || {
                watcher.backends().iter().any(|b| b.address == back && b.state == ConnectivityState::Ready)
            })
            .await;
            calls(60).await;
            assert!(flipping.calls() > before, "calls again once SERVING");
        } else {
            assert_eq!(during, 20, "without health checking nothing knows");
        }
        good.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_failing_every_call_is_ejected_and_gets_no_more() {
    let _machine = common::needs_a_quiet_machine().await;
    let ejecting = ClientOptions { outlier_detection: defaults().outlier_detection, ..bare() };
    for (options, ejects) in [(ejecting, true), (bare(), false)] {
        let good = [TestServer::start().await, TestServer::start().await];
        let failing = ScriptedServer::start(always_unavailable, false).await;
        let target = ipv4([good[0].addr, failing.addr, good[1].addr]);
        let client = settled(&target, options).await;
        let mut at_half = 0;
        let ends = drive(&client, RATE, Duration::from_secs(3), async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            at_half = failing.calls();
        })
        .await;
        let late = failing.calls() - at_half;
        if ejects {
            assert_eq!(late, 0, "ejected within its first seconds, it gets nothing after: {ends:?}");
            assert!(client.stats().ejections >= 1, "{:?}", client.stats());
        } else {
            assert!(late > 10, "without outlier detection it keeps a third of the calls: {ends:?}");
        }
        for server in good {
            server.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_bench_reports_hedges_and_ejections_and_v_shows_them() {
    let _machine = common::needs_a_quiet_machine().await;
    let fleet = Fleet::start(&[]).await;
    let target = fleet.target.to_string();
    let bench = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["-v", "-t", &target, "--lb", "round_robin", "--timeout", "1s", "--json"])
        .args(["bench", "--rate", "150", "-c", "100", "-n", "600", "-z", "4s"])
        .output();
    let frozen = &fleet.replicas[1];
    let (output, ()) = tokio::join!(bench, async {
        tokio::time::sleep(FAULT_AT).await;
        frozen.freeze();
        tokio::time::sleep(FAULT_FOR).await;
        frozen.thaw();
    });
    let output = output.expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report: search::cli::bench::Report = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(report.status_codes.keys().collect::<Vec<_>>(), ["OK"], "{:?}", report.status_codes);
    assert!(report.client.hedges_won > 0 && report.client.hedges >= report.client.hedges_won, "{:?}", report.client);
    assert!(report.client.ejections >= 1 && report.client.state_changes >= 1, "{:?}", report.client);
    let ejected = format!("client: subchannel {} READY -> TRANSIENT_FAILURE (ejected for 30s: ", frozen.addr);
    assert!(stderr.contains(&ejected), "-v shows the ejection as it happens: {stderr}");
    assert!(!stderr.contains("hedge: attempt"), "a load run does not print each hedge: {stderr}");
}

#[tokio::test]
async fn every_new_flag_names_its_grpc_setting_and_bad_values_exit_2() {
    let help = Command::new(env!("CARGO_BIN_EXE_client")).arg("--help").output().await.expect("runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for (flag, grpc) in [
        ("--keepalive-time", "KEEPALIVE_TIME"),
        ("--keepalive-timeout", "KEEPALIVE_TIMEOUT"),
        ("--keepalive-without-calls", "KEEPALIVE_PERMIT_WITHOUT_CALLS"),
        ("--health-check-service", "healthCheckConfig.serviceName"),
        ("--no-health-check", "GRPC_ARG_INHIBIT_HEALTH_CHECKING"),
        ("--outlier-interval", "outlier_detection interval"),
        ("--outlier-base-ejection-time", "base_ejection_time"),
        ("--outlier-max-ejection-percent", "max_ejection_percent"),
        ("--outlier-failure-percentage", "failure_percentage_ejection threshold"),
        ("--hedging-delay", "hedgingPolicy.hedgingDelay"),
        ("--hedging-max-attempts", "hedgingPolicy.maxAttempts"),
        ("--wrr-blackout-period", "blackout_period"),
        ("--wrr-weight-expiration-period", "weight_expiration_period"),
        ("--wrr-weight-update-period", "weight_update_period"),
        ("--wrr-error-utilization-penalty", "error_utilization_penalty"),
        ("--wrr-oob-reporting-period", "oob_reporting_period"),
    ] {
        let at = help.find(flag).unwrap_or_else(|| panic!("{flag} in --help"));
        let next = help[at + flag.len()..].find("\n  -").map_or(help.len(), |end| at + flag.len() + end);
        let text = help[at..next].split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(grpc), "{flag} names {grpc}: {text}");
    }
    for (args, says) in [
        (["--hedging-delay", "soon"], "--hedging-delay"),
        (["--keepalive-time", "0s"], "--keepalive-time must be more than 0"),
        (["--outlier-max-ejection-percent", "101"], "--outlier-max-ejection-percent"),
        (["--hedging-max-attempts", "9"], "--hedging-max-attempts"),
        (["--wrr-error-utilization-penalty", "NaN"], "--wrr-error-utilization-penalty must be 0 or more"),
        (["--wrr-oob-reporting-period", "0s"], "--wrr-oob-reporting-period must be more than 0"),
        (["--throttle-ratio", "0.5"], "--throttle-ratio must be 1 or more"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_client")).args(args).arg("Banana").output().await.expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
