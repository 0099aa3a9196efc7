//! gRPC's interop test cases, every one, by the Rust interop client against
//! the TestService served in-process by the real server, in plaintext and
//! over TLS. The cancellation cases also check the server's side: the call
//! ended (CANCELLED in the metrics, nothing in flight, no handler alive),
//! which the client alone cannot see.

use crate::common;

use std::time::Duration;

use crate::common::pki::pki;
use crate::common::{TestServer, eventually};
use search::interop::{self, Case, Interop, InteropTarget};
use search::server::ServerConfig;
use search::tls::{ClientTls, ServerTls};

/// The interop server, with metrics on, plaintext or TLS.
async fn interop_server(interop: &Interop, tls: Option<ServerTls>) -> TestServer {
    let mut config = ServerConfig {
        tls,
        metrics_listen: Some("127.0.0.1:0".into()),
        grace: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    config.services = interop::services(interop.clone(), config.max_recv_bytes);
    TestServer::start_with("127.0.0.1:0", config).await
}

/// Calls of `method` the server has ended with `code` (its metrics).
async fn ended(server: &TestServer, method: &str, code: &str) -> u64 {
    let samples = common::http::scrape(server.handle.metrics_addr().expect("metrics on")).await;
    let name = format!(
        r#"grpc_server_call_duration_seconds_count{{grpc_method="grpc.testing.TestService/{method}",protocol="grpc",grpc_status="{code}"}}"#
    );
    samples.get(&name).copied().unwrap_or(0.0) as u64
}

/// The method each cancellation case cancels a call of.
fn cancelled_method(case: Case) -> Option<&'static str> {
    match case {
        Case::CancelAfterBegin => Some("StreamingInputCall"),
        Case::CancelAfterFirstResponse => Some("FullDuplexCall"),
        _ => None,
    }
}

/// Runs every case against `server`, as `peer` reaches it.
async fn every_case(server: &TestServer, interop: &Interop, peer: &InteropTarget) {
    for case in Case::ALL {
        let method = cancelled_method(case);
        let before = match method {
            Some(method) => ended(server, method, "CANCELLED").await,
            None => 0,
        };
        if let Err(err) = case.run(peer).await {
            panic!("{}: {err}", case.name());
        }
        // The server ends what the client cancelled: no call left running.
        if let Some(method) = method {
            for _ in 0..200 {
                if ended(server, method, "CANCELLED").await > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(ended(server, method, "CANCELLED").await, before + 1, "{}: the server ended it", case.name());
        }
        eventually(&format!("{}: no call in flight", case.name()), || server.handle.in_flight() == 0).await;
        eventually(&format!("{}: no handler alive", case.name()), || interop.running() == 0).await;
    }
}

#[tokio::test]
async fn every_case_passes_in_plaintext() {
    let interop = Interop::default();
    let server = interop_server(&interop, None).await;
    let peer = InteropTarget { host: "127.0.0.1".into(), port: server.addr.port(), host_override: None, tls: None };
    every_case(&server, &interop, &peer).await;
    server.stop().await;
}

#[tokio::test]
async fn every_case_passes_over_tls() {
    let pki = pki();
    let (cert, key) = pki.server.clone();
    let interop = Interop::default();
    let server = interop_server(&interop, Some(ServerTls::from_pem(cert.into_bytes(), key.into_bytes(), None))).await;
    let tls = ClientTls::from_pem(Some(pki.ca.clone().into_bytes()), None);
    // The certificate names localhost: the address is overridden, as
    // grpc's clients do with --server_host_override.
    let peer = InteropTarget {
        host: "127.0.0.1".into(),
        port: server.addr.port(),
        host_override: Some("localhost".into()),
        tls: Some(tls),
    };
    every_case(&server, &interop, &peer).await;
    server.stop().await;
}

/// The load report cases, against the interop server as
/// `examples/interop_server.rs` runs it; and against one without load
/// reports, where they fail.
#[tokio::test]
async fn the_orca_cases_pass_with_load_reports_on() {
    let orca = interop::orca::reporter();
    let mut config = ServerConfig { orca: Some(orca.clone()), ..ServerConfig::default() };
    config.services = interop::services(Interop::with_orca(orca), config.max_recv_bytes);
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let peer = InteropTarget { host: "127.0.0.1".into(), port: server.addr.port(), host_override: None, tls: None };
    for case in Case::ORCA {
        if let Err(err) = case.run(&peer).await {
            panic!("{}: {err}", case.name());
        }
    }
    server.stop().await;
    let interop = Interop::default();
    let server = interop_server(&interop, None).await;
    let peer = InteropTarget { host: "127.0.0.1".into(), port: server.addr.port(), host_override: None, tls: None };
    for case in Case::ORCA {
        assert!(case.run(&peer).await.is_err(), "{} passes without load reports", case.name());
    }
    server.stop().await;
}

#[test]
fn every_case_has_its_name() {
    assert_eq!(Case::ALL.len(), 18);
    for case in Case::ALL.into_iter().chain(Case::ORCA) {
        assert_eq!(Case::from_name(case.name()), Some(case));
    }
    assert_eq!(Case::from_name("cacheable_unary"), None);
}
