//! The HTTP/2 attacks of the last years, each made by a raw HTTP/2 peer on
//! the server binary: how the connection ends (a GOAWAY and its code, or a
//! connection that stays open and bounded), the server's peak memory against
//! what it held before, and a Search on a new connection right after. Each
//! test prints its figures (`cargo test attacks:: -- --nocapture`).
//!
//! Rapid reset (CVE-2023-44487) and a client cancelling at its deadlines are
//! in `abuse.rs`; a request head over `--max-header-bytes` in `limits.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::frames::{
    ACK, COMPRESSION_ERROR, CONTINUATION, DATA, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM, End, FLOW_CONTROL_ERROR,
    Frame, GOAWAY, GoAway, HEADERS, INITIAL_WINDOW_SIZE, PING, PROTOCOL_ERROR, RST_STREAM, Raw, SETTINGS,
    WINDOW_UPDATE, frame, grpc_headers, grpc_headers_with, literal_indexed, table_size_update,
};
use crate::common::{self, loads_the_machine};
use search::client::Client;
use search::pb::v1::{ScanRequest, SearchRequest};
use tokio::net::TcpStream;
use tokio::process::Child;

const SEARCH: &str = "/search.v1.SearchService/Search";
const CLASSIFY: &str = "/search.v1.SearchService/Classify";
const SCAN: &str = "/search.v1.SearchService/Scan";

/// A Search for "banana", as a gRPC message.
const BANANA: &[u8] = &[0x0a, 0x06, b'b', b'a', b'n', b'a', b'n', b'a'];

/// The most the server's memory may grow under an attack: a server that
/// buffered what each attack sends would grow by hundreds of MiB.
const MIB: u64 = 1 << 20;
const GROWTH_BOUND: u64 = 32 * MIB;

/// The server binary under attack.
struct Attacked {
    child: Child,
    addr: SocketAddr,
    pid: u32,
    /// Resident memory once started and warm, bytes.
    before: u64,
}

