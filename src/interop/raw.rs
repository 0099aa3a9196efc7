//! gRPC calls over a bare HTTP/2 connection (the `h2` crate), for the cases
//! that need what a gRPC library hides: each request message's compressed
//! flag set by hand, and each answer message's flag read. tonic compresses
//! all of a call's messages or none, and inflates answers without saying
//! whether they were compressed.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Request};
use prost::Message;
use tokio::net::TcpStream;
use tonic::Code;

use super::client::{Failed, InteropTarget};

/// The encoding the raw calls compress with and accept.
const GZIP: &str = "gzip";

/// One request message: its bytes, and whether to send it compressed.
pub(super) struct Outgoing {
    pub(super) message: Vec<u8>,
    pub(super) compressed: bool,
}

impl Outgoing {
    /// `message`, encoded, compressed or not.
    pub(super) fn new(message: &impl Message, compressed: bool) -> Self {
        Self { message: message.encode_to_vec(), compressed }
    }
}

/// One answer message: whether it came compressed, and its bytes inflated.
pub(super) struct Incoming {
    pub(super) compressed: bool,
    pub(super) message: Bytes,
}

/// What a call ended with.
pub(super) struct Answer {
    pub(super) messages: Vec<Incoming>,
    pub(super) code: Code,
    pub(super) message: String,
}

/// An HTTP/2 connection to the server.
pub(super) struct Raw {
    send: SendRequest<Bytes>,
    base: String,
}

impl Raw {
    /// Connects to `target`: TLS with ALPN `h2` when it has TLS, else HTTP/2
    /// by prior knowledge.
    pub(super) async fn connect(target: &InteropTarget) -> Result<Self, Failed> {
        let cannot = |err: &dyn std::fmt::Display| Failed(format!("cannot connect to {}: {err}", target.describe()));
        let tcp = TcpStream::connect((target.host.as_str(), target.port)).await.map_err(|err| cannot(&err))?;
        let _ = tcp.set_nodelay(true);
        let host = target.authority_host();
        let send = match &target.tls {
            None => {
                let (send, connection) = h2::client::handshake(tcp).await.map_err(|err| cannot(&err))?;
                tokio::spawn(connection);
                send
            }
            Some(tls) => {
                let config = tls.rustls_config(vec![b"h2".to_vec()]).map_err(|err| cannot(&err))?;
                let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|err| cannot(&err))?;
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(&config))
                    .connect(name, tcp)
                    .await
                    .map_err(|err| cannot(&err))?;
                let (send, connection) = h2::client::handshake(stream).await.map_err(|err| cannot(&err))?;
                tokio::spawn(connection);
                send
            }
        };
        let scheme = if target.tls.is_some() { "https" } else { "http" };
        Ok(Self { send, base: format!("{scheme}://{host}:{}", target.port) })
    }

    /// Calls `path` with `messages` (then the end of the request), the
    /// request naming gzip when `encoding` (as a library does for a call
    /// that compresses, whatever each message's flag), and reads the whole
    /// answer.
    pub(super) async fn call(&mut self, path: &str, encoding: bool, messages: &[Outgoing]) -> Result<Answer, Failed> {
        let failed = |err: &dyn std::fmt::Display| Failed(format!("{path}: {err}"));
        let mut request = Request::post(format!("{}{path}", self.base))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-accept-encoding", GZIP);
        if encoding {
            request = request.header("grpc-encoding", GZIP);
        }
        let request = request.body(()).map_err(|err| failed(&err))?;
        let send = self.send.clone().ready().await.map_err(|err| failed(&err))?;
        self.send = send;
        let (response, mut body) = self.send.send_request(request, messages.is_empty()).map_err(|err| failed(&err))?;
        for (i, outgoing) in messages.iter().enumerate() {
            let data = if outgoing.compressed { gzip(&outgoing.message) } else { outgoing.message.clone() };
            body.send_data(envelope(outgoing.compressed, &data), i + 1 == messages.len())
                .map_err(|err| failed(&err))?;
        }
        let response = response.await.map_err(|err| failed(&err))?;
        let (parts, mut body) = response.into_parts();
        if let Some(answer) = status_in(&parts.headers) {
            return Ok(Answer { messages: Vec::new(), code: answer.0, message: answer.1 });
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|err| failed(&err))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(|err| failed(&err))?.unwrap_or_default();
        let (code, message) = status_in(&trailers).ok_or_else(|| Failed(format!("{path}: no grpc-status")))?;
        let compressed_with = parts.headers.get("grpc-encoding").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let messages =
            messages_of(data.freeze(), compressed_with.as_deref()).map_err(|err| Failed(format!("{path}: {err}")))?;
        Ok(Answer { messages, code, message })
    }
}

/// The status in `headers`, if there is one.
fn status_in(headers: &HeaderMap) -> Option<(Code, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    let message = headers.get("grpc-message").map(HeaderValue::as_bytes).unwrap_or_default();
    let message = percent_decode(message);
    Some((Code::from_i32(code), message))
}

/// A `grpc-message`'s percent-encoding undone.
fn percent_decode(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let hex = value.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (value[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One gRPC envelope.
fn envelope(compressed: bool, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.extend_from_slice(&[u8::from(compressed)]);
    // Messages here are far below 4 GiB.
    out.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// The messages of an answer body, inflated when flagged compressed.
fn messages_of(mut data: Bytes, encoding: Option<&str>) -> Result<Vec<Incoming>, String> {
    let mut messages = Vec::new();
    while data.has_remaining() {
        if data.len() < 5 {
            return Err("the answer ends inside a message prefix".into());
        }
        let compressed = data[0] == 1;
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        data.advance(5);
        if data.len() < len {
            return Err("the answer ends inside a message".into());
        }
        let message = data.split_to(len);
        let message = if compressed {
            if encoding != Some(GZIP) {
                return Err(format!("a compressed message with grpc-encoding {encoding:?}"));
            }
            let mut inflated = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&message[..]), &mut inflated)
                .map_err(|err| format!("a message that does not inflate: {err}"))?;
            Bytes::from(inflated)
        } else {
            message
        };
        messages.push(Incoming { compressed, message });
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_are_percent_decoded() {
        assert_eq!(percent_decode(b"%09%0Atest%20%E2%98%BA"), "\t\ntest \u{263a}");
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%zz"), "%zz");
    }

    #[test]
    fn answers_are_split_and_inflated() {
        let plain = envelope(false, b"abc");
        let packed = envelope(true, &gzip(b"zeros"));
        let messages = messages_of(Bytes::from([plain.to_vec(), packed.to_vec()].concat()), Some(GZIP)).expect("ok");
        let seen: Vec<(bool, &[u8])> = messages.iter().map(|m| (m.compressed, &m.message[..])).collect();
        assert_eq!(seen, vec![(false, &b"abc"[..]), (true, &b"zeros"[..])]);
        assert!(messages_of(Bytes::from(packed.to_vec()), None).is_err(), "compressed without an encoding");
        assert!(messages_of(Bytes::from_static(&[0, 0, 0]), None).is_err());
    }
}
