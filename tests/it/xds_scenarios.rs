//! The xDS scenario table: each scenario run by this project's client,
//! grpcio (the reference xDS client) and Envoy where it applies, all fed by
//! one management server (`peers/xds/control_plane.py`) in front of three
//! replicas of our server, on 127.0.0.1. `peers/xds/scenarios.py` runs a
//! scenario, each client in its turn, and prints what it measured as one
//! JSON line; each test here prints its row of the table and asserts on it.
//!
//! They need the xDS venv (`bash peers/xds/venv.sh`) and Envoy from the
//! interop venv (target/interop-venv, `pip install -r peers/requirements.txt`)
//! or `$ENVOY`. The table, as docs/xds.md shows it:
//!
//! ```sh
//! cargo test --test it xds_scenarios -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// The clients of the table, in its column order.
const CLIENTS: [&str; 3] = ["ours", "grpcio", "Envoy"];

/// One client's part of a row, as scenarios.py reports it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Column {
    error: Option<String>,
    codes: BTreeMap<String, u64>,
    calls: u64,
    messages: BTreeMap<String, String>,
    elapsed_s: f64,
    per_replica: Vec<u64>,
    shares: Vec<f64>,
    phases: Vec<Vec<u64>>,
    answers: Vec<BTreeMap<String, String>>,
    nack_errors: Vec<String>,
    running: bool,
    resubscribed_s: f64,
    keys: Vec<i64>,
}

impl Column {
    fn ok(&self) -> u64 {
        self.codes.get("OK").copied().unwrap_or(0)
    }

    fn failed(&self) -> u64 {
        self.calls - self.ok()
    }

    fn codes(&self) -> String {
        let codes: Vec<String> = self.codes.iter().map(|(code, n)| format!("{code} {n}")).collect();
        codes.join(", ")
    }
}

#[derive(Debug, Deserialize)]
struct Row {
    scenario: String,
    clients: BTreeMap<String, Column>,
    seconds: f64,
}

impl Row {
    fn column(&self, who: &str) -> &Column {
        let column = self.clients.get(who).unwrap_or_else(|| panic!("no {who} column in {self:?}"));
        if let Some(error) = &column.error {
            panic!("{}: {who} could not run it: {error}", self.scenario);
        }
        column
    }

    /// Prints the row (Markdown, as docs/xds.md shows it): one cell per
    /// client, `describe` says what goes in it, then the scenario's time.
    fn print(&self, title: &str, describe: impl Fn(&Column) -> String) {
        let cells: Vec<String> = CLIENTS
            .iter()
            .map(|who| match self.clients.get(*who) {
                None => "n/a".to_owned(),
                Some(Column { error: Some(error), .. }) => {
                    format!("not run: {}", error.chars().take(90).collect::<String>())
                }
                Some(column) => describe(column),
            })
            .collect();
        println!("| {title} | {} | {:.1} s |", cells.join(" | "), self.seconds);
    }
}

/// Runs scenarios.py for `scenario`, one at a time (each runs three replicas,
/// Envoy, the management server and the clients on a two-core machine).
async fn row(scenario: &str) -> Option<Row> {
    run(scenario, true).await
}

/// Runs scenarios.py for `scenario`; `alone`: beside no other test that
/// loads the machine; else beside anything.
async fn run(scenario: &str, alone: bool) -> Option<Row> {
    // Three replicas, Envoy and a client at 400 calls a second fill the two
    // cores: no other loading test beside one (each way, the other's
    // deadlines and rates would suffer).
    // A light one (idle replicas, a call or two) takes no lock: under
    // `loads_the_machine` it would keep the heavy ones waiting.
    let _quiet = if alone { Some(crate::common::needs_a_quiet_machine().await) } else { None };
    let python = crate::common::xds_python()?;
    crate::common::envoy_or_skip()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/xds/scenarios.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .arg(scenario)
        .args(["--server", env!("CARGO_BIN_EXE_server"), "--client", env!("CARGO_BIN_EXE_client")])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run peers/xds/scenarios.py");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "scenarios.py {scenario} failed ({}):\n{stderr}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).expect("a JSON row on stdout");
    let row: Value = serde_json::from_str(line).expect("JSON");
    Some(serde_json::from_value(row).expect("a row of scenarios.py's shape"))
}