/// Resident memory now and at its peak, bytes (Linux `/proc`).
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| -> u64 {
        let line = status.lines().find_map(|line| line.strip_prefix(name)).expect("a memory line");
        line.trim().trim_end_matches("kB").trim().parse::<u64>().expect("kB") << 10
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The CPU time the process has used, in clock ticks (Linux `/proc`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // After the command's name: state, then 10 fields, then utime, stime.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

impl Attacked {
    async fn start() -> Self {
        let (mut child, addr) =
            common::server_process_with(&["--listen", "127.0.0.1:0"], &[("RUST_LOG", "warn")]).await;
        // Its log, read so that the server never waits on a full pipe.
        let mut stderr = child.stderr.take().expect("stderr");
        tokio::spawn(async move { tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await });
        let pid = child.id().expect("running");
        let mut attacked = Self { child, addr: addr.parse().expect("an address"), pid, before: 0 };
        assert_eq!(attacked.search().await, 1, "served before the attack");
        attacked.before = memory(pid).0;
        attacked
    }

    /// A Search for "Banana" on a new connection: its status.
    async fn search(&self) -> i32 {
        let target = self.addr.to_string().parse().expect("a target");
        let client = Client::connect(&target).await.expect("connect");
        client.search(SearchRequest { query: "Banana".into() }).await.expect("served").status
    }

    /// Waits until the server stops using CPU (no tick in 300 ms, within
    /// 2 minutes): it has done all the attack made it do.
    async fn settled(&self) {
        let (mut last, mut still) = (cpu_ticks(self.pid), 0);
        for _ in 0..1200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = cpu_ticks(self.pid);
            still = if now == last { still + 1 } else { 0 };
            if still == 3 {
                return;
            }
            last = now;
        }
        panic!("the server still works two minutes after the attack");
    }

    /// Once the server settled: prints the attack's figures, checks that the
    /// server grew by `bound` at most and serves a new connection, stops it.
    async fn finish(mut self, attack: &str, end: &impl std::fmt::Debug, bound: u64) {
        self.settled().await;
        let (now, peak) = memory(self.pid);
        let status = self.search().await;
        let mib = |bytes: u64| bytes as f64 / MIB as f64;
        println!(
            "attack {attack}: {end:?}; server memory {:.1} MiB before, peak {:.1} MiB (+{:.1}), {:.1} MiB after; \
             a Search on a new connection: status {status}",
            mib(self.before),
            mib(peak),
            mib(peak.saturating_sub(self.before)),
            mib(now)
        );
        assert!(peak.saturating_sub(self.before) <= bound, "{attack}: the server grew by more than {} MiB", mib(bound));
        assert_eq!(status, 1, "{attack}: a Search on a new connection right after");
        common::signal(&self.child, libc::SIGTERM);
        let exit = self.child.wait().await.expect("the server exits");
        assert_eq!(exit.code(), Some(0), "{attack}: the server stops cleanly");
    }
}

/// The GOAWAY that ended a connection, failing the test on any other end.
fn goaway(end: &End) -> &GoAway {
    match end {
        End::GoAway(goaway) => goaway,
        other => panic!("expected a GOAWAY, then the close: {other:?}"),
    }
}

/// Checks that the connection ended with a GOAWAY for a connection error
/// (what h2 answers a header block it cannot decode with).
fn assert_connection_error(end: &End) {
    let code = goaway(end).code;
    assert!([PROTOCOL_ERROR, COMPRESSION_ERROR].contains(&code), "{end:?}");
}

/// Reads until the trailers of a call.
async fn until_trailers(raw: &mut Raw) {
    loop {
        let f = raw.next(Duration::from_secs(10)).await.expect("an answer");
        assert_ne!(f.kind, GOAWAY, "a GOAWAY before the answer");
        if f.kind == HEADERS && f.flags & END_STREAM != 0 {
            return;
        }
    }
}

/// A RST_STREAM's error code.
fn reset_code(frame: &Frame) -> u32 {
    let p = &frame.payload;
    u32::from_be_bytes([p[0], p[1], p[2], p[3]])
}

/// MadeYouReset (CVE-2025-8671): streams opened, each then made invalid by
/// a frame the server must refuse with a reset of its own (a WINDOW_UPDATE
/// that overflows the stream's window), fifty at a time, the next fifty
/// once the server reset these: the client never resets a stream itself.
/// The server's resets count against the same budget as a client's: the
/// 500th is one too many, before h2's own limit (1,024).
#[tokio::test]
async fn made_you_reset_gets_a_goaway_enhance_your_calm_at_the_reset_budget() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let mut raw = Raw::connect(attacked.addr).await;
    let overflow = 0x7fff_ffffu32.to_be_bytes();
    let (mut next, mut forced) = (1, 0);
    while raw.goaway().is_none() && next < 20_000 {
        let streams: Vec<u32> = (next..).step_by(2).take(50).collect();
        next += 100;
        let bytes: Vec<u8> = streams
            .iter()
            .flat_map(|&stream| {
                let open = frame(HEADERS, END_HEADERS, stream, &grpc_headers(CLASSIFY));
                [open, frame(WINDOW_UPDATE, 0, stream, &overflow)].concat()
            })
            .collect();
        if raw.send(&bytes).await.is_err() {
            break;
        }
        let mut reset = 0;
        while reset < streams.len() {
            match raw.next(Duration::from_secs(10)).await {
                Some(f) if f.kind == RST_STREAM => {
                    assert_eq!(reset_code(&f), FLOW_CONTROL_ERROR, "stream {}", f.stream);
                    reset += 1;
                }
                Some(f) if f.kind == GOAWAY => break,
                Some(_) => {}
                None => break,
            }
        }
        forced += reset;
    }
    let (end, _) = raw.end(Duration::from_secs(10)).await;
    let goaway = goaway(&end);
    assert_eq!((goaway.code, goaway.debug.as_str()), (ENHANCE_YOUR_CALM, "too_many_resets"), "{forced} resets");
    assert!((500..1024).contains(&forced), "{forced} streams reset by the server");
    let attack = format!("MadeYouReset (CVE-2025-8671), {forced} streams reset by the server");
    attacked.finish(&attack, &end, GROWTH_BOUND).await;
}

