//! Unary Connect calls: the message is the whole body of a `POST`
//! (`application/json` or `application/proto`), or the `message` parameter
//! of a `GET` (`?connect=v1&encoding=json&message=...`, `base64=1` for
//! URL-safe base64); the answer is the whole response body, or a Connect
//! error with the HTTP status its code maps to.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tonic::Status;
use tonic::body::Body;
use tower::ServiceExt;

use super::call::{Call, Codec, Grpc, Route, copy_metadata, refuse, to_grpc};
use super::error::{self, error_response};
use super::message::Decoder;
use crate::server::protocols::compression::{ACCEPTED, Encoding, MIN_COMPRESS_BYTES};
use crate::server::protocols::envelope::Splitter;
use crate::server::protocols::frames::too_large_so_far;

/// Runs one unary Connect call through `inner`.
pub(super) async fn call(inner: impl Grpc, request: Request<Body>, call: Call) -> Response<Body> {
    let Call { route, codec, .. } = call;
    let (mut parts, body) = request.into_parts();
    let get = parts.method == Method::GET;
    let encoding_name = if get {
        query_param(&parts.uri, "compression").map(Cow::into_owned)
    } else {
        parts.headers.get("content-encoding").and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let header = if get { "compression" } else { "content-encoding" };
    let source = if get {
        match get_message(&parts.uri) {
            Ok(message) => Source::Whole(Some(message)),
            Err(status) => {
                refuse(&mut parts.extensions, status);
                Source::Whole(None)
            }
        }
    } else {
        Source::Body(body)
    };
    let compress = parts.headers.get("accept-encoding").and_then(|v| v.to_str().ok()).and_then(Encoding::choose);
    // After the query is read: the gRPC request has the path alone.
    let decoder = to_grpc(&mut parts, call, encoding_name.as_deref(), header);
    let body = UnaryBody { source, first: Bytes::new(), buffer: BytesMut::new(), decoder, done: false };
    let response = match inner.oneshot(Request::from_parts(parts, Body::new(body))).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    answer(response, route, codec, compress).await
}

/// The gRPC answer as a Connect unary response, its body compressed with
/// `compress` when it is large enough for that to pay.
async fn answer(response: Response<Body>, route: &Route, codec: Codec, compress: Option<Encoding>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    // A status in the headers: trailers-only, no message.
    if let Some(status) = Status::from_header_map(&parts.headers) {
        return failed(&status, &parts.headers, None);
    }
    let (data, trailers) = match read_answer(body).await {
        Ok(read) => read,
        Err(status) => return failed(&status, &parts.headers, None),
    };
    let status = Status::from_header_map(&trailers)
        .unwrap_or_else(|| Status::internal("the handler's answer ended without a status"));
    if status.code() != tonic::Code::Ok {
        return failed(&status, &parts.headers, Some(&trailers));
    }
    let mut splitter = Splitter::new(usize::MAX);
    splitter.push(data);
    let message = match splitter.next() {
        Ok(Some(message)) if splitter.pending() == 0 => message.data,
        _ => return failed(&Status::internal("the handler's answer is not one message"), &parts.headers, None),
    };
    let (body, content_type) = match (codec, route.json) {
        (Codec::Json, Some((_, to_json))) => match to_json(&message) {
            Ok(json) => (Bytes::from(json), "application/json"),
            Err(err) => {
                return failed(
                    &Status::internal(format!("cannot write the answer as JSON: {err}")),
                    &parts.headers,
                    None,
                );
            }
        },
        _ => (message, "application/proto"),
    };
    let compress = compress.filter(|_| body.len() >= MIN_COMPRESS_BYTES);
    let body = compress.map_or(body.clone(), |encoding| encoding.compress(&body));
    let mut response = Response::new(Body::new(Full::new(body)));
    copy_metadata(&parts.headers, response.headers_mut(), "");
    copy_metadata(&trailers, response.headers_mut(), "trailer-");
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(ACCEPTED));
    if let Some(encoding) = compress {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.name()));
    }
    response
}

/// The whole body of a gRPC answer and its trailers. A unary answer is one
/// chunk: it is kept as it is, without a copy.
async fn read_answer(mut body: Body) -> Result<(Bytes, HeaderMap), Status> {
    let mut data = Bytes::new();
    let mut more: Option<BytesMut> = None;
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(chunk) if data.is_empty() && more.is_none() => data = chunk,
            Ok(chunk) => more.get_or_insert_with(|| BytesMut::from(&data[..])).extend_from_slice(&chunk),
            Err(frame) => trailers = frame.into_trailers().unwrap_or_default(),
        }
    }
    Ok((more.map_or(data, BytesMut::freeze), trailers))
}

