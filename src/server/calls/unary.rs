//! The Search call (and the article's `/Search/search`) served without
//! tonic's codec: the hot path of every benchmark is one small message in
//! and one out, where tonic's streaming decoder and encoder (the generated
//! server's `tonic::server::Grpc::unary`, checked) cost more than the call. The request's one message is read whole (the framing checks
//! and the size limit are the per-call layer's, below it in the body),
//! inflated if compressed, decoded (as protobuf's runtimes do,
//! [`crate::lenient`]); the generated trait's handler answers;
//! the answer is written in one envelope, then its trailers.
//!
//! A body that does not decode is reported as tonic reports it (INTERNAL,
//! prost's words), so that the per-call layer gives it the same code and
//! message on every path; a unary request with no message, or more than
//! one, is the client's mistake: INVALID_ARGUMENT (tonic says INTERNAL).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use tonic::Status;
use tonic::body::Body;

use super::handlers::Search;
use crate::pb::v1::SearchRequest;
use crate::pb::v1::search_service_server::SearchService;
use crate::rpc::header::{GRPC_ENCODING, GRPC_MESSAGE, GRPC_STATUS};
use crate::server::protocols::compression::Encoding;
use crate::server::protocols::envelope::{COMPRESSED, Envelope, Splitter, TooLarge, encode_message};
use crate::server::protocols::too_large;

/// Answers one Search call; a failure is a trailers-only answer.
pub(super) async fn search(request: Request<Body>, limit: usize) -> Result<Response<Body>, Infallible> {
    Ok(answer(request, limit).await.unwrap_or_else(Status::into_http))
}

async fn answer(request: Request<Body>, limit: usize) -> Result<Response<Body>, Status> {
    let (parts, body) = request.into_parts();
    // An encoding the server lacks was refused by the per-call layer.
    let encoding = parts.headers.get(GRPC_ENCODING).and_then(|v| v.to_str().ok()).and_then(Encoding::parse);
    let message = one_message(body, limit).await?;
    let message = if message.flags & COMPRESSED == 0 {
        message.data
    } else {
        let encoding = encoding
            .ok_or_else(|| Status::invalid_argument("a compressed request message with grpc-encoding identity"))?;
        encoding.inflate(&message.data, limit)?
    };
    // Decoded as protobuf's runtimes do (a field of the wrong wire type is
    // skipped); a failure in prost's words, as tonic reports them, which the
    // per-call layer makes the client's mistake, as on every other path.
    let message = crate::lenient::decode::<SearchRequest>(message).map_err(|err| Status::internal(err.to_string()))?;
    let request = tonic::Request::from_http(Request::from_parts(parts, message));
    let (metadata, answer, _) = Search.search(request).await?.into_parts();
    let mut headers = metadata.into_headers();
    // The status goes in the trailers, whatever the handler's metadata says.
    if !headers.is_empty() {
        headers.remove(GRPC_STATUS);
        headers.remove(GRPC_MESSAGE);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    // Uncompressed: the per-call layer compresses large answers for the
    // clients that take it.
    let mut response = Response::new(Body::new(Answer { data: Some(encode_message(&answer)), done: false }));
    *response.headers_mut() = headers;
    Ok(response)
}

/// The request body's one message: an error when it has none, or more.
async fn one_message(mut body: Body, limit: usize) -> Result<Envelope, Status> {
    let mut splitter = Splitter::new(limit);
    let mut message = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        splitter.push(data);
        // The per-call layer's framing check refuses an oversized message
        // first; the splitter's limit is for a body that did not come
        // through it.
        while let Some(envelope) = splitter.next().map_err(|TooLarge(len)| too_large(len, limit))? {
            if message.replace(envelope).is_some() {
                return Err(Status::invalid_argument("a unary call takes one request message; the request has more"));
            }
        }
    }
    message.ok_or_else(|| Status::invalid_argument("a unary call takes one request message; the request has none"))
}

/// An answer's body: its one message, then `grpc-status: 0`.
struct Answer {
    data: Option<Bytes>,
    done: bool,
}