fn percent(shares: &[f64]) -> String {
    let cells: Vec<String> = shares.iter().map(|s| format!("{:.1}%", s * 100.0)).collect();
    cells.join(" / ")
}

/// Asserts each client's shares of the replicas within 3 points of `expected`
/// and of one another.
fn assert_shares(row: &Row, expected: &[f64]) {
    for who in CLIENTS {
        let column = row.column(who);
        assert_eq!(column.failed(), 0, "{who}: {}", column.codes());
        for (share, want) in column.shares.iter().zip(expected) {
            assert!((share - want).abs() <= 0.03, "{who}: shares {:?}, expected {expected:?}", column.shares);
        }
        for other in CLIENTS {
            for (a, b) in column.shares.iter().zip(&row.column(other).shares) {
                assert!(
                    (a - b).abs() <= 0.03,
                    "{who} and {other} disagree: {:?} {:?}",
                    column.shares,
                    row.column(other).shares
                );
            }
        }
    }
}

#[tokio::test]
async fn weighted_clusters_80_20() {
    let Some(row) = row("weighted").await else { return };
    row.print("weighted clusters 80/20, 3,000 calls", |c| {
        format!("{}; main / canary / other {}", c.codes(), percent(&c.shares))
    });
    assert_shares(&row, &[0.80, 0.20, 0.0]);
    for who in CLIENTS {
        assert_eq!(row.column(who).calls, 3000, "{who}");
    }
}

#[tokio::test]
async fn locality_weights_1_2_1() {
    // 4,000 calls: two clients each picking at random agree within 3
    // points far more surely than over 2,000 (a standard deviation of the
    // difference near 1.1 points rather than 1.6).
    let Some(row) = row("localities").await else { return };
    row.print("locality weights 1:2:1, 4,000 calls", |c| format!("{}; {}", c.codes(), percent(&c.shares)));
    assert_shares(&row, &[0.25, 0.50, 0.25]);
}

/// Asserts every call of every client succeeded, through every phase.
fn assert_none_failed(row: &Row) {
    for who in CLIENTS {
        let column = row.column(who);
        assert!(column.calls > 0 && column.failed() == 0, "{who}: {}", column.codes());
        assert!(column.running, "{who}: the run ended before the last phase");
    }
}

#[tokio::test]
async fn priority_failover_and_back() {
    let Some(row) = row("failover").await else { return };
    row.print("priority 0 unhealthy, then healthy (calls per replica, p0 / p1 / other)", |c| {
        format!("{}; unhealthy {:?}, healthy again {:?}", c.codes(), c.phases[0], c.phases[1])
    });
    assert_none_failed(&row);
    for who in CLIENTS {
        let phases = &row.column(who).phases;
        // From the client's ACK on: priority 1 (the second replica) while
        // priority 0 is unhealthy, then priority 0 again.
        for (phase, replica) in phases.iter().zip([1, 0]) {
            let sum: u64 = phase.iter().sum();
            assert!(phase[replica] * 100 >= sum * 95, "{who}: {phases:?}");
        }
    }
}

#[tokio::test]
async fn an_endpoint_removed_by_eds_mid_traffic() {
    let Some(row) = row("removed").await else { return };
    row.print("endpoint removed by EDS (calls per replica after the ACK)", |c| {
        format!("{}; failed {}; after the ACK {:?}", c.codes(), c.failed(), c.phases[0])
    });
    assert_none_failed(&row);
    for who in CLIENTS {
        let column = row.column(who);
        assert_eq!(column.answers[0].get("eds").map(String::as_str), Some("ack"), "{who}: {:?}", column.answers);
        assert_eq!(column.phases[0][1], 0, "{who}: calls to the removed endpoint after its ACK");
    }
}

