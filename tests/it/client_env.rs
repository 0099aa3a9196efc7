//! The `client` binary's flags read from the environment: a switch set to
//! `1`, `true` or `0`, a value it refuses, and a subcommand's flag.

use std::process::Output;

use crate::common::{TestServer, client_with_env as client};
use search::cli::bench::Report;
use search::pb::v1::SearchResponse;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_switch_is_on_for_one_and_true_and_off_for_zero() {
    let server = TestServer::start().await;
    let target = server.addr.to_string();
    let args = ["-t", &target, "Banana"];
    for on in ["1", "true", "yes"] {
        let output = client(&args, &[("SEARCH_JSON", on)]).await;
        assert_eq!(output.status.code(), Some(0), "SEARCH_JSON={on}: {}", stderr(&output));
        let answer: SearchResponse = serde_json::from_slice(&output.stdout).expect("one JSON line");
        assert_eq!(answer, SearchResponse { status: 1 }, "SEARCH_JSON={on}");
    }
    for off in ["0", "false"] {
        let output = client(&args, &[("SEARCH_JSON", off)]).await;
        assert_eq!(output.status.code(), Some(0), "SEARCH_JSON={off}: {}", stderr(&output));
        assert_eq!(output.stdout, b"status=1\n", "SEARCH_JSON={off}");
    }
    let refused = client(&args, &[("SEARCH_JSON", "maybe")]).await;
    assert_eq!(refused.status.code(), Some(2), "a usage error");
    assert!(stderr(&refused).contains("'maybe'"), "{}", stderr(&refused));
    server.stop().await;
}

#[tokio::test]
async fn a_subcommands_flags_read_their_variables() {
    let server = TestServer::start().await;
    let target = server.addr.to_string();
    let env = [("SEARCH_BENCH_TOTAL", "7"), ("SEARCH_BENCH_CONCURRENCY", "1"), ("SEARCH_JSON", "1")];
    let output = client(&["-t", &target, "bench"], &env).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Report = serde_json::from_slice(&output.stdout).expect("one JSON report");
    assert_eq!((report.calls, report.ok, report.concurrency), (7, 7, 1));
    // The command line wins over the variable.
    let output = client(&["-t", &target, "bench", "-n", "3", "-c", "1"], &env).await;
    let report: Report = serde_json::from_slice(&output.stdout).expect("one JSON report");
    assert_eq!(report.calls, 3);
    server.stop().await;
}
