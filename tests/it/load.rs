//! The load tool's report: its counts add up, `--json` parses into the
//! report type, failures are counted per status code, and every run is
//! bounded in calls and in time; the soak ends every call with a code its
//! traffic allows, and fails when one does not.

use crate::common;

use std::time::Duration;

use crate::common::TestServer;
use crate::common::scripted::ScriptedServer;
use search::cli::bench::{self as load, LoadCall, LoadConfig, Model, Report};
use search::cli::soak::{self, SoakConfig};
use search::client::{ClientOptions, Target};
use search::pb::v1::SearchResponse;
use search::server::ServerConfig;
use tonic::Status;

fn config(target: Target) -> LoadConfig {
    LoadConfig {
        target,
        options: ClientOptions::default(),
        call: LoadCall::Search,
        connections: 2,
        concurrency: 8,
        total: 500,
        duration: Duration::from_secs(60),
        model: Model::Closed,
        queries: vec!["Banana".into(), "Apple".into()],
        batch: 10,
        legacy: false,
        progress: false,
        verbose: false,
    }
}

/// What holds for every report.
fn check_consistent(report: &Report) {
    assert_eq!(report.ok + report.errors, report.calls);
    assert_eq!(report.status_codes.values().sum::<u64>(), report.calls);
    assert_eq!(report.histogram.iter().map(|b| b.count).sum::<u64>(), report.calls);
    assert!(report.histogram.len() <= 10, "{:?}", report.histogram);
    let l = &report.latency_us;
    assert!(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, "{l:?}");
}

#[tokio::test]
async fn a_closed_run_makes_exactly_the_calls_asked_for() {
    let server = TestServer::start().await;
    let report = load::run(config(server.target())).await.expect("runs");
    check_consistent(&report);
    assert_eq!((report.calls, report.ok, report.errors, report.queries), (500, 500, 0, 500));
    assert_eq!(report.status_codes.get("OK"), Some(&500));
    assert_eq!((report.connections, report.concurrency, report.model.as_str()), (2, 8, "closed"));
    server.stop().await;
}

#[tokio::test]
async fn the_legacy_path_can_be_driven_too() {
    let server = TestServer::start().await;
    let report = load::run(LoadConfig { legacy: true, total: 100, ..config(server.target()) }).await.expect("runs");
    check_consistent(&report);
    assert_eq!((report.calls, report.ok), (100, 100));
    server.stop().await;
}

#[tokio::test]
async fn a_classify_run_counts_calls_and_queries() {
    let server = TestServer::start().await;
    let report =
        load::run(LoadConfig { call: LoadCall::Classify, total: 200, ..config(server.target()) }).await.expect("runs");
    check_consistent(&report);
    assert_eq!((report.calls, report.ok, report.queries), (200, 200, 2000), "10 queries a batch");
    server.stop().await;
}

#[tokio::test]
async fn an_open_run_paces_calls_at_the_rate() {
    let server = TestServer::start().await;
    let report = load::run(LoadConfig { model: Model::Open { rate: 500.0 }, total: 100, ..config(server.target()) })
        .await
        .expect("runs");
    check_consistent(&report);
    assert_eq!((report.calls, report.ok), (100, 100));
    // Call 99 is not due before 99/500 s: the run cannot end sooner.
    assert!(report.elapsed_seconds >= 0.19, "{}", report.elapsed_seconds);
    assert_eq!(report.rate, Some(500.0));
    server.stop().await;
}

#[tokio::test]
async fn a_run_stops_at_its_duration() {
    let server = TestServer::start().await;
    let report =
        load::run(LoadConfig { total: u64::MAX, duration: Duration::from_millis(300), ..config(server.target()) })
            .await
            .expect("runs");
    check_consistent(&report);
    assert!(report.calls > 0 && report.calls < u64::MAX);
    assert!(report.elapsed_seconds < 30.0, "bounded by --duration, not by the count");
    server.stop().await;
}

/// One call in four fails UNAVAILABLE, one INVALID_ARGUMENT, two succeed.
fn mixed(n: u64) -> Result<SearchResponse, Status> {
    match n % 4 {
        0 => Err(Status::unavailable("down on purpose")),
        1 => Err(Status::invalid_argument("refused on purpose")),
        _ => Ok(SearchResponse { status: 1 }),
    }
}

