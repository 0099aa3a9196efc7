//! Streaming Connect calls (`application/connect+json` or `+proto`): both
//! bodies are enveloped messages, as in gRPC. The request's envelopes are
//! made into gRPC's; the response's are written back, and the gRPC
//! trailers become Connect's end-of-stream message, whose `error` carries a
//! failed call's status (the HTTP status stays 200).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde_json::{Map, Value};
use tonic::Status;
use tonic::body::Body;
use tower::ServiceExt;

use super::call::{Call, Codec, Grpc, copy_metadata, is_custom, to_grpc};
use super::codec::ToJson;
use super::error::ConnectError;
use super::message::Decoder;
use crate::server::protocols::compression::{ACCEPTED, Encoding, MIN_COMPRESS_BYTES};
use crate::server::protocols::envelope::{self, COMPRESSED, END_STREAM, Splitter, TooLarge};
use crate::server::protocols::frames::too_large;

/// Runs one streaming Connect call through `inner`.
pub(super) async fn call(inner: impl Grpc, request: Request<Body>, call: Call) -> Response<Body> {
    let Call { route, codec, limit } = call;
    let (mut parts, body) = request.into_parts();
    let name = parts.headers.get("connect-content-encoding").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let compress =
        parts.headers.get("connect-accept-encoding").and_then(|v| v.to_str().ok()).and_then(Encoding::choose);
    let decoder = to_grpc(&mut parts, call, name.as_deref(), "connect-content-encoding");
    let to_json = match codec {
        Codec::Json => route.json.map(|(_, to)| to),
        Codec::Proto => None,
    };
    let one = (!route.client_streaming).then(Held::default);
    let body = RequestEnvelopes { inner: body, splitter: Splitter::new(limit), decoder, one, done: false };
    let response = match inner.oneshot(Request::from_parts(parts, Body::new(body))).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let content_type = match codec {
        Codec::Json => "application/connect+json",
        Codec::Proto => "application/connect+proto",
    };
    let mut answer = Response::new(Body::empty());
    copy_metadata(&parts.headers, answer.headers_mut(), "");
    let headers = answer.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("connect-accept-encoding", HeaderValue::from_static(ACCEPTED));
    if let Some(encoding) = compress {
        headers.insert("connect-content-encoding", HeaderValue::from_static(encoding.name()));
    }
    // Trailers-only: the status is in the headers and there is no message.
    let body = match Status::from_header_map(&parts.headers) {
        Some(status) => ResponseEnvelopes::ended(&status, &HeaderMap::new()),
        None => {
            ResponseEnvelopes { inner: Some(body), splitter: Splitter::new(usize::MAX), to_json, compress, end: None }
        }
    };
    *answer.body_mut() = Body::new(body);
    answer
}

/// The request body the handler reads: Connect envelopes made into
/// uncompressed gRPC envelopes of protobuf, one by one as they arrive.
struct RequestEnvelopes {
    inner: Body,
    splitter: Splitter,
    decoder: Decoder,
    /// A server stream takes exactly one request message: it is held back
    /// until the body has ended, so that a second (or none) is refused.
    one: Option<Held>,
    done: bool,
}

/// The one message of a server stream, while the rest of the body is read.
#[derive(Default)]
struct Held {
    message: Option<Bytes>,
}

impl RequestEnvelopes {
    fn fail(&mut self, status: Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.done = true;
        Poll::Ready(Some(Err(status)))
    }
}