/// RUSTSEC-2026-0258: DATA frames of one byte, or of none, on a stream the
/// server holds without reading (its client's window is 0, so Classify
/// answers nothing and reads nothing). h2 before 0.4.16 queued each frame;
/// now a budget of small frames, and 100 empty ones, end the connection.
#[tokio::test]
async fn a_flood_of_tiny_data_frames_gets_a_goaway_enhance_your_calm() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let mut ends = Vec::new();
    for payload in [&[0u8][..], &[]] {
        let tcp = TcpStream::connect(attacked.addr).await.expect("connect");
        let mut raw = Raw::over(tcp, &[(INITIAL_WINDOW_SIZE, 0)]).await;
        raw.send(&frame(HEADERS, END_HEADERS, 1, &grpc_headers(CLASSIFY))).await.expect("a call");
        let sent = raw.flood(&frame(DATA, 0, 1, payload).repeat(4096), 32 << 20).await;
        let (end, _) = raw.end(Duration::from_secs(10)).await;
        let goaway = goaway(&end);
        assert_eq!((goaway.code, goaway.debug.as_str()), (ENHANCE_YOUR_CALM, "too_many_data_frames"), "{sent} sent");
        ends.push(end);
    }
    attacked.finish("DATA frames of 1 byte, then of 0 (RUSTSEC-2026-0258)", &ends, GROWTH_BOUND).await;
}

/// A header block that never ends: HEADERS without END_HEADERS, then
/// CONTINUATION frames of one small header each (the CONTINUATION flood of
/// 2024, RUSTSEC-2024-0332 in h2).
#[tokio::test]
async fn a_continuation_flood_gets_a_goaway_enhance_your_calm() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let mut raw = Raw::connect(attacked.addr).await;
    raw.send(&frame(HEADERS, 0, 1, &grpc_headers(SEARCH))).await.expect("headers");
    let field = [0x00, 3, b'x', b'-', b'a', 1, b'b'];
    let sent = raw.flood(&frame(CONTINUATION, 0, 1, &field).repeat(4096), 32 << 20).await;
    let (end, _) = raw.end(Duration::from_secs(10)).await;
    let goaway = goaway(&end);
    assert_eq!((goaway.code, goaway.debug.as_str()), (ENHANCE_YOUR_CALM, "too_many_continuations"), "{sent} sent");
    attacked.finish("CONTINUATION flood (RUSTSEC-2024-0332)", &end, GROWTH_BOUND).await;
}

/// HPACK abuse: header blocks that open with a thousand dynamic table size
/// updates each (allowed, and cheap: every call is answered), then one
/// update past the table size the server allows (a connection error).
#[tokio::test]
async fn hpack_table_size_updates_are_served_and_one_too_large_gets_a_goaway() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let mut raw = Raw::connect(attacked.addr).await;
    let updates: Vec<u8> = [table_size_update(0), table_size_update(4096)].concat().repeat(1000);
    let headers = [&updates[..], &grpc_headers(SEARCH)].concat();
    // Rounds within the 256 streams the server takes at once.
    let (mut next, mut answered) = (1, 0);
    for _ in 0..5 {
        for stream in (next..).step_by(2).take(200) {
            raw.call_with(stream, &headers, 0, BANANA).await;
        }
        next += 400;
        for _ in 0..200 {
            until_trailers(&mut raw).await;
            answered += 1;
        }
    }
    let past = [table_size_update(1 << 30), grpc_headers(SEARCH)].concat();
    raw.send(&frame(HEADERS, END_HEADERS | END_STREAM, next, &past)).await.expect("the last block");
    let (end, _) = raw.end(Duration::from_secs(10)).await;
    assert_connection_error(&end);
    let attack = format!("HPACK table size updates, {answered} calls answered, then one past the table");
    attacked.finish(&attack, &end, GROWTH_BOUND).await;
}

/// HPACK abuse: a literal header value that claims a gigabyte, its bytes
/// sent in CONTINUATION frames of 16 KiB for as long as the server reads
/// them: buffered whole, they would be 64 MiB.
#[tokio::test]
async fn an_hpack_literal_of_a_gigabyte_gets_a_goaway() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let mut raw = Raw::connect(attacked.addr).await;
    let chunk = vec![b'a'; 16 << 10];
    let huge = literal_indexed("x-huge", 1 << 30, &chunk[..8 << 10]);
    raw.send(&frame(HEADERS, 0, 1, &[grpc_headers(SEARCH), huge].concat())).await.expect("headers");
    let sent = raw.flood(&frame(CONTINUATION, 0, 1, &chunk), 64 << 20).await;
    let (end, _) = raw.end(Duration::from_secs(10)).await;
    assert_connection_error(&end);
    let attack = format!("an HPACK literal of 1 GiB, {} KiB of it sent", sent >> 10);
    attacked.finish(&attack, &end, GROWTH_BOUND).await;
}