#[tokio::test]
async fn failures_are_counted_per_status_code_and_never_retried() {
    let failing = ScriptedServer::start(mixed, false).await;
    let target: Target = failing.addr.to_string().parse().expect("target");
    let report = load::run(LoadConfig { total: 400, ..config(target) }).await.expect("runs");
    check_consistent(&report);
    assert_eq!((report.calls, report.ok, report.errors), (400, 200, 200));
    let codes: Vec<(&str, u64)> = report.status_codes.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    assert_eq!(codes, [("INVALID_ARGUMENT", 100), ("OK", 200), ("UNAVAILABLE", 100)]);
    assert_eq!(failing.calls(), 400, "no retries: one attempt per call");
}

#[tokio::test]
async fn the_cli_prints_a_json_report_and_no_progress_bar_when_piped() {
    let server = TestServer::start().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["-t", &server.addr.to_string(), "--json", "bench", "-n", "300", "-c", "4", "-q", "banana"])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty(), "nothing on stderr: {}", String::from_utf8_lossy(&output.stderr));
    let report: Report = serde_json::from_slice(&output.stdout).expect("one JSON document");
    check_consistent(&report);
    assert_eq!((report.calls, report.ok), (300, 300));

    let text = tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["-t", &server.addr.to_string(), "bench", "-n", "50", "--call", "classify", "--batch", "3"])
        .output()
        .await
        .expect("runs");
    let text = String::from_utf8(text.stdout).expect("UTF-8");
    assert!(text.contains("calls       50 (50 OK, 0 errors), 150 queries"), "{text}");
    assert!(text.contains("Status codes:\n  OK                   50\n"), "{text}");

    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["-t", &server.addr.to_string(), "bench", "--call", "classify", "--rate", "10"])
        .output()
        .await
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2), "the open model drives unary calls only");
    server.stop().await;
}

/// A soak of `server` by `workers` for `duration`, bursts of `burst`. Each
/// worker starts with a scenario of its own (the i-th with the i-th of
/// search, classify, count, scan, disconnect, deadline, burst), so that each
/// of those runs however few calls a loaded machine makes in the time.
fn soak_config(server: &TestServer, workers: usize, burst: usize, duration: Duration) -> SoakConfig {
    SoakConfig {
        target: server.target(),
        options: ClientOptions::default(),
        duration,
        workers,
        burst,
        // The server runs in this process.
        server_pid: Some(std::process::id()),
        verbose: false,
    }
}

#[tokio::test]
async fn a_short_soak_ends_every_call_with_a_code_its_traffic_allows() {
    let _machine = common::loads_the_machine().await;
    let config = ServerConfig { max_concurrent_calls: 16, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    // Six workers, no bursts: six calls at most under a limit of 16, so
    // none is shed, and each scenario ends as its traffic means.
    let report = soak::run(soak_config(&server, 6, 0, Duration::from_secs(3))).await.expect("runs");
    assert!(report.passed(), "{report}");
    assert!(report.started > 0 && report.started == report.ended, "{report}");
    let count = |scenario: &str, outcome: &str| report.outcomes.get(scenario).and_then(|o| o.get(outcome)).copied();
    for scenario in ["search", "classify", "count", "scan"] {
        assert!(count(scenario, "OK") > Some(0), "{scenario} ran: {report}");
    }
    assert!(count("deadline", "DEADLINE_EXCEEDED") > Some(0) && count("deadline", "OK").is_none(), "{report}");
    assert!(count("disconnect", "DROPPED_BY_CLIENT") > Some(0), "{report}");
    let rss = report.rss_kib.as_ref().expect("memory sampled");
    assert!(rss.samples >= 3 && rss.first > 0 && rss.peak >= rss.last, "{report}");
    assert!(report.fds.as_ref().is_some_and(|fds| fds.peak >= fds.first), "{report}");
    // A seventh worker's burst beside them: 24 held streams past the limit
    // of 16, the others holding six at most: some shed, some served.
    let report = soak::run(soak_config(&server, 7, 24, Duration::from_secs(1))).await.expect("runs");
    assert!(report.passed(), "{report}");
    let count = |outcome: &str| report.outcomes.get("burst").and_then(|o| o.get(outcome)).copied();
    assert!(count("OK") > Some(0) && count("RESOURCE_EXHAUSTED") > Some(0), "{report}");
    // Nothing is left behind on the server: no call, no connection.
    let handle = &server.handle;
    common::eventually("no call, no connection left", || (handle.in_flight(), handle.connections()) == (0, 0)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_soak_that_sees_unexpected_codes_fails_with_exit_1() {
    let failing = ScriptedServer::start(mixed, false).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["-t", &failing.addr.to_string(), "soak", "-z", "1s", "-c", "2"])
        .output()
        .await
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("client: soak failed: ") && stderr.contains("calls ended with an unexpected code"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("UNAVAILABLE") && stdout.contains("UNIMPLEMENTED"), "{stdout}");
}