impl HttpBody for RequestEnvelopes {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.splitter.next() {
                Ok(Some(message)) => {
                    if message.flags & !COMPRESSED != 0 {
                        let flags = message.flags;
                        return this.fail(Status::invalid_argument(format!(
                            "invalid envelope flags {flags:#04x} in a request: expected 0 or 1"
                        )));
                    }
                    let compressed = message.flags & COMPRESSED != 0;
                    let envelope = match this.decoder.envelope(message.data, compressed) {
                        Ok(envelope) => envelope,
                        Err(status) => return this.fail(status),
                    };
                    match this.one.as_mut() {
                        None => return Poll::Ready(Some(Ok(Frame::data(envelope)))),
                        Some(Held { message: Some(_) }) => {
                            return this.fail(Status::unimplemented(
                                "a server-streaming call takes exactly one request message; this one has more",
                            ));
                        }
                        Some(held) => held.message = Some(envelope),
                    }
                    continue;
                }
                Ok(None) => {}
                Err(TooLarge(len)) => return this.fail(too_large(len, this.decoder.limit)),
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.splitter.push(data);
                    }
                }
                Some(Err(status)) => return this.fail(status),
                None if this.splitter.pending() > 0 => {
                    let pending = this.splitter.pending();
                    return this.fail(Status::invalid_argument(format!(
                        "the request body ended inside a message: {pending} bytes of it arrived"
                    )));
                }
                None => {
                    this.done = true;
                    return match this.one.take() {
                        None => Poll::Ready(None),
                        Some(Held { message: Some(message) }) => Poll::Ready(Some(Ok(Frame::data(message)))),
                        Some(Held { message: None }) => Poll::Ready(Some(Err(Status::unimplemented(
                            "a server-streaming call takes exactly one request message; this one has none",
                        )))),
                    };
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The response body the client reads: the handler's messages in Connect
/// envelopes (JSON when the call is), then the end-of-stream message.
struct ResponseEnvelopes {
    /// The gRPC response body; `None` once it has ended.
    inner: Option<Body>,
    splitter: Splitter,
    to_json: Option<ToJson>,
    /// The answers' compression, for those large enough for it to pay.
    compress: Option<Encoding>,
    /// The end-of-stream envelope, once the status is known.
    end: Option<Bytes>,
}

impl ResponseEnvelopes {
    /// A body holding nothing but the end of a call that ended with `status`.
    fn ended(status: &Status, trailers: &HeaderMap) -> Self {
        let end = Some(end_stream(status, trailers));
        Self { inner: None, splitter: Splitter::new(0), to_json: None, compress: None, end }
    }
}

/// Connect's end-of-stream message: `{}` for OK, else `{"error": {...}}`,
/// with the custom trailers as `metadata`.
fn end_stream(status: &Status, trailers: &HeaderMap) -> Bytes {
    let mut end = Map::new();
    if status.code() != tonic::Code::Ok {
        // Two strings into a fixed shape: it always makes a value.
        let error = serde_json::to_value(ConnectError::new(status)).unwrap_or(Value::Null);
        end.insert("error".to_owned(), error);
    }
    let mut metadata = Map::new();
    for (name, value) in trailers.iter().filter(|(name, _)| is_custom(name)) {
        let values = metadata.entry(name.as_str()).or_insert_with(|| Value::Array(Vec::new()));
        if let (Value::Array(values), Ok(value)) = (values, value.to_str()) {
            values.push(Value::String(value.to_owned()));
        }
    }
    if !metadata.is_empty() {
        end.insert("metadata".to_owned(), Value::Object(metadata));
    }
    let json = serde_json::to_vec(&Value::Object(end)).unwrap_or_else(|_| b"{}".to_vec());
    envelope::encode(END_STREAM, &json)
}

impl HttpBody for ResponseEnvelopes {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if let Some(end) = this.end.take() {
                this.inner = None;
                return Poll::Ready(Some(Ok(Frame::data(end))));
            }
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            if let Ok(Some(message)) = this.splitter.next() {
                let data = match this.to_json {
                    None => message.data,
                    Some(to_json) => match to_json(&message.data) {
                        Ok(json) => Bytes::from(json),
                        Err(err) => {
                            let status = Status::internal(format!("cannot write an answer as JSON: {err}"));
                            this.end = Some(end_stream(&status, &HeaderMap::new()));
                            continue;
                        }
                    },
                };
                let envelope = match this.compress.filter(|_| data.len() >= MIN_COMPRESS_BYTES) {
                    Some(encoding) => envelope::encode(COMPRESSED, &encoding.compress(&data)),
                    None => envelope::encode(0, &data),
                };
                return Poll::Ready(Some(Ok(Frame::data(envelope))));
            }
            match ready!(Pin::new(inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.splitter.push(data),
                    Err(frame) => {
                        let trailers = frame.into_trailers().unwrap_or_default();
                        let status =
                            Status::from_header_map(&trailers).unwrap_or_else(|| Status::new(tonic::Code::Ok, ""));
                        this.end = Some(end_stream(&status, &trailers));
                    }
                },
                Some(Err(status)) => this.end = Some(end_stream(&status, &HeaderMap::new())),
                None => {
                    let status = Status::internal("the handler's answer ended without a status");
                    this.end = Some(end_stream(&status, &HeaderMap::new()));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none() && self.end.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
