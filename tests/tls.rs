//! TLS and mutual TLS, with certificates made at test time (rcgen): no key
//! is committed. Each failure is one clear line.

mod common;

use std::time::Duration;

use common::TestServer;
use common::pki::{Pki, ca, pki};
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
