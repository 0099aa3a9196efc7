//! Connections rotated under calls: a server that ages its connections out
//! every few hundred milliseconds (its GOAWAY, then the close a grace
//! later), and clients that keep calls of every kind going across many
//! rotations. No call may fail for it: a call the server never took is sent
//! again, transparently, whatever its kind. And a proxy that sends the
//! GOAWAY when the test says, after which every subchannel is READY again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::frames::{GOAWAY, frame};
use crate::common::{self, TestServer};
use search::client::{Client, ClientOptions, ConnectivityState, Error, Event, LoadBalancing, Target};
use search::pb::v1::{ClassifyRequest, CountRequest, ScanRequest, SearchRequest};
use search::server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

/// A server whose connections get their GOAWAY after 300 ms (less up to 10%)
/// and are closed 10 s later: no call is cut by the close.
async fn rotating() -> TestServer {
    let config = ServerConfig {
        max_connection_age: Duration::from_millis(300),
        max_connection_age_grace: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    TestServer::start_with("127.0.0.1:0", config).await
}

/// One call of `kind`, checked.
async fn call(client: &Client, kind: usize) -> Result<(), Error> {
    match kind % 4 {
        0 => {
            let answer = client.search(SearchRequest { query: "Banana".into() }).await?;
            assert_eq!(answer.status, 1);
        }
        1 => {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let mut answers = client.classify(ReceiverStream::new(rx)).await?;
            for _ in 0..3 {
                tx.send(ClassifyRequest { queries: vec!["Banana".into(), "kiwi".into()] }).await.expect("open");
                let answer = answers.message().await?.expect("an answer per request");
                assert_eq!(answer.statuses, [1, 0]);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drop(tx);
            assert!(answers.message().await?.is_none());
        }
        2 => {
            let batches = vec![CountRequest { queries: vec!["banana".into(); 10] }; 5];
            let answer = client.count(tokio_stream::iter(batches)).await?;
            assert_eq!((answer.queries, answer.matches), (50, 50));
        }
        _ => {
            let text = "a banana\n".repeat(200);
            let mut answers = client.scan(ScanRequest { text }).await?;
            let mut found = 0;
            while let Some(answer) = answers.message().await? {
                found += answer.matches.len();
            }
            assert_eq!(found, 200);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_of_every_kind_survive_connections_aged_out_under_them() {
    let _machine = common::loads_the_machine().await;
    let server = rotating().await;
    let client = Client::connect_with(&server.target(), ClientOptions::default()).await.expect("connects");
    let end = Instant::now() + Duration::from_secs(4);
    let mut workers = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut failed = BTreeMap::<String, u64>::new();
            let mut calls = 0u64;
            let mut kind = worker;
            while Instant::now() < end {
                if let Err(err) = call(&client, kind).await {
                    *failed.entry(format!("kind {}: {err}", kind % 4)).or_default() += 1;
                }
                kind += 1;
                calls += 1;
            }
            (calls, failed)
        }));
    }
    let mut calls = 0;
    let mut failed = BTreeMap::<String, u64>::new();
    for worker in workers {
        let (n, f) = worker.await.expect("a worker never panics");
        calls += n;
        for (k, v) in f {
            *failed.entry(k).or_default() += v;
        }
    }
    assert!(calls > 200, "{calls} calls");
    assert!(failed.is_empty(), "{} of {calls} calls failed: {failed:#?}", failed.values().sum::<u64>());
    assert!(client.stats().resent > 0, "the rotations turned calls away, which went out again: {:?}", client.stats());
    server.stop().await;
}

/// Two servers aging their connections out every 50 ms, and calls over
/// them. A call or a health watch that began a subchannel's new connection
/// (on the transport made after a GOAWAY) and went away before the dial was
/// done (its hedge answered elsewhere; the watch stopped at the change to
/// CONNECTING) must not leave that subchannel CONNECTING for good: a later
/// call turned away by the other server's GOAWAY is sent again to it, and
/// would wait there for its whole deadline. Every call ends within its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_waits_out_its_deadline_for_a_subchannel_whose_dial_was_left_behind() {
    let _machine = common::loads_the_machine().await;
    let config = ServerConfig {
        max_connection_age: Duration::from_millis(50),
        max_connection_age_grace: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    let a = TestServer::start_with("127.0.0.1:0", config.clone()).await;
    let b = TestServer::start_with("127.0.0.1:0", config).await;
    let target: Target = format!("ipv4:{},{}", a.addr, b.addr).parse().expect("a target");
    let options =
        ClientOptions { lb: LoadBalancing::RoundRobin, timeout: Duration::from_secs(5), ..ClientOptions::default() };
    let client = Client::connect_with(&target, options).await.expect("connects");
    let (calls, failed) = common::searches_until(&client, 8, Instant::now() + Duration::from_secs(4), 20_000).await;
    println!("{calls} calls, {:?}", client.stats());
    assert!(failed.is_empty(), "{} of {calls} calls failed: {failed:#?}", failed.len());
    assert!(client.stats().resent > 0, "the rotations turned calls away, which went out again");
    drop(client);
    a.stop().await;
    b.stop().await;
}

/// A proxy in front of a server that sends a graceful GOAWAY (NO_ERROR)
/// down each connection open when the test calls [`Rotating::rotate`], as a
/// server aging its connections out does, and keeps that connection open
/// until the client closes it: connections rotate when the test says, never
/// on a timer.
struct Rotating {
    addr: SocketAddr,
    /// Bumped by each rotation: every connection open then gets its GOAWAY.
    rotations: watch::Sender<u32>,
    /// Connections accepted, and still open.
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
}

impl Rotating {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (rotations, _) = watch::channel(0);
        let (accepted, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (told, counted, still) = (rotations.clone(), Arc::clone(&accepted), Arc::clone(&open));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                still.fetch_add(1, Ordering::SeqCst);
                let (rotation, still) = (told.subscribe(), Arc::clone(&still));
                tokio::spawn(async move {
                    relay(client, upstream, rotation).await;
                    still.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self { addr, rotations, accepted, open }
    }

    fn rotate(&self) {
        self.rotations.send_modify(|n| *n += 1);
    }

    fn connections(&self) -> (usize, usize) {
        (self.accepted.load(Ordering::SeqCst), self.open.load(Ordering::SeqCst))
    }
}

/// Copies one connection both ways; the server's frames go on whole, so
/// that the GOAWAY a rotation asks for goes in between two of them.
async fn relay(client: TcpStream, upstream: SocketAddr, mut rotation: watch::Receiver<u32>) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        let _ = to_server.shutdown().await;
    });
    rotation.borrow_and_update();
    let (mut pending, mut buffer, mut gone_away) = (Vec::new(), vec![0; 64 << 10], false);
    loop {
        tokio::select! {
            read = from_server.read(&mut buffer) => {
                let n = match read { Ok(0) | Err(_) => break, Ok(n) => n };
                pending.extend_from_slice(&buffer[..n]);
                let mut whole = 0;
                while let Some(header) = pending.get(whole..whole + 9) {
                    let length = 9 + u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
                    if pending.len() < whole + length {
                        break;
                    }
                    whole += length;
                }
                if to_client.write_all(&pending[..whole]).await.is_err() {
                    break;
                }
                pending.drain(..whole);
            }
            changed = rotation.changed(), if !gone_away => {
                gone_away = true;
                // Every stream open so far may finish (the last stream id the
                // largest there is); no new one may start.
                let goaway = frame(GOAWAY, 0, 0, &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
                if changed.is_err() || to_client.write_all(&goaway).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to_client.shutdown().await;
}

/// Calls Search (every call answered) until `done` holds: each GOAWAY'd
/// connection is replaced when a call finds it going away. Bounded, as
/// `common::eventually` is.
async fn calls_until(client: &Client, what: &dyn Fn() -> String, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        client.search(SearchRequest { query: "Banana".into() }).await.expect("no call fails");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not so after 500 calls: {}", what());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_keeps_every_rotated_subchannel_ready_and_in_turn() {
    let _machine = common::loads_the_machine().await;
    let servers = [TestServer::start().await, TestServer::start().await];
    let fronts = [Rotating::start(servers[0].addr).await, Rotating::start(servers[1].addr).await];
    let target = common::ipv4(fronts.iter().map(|front| front.addr));
    let options = ClientOptions { lb: search::client::LoadBalancing::RoundRobin, ..ClientOptions::default() };
    let client = Client::connect_with(&target, options).await.expect("connects");
    client.settle(Duration::from_secs(5)).await;
    // Each subchannel's returns to READY, with their causes.
    let returns = Arc::new(Mutex::new(BTreeMap::<String, Vec<Option<String>>>::new()));
    let seen = Arc::clone(&returns);
    client.watch_subchannels(Box::new(move |event| {
        if let Event::Subchannel { address, to: ConnectivityState::Ready, why, .. } = event {
            seen.lock().expect("returns").entry(address.clone()).or_default().push(why.clone());
        }
    }));
    // Each rotation, a new connection per server, however quickly it was
    // dialed: the subchannel's health watch moves to it, its answer makes
    // the subchannel READY again, and the old connection, left with no
    // stream, closes. A watch left on the old connection would hold it open
    // and keep the subchannel CONNECTING (health unknown) from then on.
    const ROTATIONS: usize = 20;
    for rotation in 1..=ROTATIONS {
        for front in &fronts {
            front.rotate();
        }
        let what = || {
            format!(
                "rotation {rotation}: {:?} {:?}",
                fronts.iter().map(Rotating::connections).collect::<Vec<_>>(),
                client.backends()
            )
        };
        calls_until(&client, &what, || {
            fronts.iter().all(|front| front.connections() == (rotation + 1, 1))
                && client.backends().iter().all(|b| b.state == ConnectivityState::Ready)
        })
        .await;
    }
    for (address, causes) in returns.lock().expect("returns").iter() {
        assert_eq!(causes.len(), ROTATIONS, "{address} back to READY once a rotation: {causes:?}");
        assert!(
            causes.iter().all(|why| why.as_deref().is_some_and(|why| why.starts_with("health: SERVING"))),
            "{causes:?}"
        );
    }
    assert_eq!(returns.lock().expect("returns").len(), 2);
    // Both READY, both keep their turn.
    let before: Vec<u64> = client.backends().iter().map(|b| b.calls).collect();
    for _ in 0..200 {
        client.search(SearchRequest { query: "Banana".into() }).await.expect("no call fails");
    }
    let after: Vec<u64> = client.backends().iter().map(|b| b.calls).collect();
    let turns: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(turns.iter().all(|&n| n >= 40), "round robin over both: {turns:?}");
    for server in servers {
        server.stop().await;
    }
}

/// A peer that reads a Count call's request until `refuse_after` bytes have
/// come, then refuses the stream unprocessed (RST_STREAM REFUSED_STREAM), as
/// a server going away does; it answers anything else UNIMPLEMENTED at once.
async fn refusing_peer(refuse_after: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else { return };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    tokio::spawn(async move {
                        if !request.uri().path().ends_with("/Count") {
                            let answer = http::Response::builder()
                                .header("content-type", "application/grpc")
                                .header("grpc-status", "12")
                                .body(())
                                .expect("a response");
                            let _ = respond.send_response(answer, true);
                            return;
                        }
                        let mut body = request.into_body();
                        let mut read = 0;
                        while let Some(Ok(chunk)) = body.data().await {
                            read += chunk.len();
                            let _ = body.flow_control().release_capacity(chunk.len());
                            if read >= refuse_after {
                                respond.send_reset(h2::Reason::REFUSED_STREAM);
                                return;
                            }
                        }
                    });
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_stream_is_sent_again_whole_unless_it_outgrew_the_retry_buffer() {
    let server = TestServer::start().await;
    // About 1 KiB a message.
    let message = || CountRequest { queries: vec!["banana".repeat(170)] };
    let buffer = search::client::RetryBuffer { per_call: 64 << 10, ..search::client::RetryBuffer::default() };
    for (messages, refuse_after, resent) in [(10, 5 << 10, true), (100, 80 << 10, false)] {
        let peer = refusing_peer(refuse_after).await;
        // pick_first: the refusing peer first, the real server next.
        let target = format!("ipv4:{peer},{}", server.addr).parse().expect("an ipv4: target");
        let lb = search::client::LoadBalancing::PickFirst;
        let options = ClientOptions { retry_buffer: buffer, lb, ..ClientOptions::default() };
        let client = Client::connect_with(&target, options).await.expect("connects");
        let counted = client.count(tokio_stream::iter(vec![message(); messages])).await;
        if resent {
            // 10 KiB fit in the buffer: every message went to the real
            // server again, and it counted them all.
            let answer = counted.expect("sent again, whole, to the next server");
            assert_eq!((answer.queries, answer.matches), (10, 10));
            assert_eq!(client.stats().resent, 1);
        } else {
            // 100 KiB did not: the call was committed, and fails cleanly.
            let err = counted.expect_err("not sent again");
            assert!(err.to_string().contains("refused the call unprocessed"), "{err}");
            assert!(matches!(err, Error::Connect { .. }), "{err:?}");
            assert_eq!(client.stats().resent, 0);
        }
    }
    server.stop().await;
}

/// A burst of `n` Classify streams held open at once (each waits for all the
/// others to have their first answer before it closes), as `client soak`
/// makes them: what each ended with.
async fn burst(client: &Client, n: usize) -> Vec<Result<(), Error>> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut held = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (client, barrier) = (client.clone(), std::sync::Arc::clone(&barrier));
        held.spawn(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let first = match client.classify(ReceiverStream::new(rx)).await {
                Ok(mut answers) => {
                    let _ = tx.send(ClassifyRequest { queries: vec!["Banana".into()] }).await;
                    answers.message().await.map(|_| answers)
                }
                Err(err) => Err(err),
            };
            barrier.wait().await;
            let mut answers = first?;
            drop(tx);
            while answers.message().await?.is_some() {}
            Ok(())
        });
    }
    let mut ends = Vec::new();
    while let Some(end) = held.join_next().await {
        ends.push(end.expect("a held stream never panics"));
    }
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_held_streams_survive_rotations_on_one_connection() {
    let _machine = common::loads_the_machine().await;
    // Streams held across a GOAWAY keep the old connection open while new
    // calls need a new one: the channel must not hand them to the old one.
    let config = ServerConfig {
        max_concurrent_calls: 64,
        max_connection_age: Duration::from_millis(300),
        max_connection_age_grace: Duration::from_secs(10),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let client = Client::connect_with(&server.target(), ClientOptions::default()).await.expect("connects");
    let end = Instant::now() + Duration::from_secs(10);
    let mut failed = BTreeMap::<String, u64>::new();
    let mut streams = 0;
    while Instant::now() < end {
        for ended in burst(&client, 100).await {
            streams += 1;
            match ended {
                // Past the server's 64 calls: shed, as the burst means.
                Err(err) if err.code() == Some(tonic::Code::ResourceExhausted) => {}
                Err(err) => *failed.entry(err.to_string()).or_default() += 1,
                Ok(()) => {}
            }
        }
    }
    assert!(streams > 1_000, "{streams} streams");
    assert!(failed.is_empty(), "{failed:#?} {:?}", client.stats());
    assert!(client.stats().resent > 0, "{:?}", client.stats());
    server.stop().await;
}
