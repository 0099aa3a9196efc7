//! A plain HTTP client for the web protocols' tests: one request on a new
//! connection, over HTTP/1.1 or HTTP/2 (h2c, or h2 over TLS), answered with
//! its status, headers, whole body and trailers, so that a test sees every
//! byte.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// An answer read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Answer {
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.text()))
    }
}

/// Sends `request` to `addr` over `version` (HTTP_11 or HTTP_2).
pub async fn send(addr: SocketAddr, version: Version, request: Request<Full<Bytes>>) -> Answer {
    exchange(TcpStream::connect(addr).await.expect("connect"), version, request).await
}

/// [`send`] over TLS to `localhost` at `addr`, offering `version`'s ALPN
/// name, with `tls`'s CA and client certificate.
pub async fn send_tls(
    addr: SocketAddr,
    version: Version,
    request: Request<Full<Bytes>>,
    tls: &search::tls::ClientTls,
) -> Answer {
    let alpn = if version == Version::HTTP_2 { b"h2".to_vec() } else { b"http/1.1".to_vec() };
    let config = tls.rustls_config(vec![alpn]).expect("the client's TLS");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.expect("TLS handshake");
    exchange(stream, version, request).await
}

async fn exchange<S>(stream: S, version: Version, request: Request<Full<Bytes>>) -> Answer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let response: Response<hyper::body::Incoming> = if version == Version::HTTP_2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.expect("h2 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("h2 response")
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.expect("http1 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("http1 response")
    };
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("the whole body");
    let trailers = collected.trailers().cloned();
    Answer { status: parts.status, headers: parts.headers, body: collected.to_bytes(), trailers }
}

/// A request to `path` on any host (the tests' servers answer every name).
pub fn request(method: &str, path: &str) -> http::request::Builder {
    Request::builder().method(method).uri(format!("http://localhost{path}"))
}

/// `message` in a 5-byte envelope with `flags`.
pub fn envelope(flags: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The envelopes of a body, as (flags, message) pairs.
pub fn envelopes(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        assert!(body.len() >= 5 + len, "a cut envelope: {body:?}");
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    assert!(body.is_empty(), "bytes after the last envelope: {body:?}");
    out
}

/// The samples of a `/metrics` page at `addr`: `name{labels}` to value.
pub async fn scrape(addr: SocketAddr) -> std::collections::HashMap<String, f64> {
    let answer = send(addr, Version::HTTP_11, request("GET", "/metrics").body(Full::default()).expect("request")).await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").starts_with("application/openmetrics-text"), "{answer:?}");
    let text = answer.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(name, value)| (name.to_owned(), value.parse().expect("a number")))
        .collect()
}