/// A Connect error response for `status`, with the call's metadata.
fn failed(status: &Status, headers: &http::HeaderMap, trailers: Option<&http::HeaderMap>) -> Response<Body> {
    let mut response = error_response(error::http_status(status.code()), status);
    copy_metadata(headers, response.headers_mut(), "");
    if let Some(trailers) = trailers {
        copy_metadata(trailers, response.headers_mut(), "trailer-");
    }
    if response.status() == StatusCode::OK {
        // An OK code never gets here; keep a failed answer from reading as one.
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    response
}

/// The value of `name` in the query of `uri`, percent-decoded, as text.
pub(super) fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<Cow<'a, str>> {
    query_bytes(uri, name).map(|value| match value {
        Cow::Borrowed(bytes) => String::from_utf8_lossy(bytes),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    })
}

/// The value of `name` in the query of `uri`, percent-decoded, as bytes
/// (a binary message need not be UTF-8).
fn query_bytes<'a>(uri: &'a Uri, name: &str) -> Option<Cow<'a, [u8]>> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

/// Percent-decoding of a query value (`+` is a space, as in forms); a `%`
/// not followed by two hex digits stays as it is.
fn percent_decode(value: &str) -> Cow<'_, [u8]> {
    if !value.contains(['%', '+']) {
        return Cow::Borrowed(value.as_bytes());
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    // Two hex digits make one byte.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// The message of a `GET`: `message`, base64 when `base64=1`.
fn get_message(uri: &Uri) -> Result<Bytes, Status> {
    if let Some(version) = query_param(uri, "connect")
        && version != "v1"
    {
        return Err(Status::invalid_argument(format!("the connect query parameter must be v1, not {version:?}")));
    }
    let message = query_bytes(uri, "message").unwrap_or_default();
    if query_param(uri, "base64").as_deref() == Some("1") {
        // Padding is optional: take the message with or without it.
        let unpadded = message.strip_suffix(b"==").or_else(|| message.strip_suffix(b"=")).unwrap_or(&message);
        URL_SAFE_NO_PAD.decode(unpadded).or_else(|_| URL_SAFE.decode(&message)).map(Bytes::from).map_err(|err| {
            Status::invalid_argument(format!("the message query parameter is not URL-safe base64: {err}"))
        })
    } else {
        Ok(Bytes::from(message.into_owned()))
    }
}

/// Where a unary message comes from.
enum Source {
    /// A `POST` body, still to be read.
    Body(Body),
    /// A `GET`'s message, read from the query (none when it was refused).
    Whole(Option<Bytes>),
}

/// The request body the handler reads: the Connect message, read whole
/// (never past the limit), made into one gRPC envelope.
struct UnaryBody {
    source: Source,
    /// The body's first chunk, while it is the only one.
    first: Bytes,
    /// The body so far, once it came in more than one chunk.
    buffer: BytesMut,
    decoder: Decoder,
    done: bool,
}

impl HttpBody for UnaryBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let message = match &mut this.source {
            Source::Whole(message) => message.take().unwrap_or_default(),
            Source::Body(body) => loop {
                match ready!(Pin::new(&mut *body).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else { continue };
                        let len = this.first.len() + this.buffer.len() + data.len();
                        if len > this.decoder.limit {
                            this.done = true;
                            return Poll::Ready(Some(Err(too_large_so_far(len, this.decoder.limit))));
                        }
                        // The first chunk is kept as it is; a body in several is joined.
                        if this.first.is_empty() && this.buffer.is_empty() {
                            this.first = data;
                        } else {
                            if !this.first.is_empty() {
                                let first = std::mem::take(&mut this.first);
                                this.buffer.extend_from_slice(&first);
                            }
                            this.buffer.extend_from_slice(&data);
                        }
                    }
                    Some(Err(status)) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(status)));
                    }
                    None if this.buffer.is_empty() => break std::mem::take(&mut this.first),
                    None => break this.buffer.split().freeze(),
                }
            },
        };
        this.done = true;
        // Content-Encoding compresses the whole body.
        let compressed = this.decoder.encoding.is_some();
        Poll::Ready(Some(this.decoder.envelope(message, compressed).map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Percent-encodes every byte but unreserved ASCII, as a URL would.
    fn encode(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn percent_decoding_undoes_encoding(bytes in proptest::collection::vec(0u8..=255, 0..64)) {
            proptest::prop_assert_eq!(percent_decode(&encode(&bytes)).into_owned(), bytes);
        }

        #[test]
        fn any_query_reads_without_a_panic(query in "[a-z0-9=&%+_-]{0,60}") {
            let uri: Uri = format!("/search.v1.SearchService/Search?{query}").parse().expect("a path and query");
            let _ = get_message(&uri);
            let _ = query_param(&uri, "encoding");
        }
    }
}