/// HPACK abuse, the bomb: a 4 KB header put in the dynamic table once, then
/// header blocks that name it sixteen thousand times in one byte each (64 MB
/// of headers a block, decoded).
#[tokio::test]
async fn an_hpack_bomb_gets_a_goaway() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let mut raw = Raw::connect(attacked.addr).await;
    let bomb = literal_indexed("x-bomb", 4000, &[b'b'; 4000]);
    raw.call_with(1, &[grpc_headers(SEARCH), bomb].concat(), 0, BANANA).await;
    // Index 62: the first entry of the dynamic table.
    let block = [grpc_headers(SEARCH), vec![0x80 | 62; 16_000]].concat();
    let blocks: Vec<u8> =
        (3..).step_by(2).take(1000).flat_map(|stream| frame(HEADERS, END_HEADERS, stream, &block)).collect();
    let sent = raw.flood(&blocks, blocks.len()).await;
    let (end, frames) = raw.end(Duration::from_secs(10)).await;
    assert!(frames.iter().any(|f| f.kind == HEADERS && f.stream == 1), "the call with the header is answered");
    let goaway = goaway(&end);
    assert_eq!((goaway.code, goaway.debug.as_str()), (ENHANCE_YOUR_CALM, "header_list_way_too_large"), "{sent} sent");
    attacked.finish("an HPACK bomb", &end, GROWTH_BOUND).await;
}

/// Sends copies of `one` (32 MiB at most) as the server reads, then reads
/// until the connection ends: the end, and how many of the frames were
/// acknowledged.
async fn flood(attacked: &Attacked, one: &[u8], answer_kind: u8) -> (End, usize) {
    let mut raw = Raw::connect(attacked.addr).await;
    raw.flood(&one.repeat((64 << 10) / one.len() + 1), 32 << 20).await;
    let (end, frames) = raw.end(Duration::from_secs(10)).await;
    let answers = frames.iter().filter(|f| f.kind == answer_kind && f.flags & ACK != 0).count();
    (end, answers)
}

/// A PING flood (CVE-2019-9512): each PING demands an answer.
#[tokio::test]
async fn a_ping_flood_gets_a_goaway_enhance_your_calm() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let (end, pongs) = flood(&attacked, &frame(PING, 0, 0, &[7; 8]), PING).await;
    let goaway = goaway(&end);
    assert_eq!((goaway.code, goaway.debug.as_str()), (ENHANCE_YOUR_CALM, "too_many_pings"));
    assert!(pongs <= 4, "{pongs} PINGs answered: the fourth quick one is the last");
    attacked.finish("PING flood (CVE-2019-9512)", &end, GROWTH_BOUND).await;
}

/// A SETTINGS flood (CVE-2019-9515): each SETTINGS demands an answer, and
/// these change the window of every stream a thousand times each.
#[tokio::test]
async fn a_settings_flood_gets_a_goaway_enhance_your_calm() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let window = |size: u32| [INITIAL_WINDOW_SIZE.to_be_bytes().to_vec(), size.to_be_bytes().to_vec()].concat();
    let settings: Vec<u8> = (0..1000).flat_map(|i| window(65_535 + i)).collect();
    let (end, acks) = flood(&attacked, &frame(SETTINGS, 0, 0, &settings), SETTINGS).await;
    let goaway = goaway(&end);
    assert_eq!((goaway.code, goaway.debug.as_str()), (ENHANCE_YOUR_CALM, "too_many_settings"));
    // The preface's SETTINGS and up to four of the flood.
    assert!(acks <= 5, "{acks} SETTINGS acknowledged");
    attacked.finish("SETTINGS flood (CVE-2019-9515)", &end, GROWTH_BOUND).await;
}