#[tokio::test]
async fn an_invalid_update_nacked_then_a_valid_one() {
    let Some(row) = row("nack").await else { return };
    row.print("invalid cluster NACKed, then valid (calls per replica: main / old canary / new canary)", |c| {
        format!(
            "{}; answers {:?}; after the NACK {:?}, after the valid update {:?}",
            c.codes(),
            c.answers,
            c.phases[0],
            c.phases[1]
        )
    });
    assert_none_failed(&row);
    for who in CLIENTS {
        let column = row.column(who);
        assert_eq!(column.answers[0].get("cds").map(String::as_str), Some("nack"), "{who}: {:?}", column.answers);
        assert!(column.answers[1].values().all(|a| a == "ack"), "{who}: {:?}", column.answers);
        assert!(column.nack_errors.iter().any(|e| e.contains("ring")), "{who}: {:?}", column.nack_errors);
        // The last good config (80/20 over the first two replicas) until the
        // valid one (80/20 over the first and the third).
        let [old, new] = [&column.phases[0], &column.phases[1]].map(|p| {
            let sum: f64 = p.iter().sum::<u64>() as f64;
            p.iter().map(|&n| n as f64 / sum).collect::<Vec<_>>()
        });
        assert!(column.phases[0][2] == 0 && (old[1] - 0.2).abs() <= 0.05, "{who}: {:?}", column.phases);
        assert!((new[2] - 0.2).abs() <= 0.05, "{who}: {:?}", column.phases);
    }
}

#[tokio::test]
async fn the_management_server_killed_and_restarted() {
    let Some(row) = row("restart").await else { return };
    row.print("management server killed and restarted", |c| {
        format!("{}; failed {}; subscribed again {:.2} s after the restart", c.codes(), c.failed(), c.resubscribed_s)
    });
    assert_none_failed(&row);
}

#[tokio::test]
async fn a_route_retry_policy_on_unavailable() {
    let Some(row) = row("retry").await else { return };
    row.print("retry on UNAVAILABLE (3 retries), replica refusing 2 of every 3 calls", |c| {
        format!("{}; {} attempts at the replica for {} calls", c.codes(), c.per_replica[2], c.calls)
    });
    for who in CLIENTS {
        let column = row.column(who);
        assert_eq!((column.calls, column.failed()), (100, 0), "{who}: {}", column.codes());
        // Calls made one at a time: each is refused twice, then served (the
        // first of a turn may come mid-cycle, after the client before it).
        let attempts = column.per_replica[2];
        assert!(
            (298..=300).contains(&attempts) && column.per_replica[..2] == [0, 0],
            "{who}: {:?}",
            column.per_replica
        );
    }
}

#[tokio::test]
async fn ring_hash_by_header() {
    let Some(row) = row("ring_hash").await else { return };
    row.print("ring hash on header x-user, 8 keys × 5 calls: the replica each key went to", |c| {
        format!("{}; {:?}", c.codes(), c.keys)
    });
    let ours = &row.column("ours").keys;
    for who in CLIENTS {
        let column = row.column(who);
        assert_eq!((column.calls, column.failed()), (40, 0), "{who}: {}", column.codes());
        assert!(
            column.keys.iter().all(|replica| *replica >= 0),
            "{who}: a key's calls went to one replica: {column:?}"
        );
        assert_eq!(&column.keys, ours, "{who} sends each key where ours does: the same ring");
    }
    assert!(ours.iter().any(|r| *r != ours[0]), "the keys spread over the replicas: {ours:?}");
}

#[tokio::test]
async fn a_listener_that_does_not_exist() {
    // Light (idle replicas, one call each), and mostly grpcio's 15 s timer:
    // it runs beside the others.
    let Some(row) = run("does_not_exist", false).await else { return };
    row.print("xds:///nowhere, a listener never sent: code, message, when", |c| {
        let (code, message) = c.messages.iter().next().map_or(("OK", ""), |(c, m)| (c.as_str(), m.as_str()));
        format!("{code} \"{message}\" after {:.2} s", c.elapsed_s)
    });
    for who in ["ours", "grpcio"] {
        let column = row.column(who);
        assert_eq!(column.codes.keys().collect::<Vec<_>>(), ["UNAVAILABLE"], "{who}: {column:?}");
        assert!(column.messages["UNAVAILABLE"].contains("nowhere"), "{who}: {:?}", column.messages);
    }
}
