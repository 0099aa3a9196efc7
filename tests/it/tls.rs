//! TLS and mutual TLS, with certificates made at test time (rcgen): no key
//! is committed. Each failure is one clear line.

use std::time::Duration;

use crate::common::TestServer;
use crate::common::pki::{Pki, ca, pki};
use search::client::{Client, ClientOptions, Error, Target};
use search::pb::v1::SearchRequest;
use search::server::ServerConfig;
use search::tls::{ClientTls, ServerTls};

async fn tls_server(pki: &Pki, mutual: bool) -> TestServer {
    tls_server_with(pki, mutual, ServerConfig::default()).await
}

async fn tls_server_with(pki: &Pki, mutual: bool, config: ServerConfig) -> TestServer {
    let (cert, key) = pki.server.clone();
    let client_ca = mutual.then(|| pki.ca.clone().into_bytes());
    let config = ServerConfig {
        tls: Some(ServerTls::from_pem(cert.into_bytes(), key.into_bytes(), client_ca)),
        grace: Duration::from_millis(200),
        ..config
    };
    TestServer::start_with("127.0.0.1:0", config).await
}

fn client(target: &str, tls: ClientTls) -> Client {
    let target: Target = target.parse().expect("valid target");
    let options = ClientOptions { tls, max_attempts: 1, timeout: Duration::from_secs(10), ..ClientOptions::default() };
    Client::new(&target, options).expect("client")
}

fn trusting(ca: &str) -> ClientTls {
    ClientTls::from_pem(Some(ca.as_bytes().to_vec()), None)
}

async fn search(client: &Client) -> Result<i32, Error> {
    client.search(SearchRequest { query: "Banana".into() }).await.map(|r| r.status)
}

#[tokio::test]
async fn a_client_trusting_the_ca_talks_tls() {
    let pki = pki();
    let server = tls_server(&pki, false).await;
    let port = server.addr.port();
    for host in ["localhost", "127.0.0.1"] {
        let client = client(&format!("https://{host}:{port}"), trusting(&pki.ca));
        assert_eq!(search(&client).await.expect("TLS call"), 1, "{host}");
    }
    server.stop().await;
}

#[tokio::test]
async fn tls_mistakes_are_one_clear_line() {
    let pki = pki();
    let server = tls_server(&pki, false).await;
    let port = server.addr.port();

    let plaintext = client(&format!("http://localhost:{port}"), ClientTls::default());
    let err = search(&plaintext).await.expect_err("plaintext against TLS");
    let message = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(message.starts_with(&format!("cannot connect to http://localhost:{port}: ")), "{message}");
    assert!(message.contains("https://"), "the message suggests TLS: {message}");
    assert_eq!(message.lines().count(), 1);

    let other_ca = ca("another CA").pem();
    let wrong_ca = client(&format!("https://localhost:{port}"), trusting(&other_ca));
    let err = search(&wrong_ca).await.expect_err("wrong CA");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to https://localhost:{port}: TLS handshake failed: invalid peer certificate: UnknownIssuer"
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate() {
    let pki = pki();
    let server = tls_server(&pki, true).await;
    let target = format!("https://localhost:{}", server.addr.port());

    let anonymous = client(&target, trusting(&pki.ca));
    let err = search(&anonymous).await.expect_err("no client certificate");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("certificate"), "{message}");
    assert_eq!(message.lines().count(), 1);

    let (cert, key) = pki.client.clone();
    let identified = client(
        &target,
        ClientTls::from_pem(Some(pki.ca.clone().into_bytes()), Some((cert.into_bytes(), key.into_bytes()))),
    );
    assert_eq!(search(&identified).await.expect("mutual TLS"), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_neither_blocks_others_nor_stays() {
    use tokio::io::AsyncReadExt;

    let pki = pki();
    let config = ServerConfig { handshake_timeout: Duration::from_millis(300), ..ServerConfig::default() };
    let server = tls_server_with(&pki, false, config).await;
    // Connects and says nothing: no ClientHello.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    // Meanwhile a real client is served: the handshake waits in a task of
    // its own, not in the accept loop.
    let talker = client(&format!("https://localhost:{}", server.addr.port()), trusting(&pki.ca));
    let answered = tokio::time::timeout(Duration::from_secs(20), search(&talker)).await;
    assert_eq!(answered.expect("served while another connection is silent").expect("TLS call"), 1);
    // The silent one is closed at the handshake timeout.
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut byte)).await;
    assert!(matches!(closed.expect("closed, not left open"), Ok(0) | Err(_)), "the server closes it");
    server.stop().await;
}

#[tokio::test]
async fn the_certificate_required_alert_survives_a_client_that_writes_at_once() {
    // TLS 1.3: a client's handshake is over when it sends its Finished, so
    // it writes at once, before the server has looked at its (missing)
    // certificate. A server that closes the socket with those bytes unread
    // resets the connection, and the client's next write fails (a broken
    // pipe) before it reads the alert. The alert must be what it reads,
    // every time.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = pki();
    let server = tls_server(&pki, true).await;
    let config = ClientTls::from_pem(Some(pki.ca.clone().into_bytes()), None)
        .rustls_config(vec![b"h2".to_vec()])
        .expect("client config");
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut seen = Vec::new();
    for _ in 0..ATTEMPTS {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("the client's side of the handshake completes");
        // The HTTP/2 preface and an empty SETTINGS frame, as hyper sends them.
        let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await;
        let _ = tls.flush().await;
        // Its first call follows a moment later (hyper hands it over from
        // another task), after the server has answered the handshake: the
        // write must not fail on a reset before the alert can be read.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let wrote = tls.write_all(&[0, 0, 0, 0x8, 0, 0, 0, 0, 0, 0, 0, 0, 0x1]).await.and(tls.flush().await);
        let mut byte = [0u8; 1];
        seen.push(match (wrote, tls.read(&mut byte).await) {
            (Err(err), _) => format!("the write failed: {err}"),
            (_, Err(err)) => err.to_string(),
            (_, Ok(n)) => format!("read {n} bytes"),
        });
    }
    let missed: Vec<&String> = seen.iter().filter(|message| !message.contains("CertificateRequired")).collect();
    assert!(missed.is_empty(), "{} of {ATTEMPTS} without the alert, such as {:?}", missed.len(), missed.first());
    server.stop().await;
}

#[tokio::test]
async fn every_client_run_without_a_certificate_prints_the_alert() {
    // What a user sees: `client` run again and again against a server that
    // requires a client certificate. Each run's call meets the alert, be it
    // on the wire when the alert comes (hyper's stream gets it) or still on
    // its way to the new connection (hyper says only "connection closed";
    // the client's TLS session kept what the alert said).
    let pki = pki();
    let server = tls_server(&pki, true).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca).expect("write the CA");
    let target = format!("https://localhost:{}", server.addr.port());
    let mut missed = Vec::new();
    for _ in 0..RUNS {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_client"))
            .args([
                "--target",
                &target,
                "--ca",
                ca.to_str().expect("UTF-8 path"),
                "--retry-max-attempts",
                "1",
                "Banana",
            ])
            .output()
            .await
            .expect("run the client");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(3), "cannot connect: {stderr}");
        if !stderr.contains("CertificateRequired (it requires a client certificate)") {
            missed.push(stderr);
        }
    }
    assert!(missed.is_empty(), "{} of {RUNS} runs without the alert, such as {:?}", missed.len(), missed.first());
    server.stop().await;
}

/// Runs of the client, one after another.
const RUNS: usize = 30;

/// Fresh connections, one after another.
const ATTEMPTS: usize = 50;