/// A WINDOW_UPDATE flood: 8 MiB of connection window updates of one byte.
/// None asks for an answer, and each costs the server what reading it
/// costs: the connection stays open and serves a call afterwards.
#[tokio::test]
async fn a_window_update_flood_leaves_the_connection_serving() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    let mut raw = Raw::connect(attacked.addr).await;
    let sent = raw.flood(&frame(WINDOW_UPDATE, 0, 0, &1u32.to_be_bytes()).repeat(4096), 8 << 20).await;
    assert!(sent >= 8 << 20, "the server closed after {sent} bytes");
    raw.call(1, SEARCH, BANANA).await;
    let answered = loop {
        match raw.next(Duration::from_secs(30)).await {
            Some(f) if f.kind == HEADERS && f.stream == 1 && f.flags & END_STREAM != 0 => break true,
            Some(f) if f.kind == GOAWAY => break false,
            Some(_) => {}
            None => break false,
        }
    };
    assert!(answered, "the call after the flood is answered");
    let (end, _) = raw.end(Duration::from_millis(200)).await;
    assert_eq!(end, End::Open);
    attacked.finish("WINDOW_UPDATE flood", &end, GROWTH_BOUND).await;
}

/// Scans whose answers are 2.2 times their texts, held by clients that read
/// nothing. Both open with windows of 0, so that every Scan starts and
/// waits; then one opens the largest windows but never reads its socket
/// (its 40 Scans answer until the kernel's buffers are full; the server's
/// send buffer, `--max-send-buffer`, is then all it holds of each answer),
/// while the other's 24 Scans wait on. The server holds the texts it was
/// sent (64 MiB), not the answers (140 MiB).
#[tokio::test]
async fn clients_that_read_nothing_cannot_make_the_server_hold_their_answers() {
    let _load = loads_the_machine().await;
    let attacked = Attacked::start().await;
    const TEXT: usize = 1 << 20;
    let request = prost::Message::encode_to_vec(&ScanRequest { text: "banana".repeat(TEXT / 6) });
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gzip, &request).expect("gzip");
    let compressed = gzip.finish().expect("gzip");
    let headers = grpc_headers_with(SCAN, &[("grpc-encoding", "gzip")]);

    let zero = TcpStream::connect(attacked.addr).await.expect("connect");
    // A small receive buffer keeps the kernels from holding much.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small receive buffer");
    socket.connect(&attacked.addr.into()).expect("connect");
    socket.set_nonblocking(true).expect("non-blocking");
    let deaf = TcpStream::from_std(socket.into()).expect("a tokio socket");
    // Neither reads the server's window updates: each sends less than the
    // 64 KiB a connection starts with (1.6 KB a Scan).
    assert!(compressed.len() * 40 < 65_000, "{} bytes a Scan", compressed.len());
    let zero = Raw::over(zero, &[(INITIAL_WINDOW_SIZE, 0)]).await;
    let mut clients = [(zero, 24), (Raw::over(deaf, &[(INITIAL_WINDOW_SIZE, 0)]).await, 40)];
    for (raw, scans) in &mut clients {
        for stream in (1..).step_by(2).take(*scans) {
            raw.call_with(stream, &headers, 1, &compressed).await;
        }
    }
    // Every text decoded, every Scan waiting for a window.
    attacked.settled().await;
    let deaf = &mut clients[1].0;
    let largest = 0x7fff_ffffu32;
    let open = [
        frame(SETTINGS, 0, 0, &[INITIAL_WINDOW_SIZE.to_be_bytes().to_vec(), largest.to_be_bytes().to_vec()].concat()),
        frame(WINDOW_UPDATE, 0, 0, &(largest - 65_535).to_be_bytes()),
    ];
    deaf.send(&open.concat()).await.expect("windows");
    // The deaf client's Scans answer until nothing more goes out.
    attacked.settled().await;
    let held = memory(attacked.pid).1.saturating_sub(attacked.before);
    drop(clients);
    let texts = (64 * TEXT) as u64;
    assert!(held > texts, "the texts were not all held: {held} bytes");
    // Each text was inflated, then made a string: some of the inflated
    // bytes, freed, stay with the allocator (about 40 MiB here). Answers
    // buffered whole would add 90 MiB more.
    let attack = "two clients that read nothing, holding 64 Scans of 1 MiB";
    attacked.finish(attack, &End::Open, texts + texts / 2 + GROWTH_BOUND).await;
}