impl HttpBody for Answer {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if std::mem::replace(&mut self.done, true) {
            return Poll::Ready(None);
        }
        let mut trailers = HeaderMap::with_capacity(1);
        trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    // No size hint: an exact one would be taken for the whole body (as a
    // content-length over HTTP/1.1), the trailers left out.
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;
    use prost::Message;

    use super::*;
    use crate::pb::v1::SearchResponse;
    use crate::server::protocols::envelope::{PREFIX_LEN, encode};

    fn request(body: Vec<u8>, encoding: Option<&str>) -> Request<Body> {
        let mut request = Request::builder().uri("/search.v1.SearchService/Search");
        if let Some(encoding) = encoding {
            request = request.header("grpc-encoding", encoding);
        }
        request.body(Body::new(Full::new(Bytes::from(body)).map_err(|never| match never {}))).expect("request")
    }

    fn framed(flags: u8, message: &[u8]) -> Vec<u8> {
        encode(flags, message).to_vec()
    }

    /// The answer's status, and its message when it is OK.
    async fn call(request: Request<Body>) -> (String, Option<SearchResponse>) {
        let response = search(request, 1 << 20).await.expect("infallible");
        if let Some(status) = response.headers().get("grpc-status") {
            return (status.to_str().expect("ASCII").to_owned(), None);
        }
        assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
        let collected = response.into_body().collect().await.expect("a body");
        let trailers = collected.trailers().cloned().expect("trailers");
        let data = collected.to_bytes();
        assert_eq!(usize::from(data[4]) + PREFIX_LEN, data.len(), "one envelope");
        let message = SearchResponse::decode(&data[PREFIX_LEN..]).expect("a SearchResponse");
        (trailers["grpc-status"].to_str().expect("ASCII").to_owned(), Some(message))
    }

    #[tokio::test]
    async fn answers_one_message_plain_or_compressed() {
        let banana = SearchRequest { query: "xBaNaNax".into() }.encode_to_vec();
        assert_eq!(call(request(framed(0, &banana), None)).await, ("0".into(), Some(SearchResponse { status: 1 })));
        let apple = SearchRequest { query: "apple".into() }.encode_to_vec();
        assert_eq!(call(request(framed(0, &apple), None)).await, ("0".into(), Some(SearchResponse { status: 0 })));
        let gzipped = Encoding::Gzip.compress(&banana);
        let answer = call(request(framed(COMPRESSED, &gzipped), Some("gzip"))).await;
        assert_eq!(answer, ("0".into(), Some(SearchResponse { status: 1 })));
    }

    #[tokio::test]
    async fn none_two_or_broken_messages_are_refused() {
        let banana = SearchRequest { query: "banana".into() }.encode_to_vec();
        let code = |response: &Response<Body>| response.headers()["grpc-status"].to_str().expect("ASCII").to_owned();
        let message =
            |response: &Response<Body>| response.headers()["grpc-message"].to_str().expect("ASCII").to_owned();
        let none = search(request(Vec::new(), None), 1 << 20).await.expect("infallible");
        assert_eq!((code(&none), message(&none).contains("has%20none")), ("3".into(), true));
        let two = search(request([framed(0, &banana), framed(0, &banana)].concat(), None), 1 << 20).await;
        let two = two.expect("infallible");
        assert_eq!((code(&two), message(&two).contains("has%20more")), ("3".into(), true));
        // Not protobuf: prost's words, for the per-call layer to map.
        let broken = search(request(framed(0, &[0x0a, 0x05, b'a']), None), 1 << 20).await.expect("infallible");
        assert!(message(&broken).starts_with("failed%20to%20decode%20Protobuf%20message"), "{}", message(&broken));
        // Flagged compressed under identity; not gzip although it says so.
        let flagged = search(request(framed(COMPRESSED, &banana), Some("identity")), 1 << 20).await;
        assert_eq!(code(&flagged.expect("infallible")), "3");
        let corrupt = search(request(framed(COMPRESSED, &banana), Some("gzip")), 1 << 20).await;
        assert_eq!(code(&corrupt.expect("infallible")), "3");
        // Over the limit, from the prefix alone.
        let large = search(request(framed(0, &[0; 64]), None), 16).await.expect("infallible");
        assert_eq!(code(&large), "8");
    }
}
