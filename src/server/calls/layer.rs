//! What the server does around every call, whatever the method: it admits
//! the call and sets its deadline ([`CallPolicy`]), checks the request's gRPC
//! framing (size limit, truncation), enforces the deadline and the drain's
//! cut on streamed responses too, gives client mistakes their status codes,
//! and writes one log line per call.
//!
//! It is the server's one deadline mechanism (the connections are served
//! by `transport/conn.rs`, not by tonic's transport server, whose timeout
//! would cover only the handler's future, not a streamed response; tower's
//! `Timeout` has the same limit), and it gives client mistakes that tonic's
//! decoder reports as INTERNAL (a truncated body, a string that is not
//! UTF-8) their own codes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::metrics::Metrics;
use super::policy::{Admitted, CallPolicy};
use super::routes::Routes;
use crate::logging::Call;
use crate::rpc::code_name;
use crate::rpc::header::{GRPC_ACCEPT_ENCODING, GRPC_ENCODING, GRPC_STATUS};
use crate::server::protocols::compression::{self, Encoding};
use crate::server::protocols::envelope::{self, Follower};
use crate::server::protocols::{
    CallFuture, CallMark, Protocol, ReceivedCompression, RequestFrames, SendCompression, answered,
};
use crate::server::transport::{Busy, Peer};
use crate::traces::ServerSpan;

/// The per-call layer, outermost around the routes.
#[derive(Debug, Clone)]
pub struct CallLayer {
    policy: Arc<CallPolicy>,
    metrics: Option<Arc<Metrics>>,
    peer: Peer,
}

impl CallLayer {
    /// A layer applying `policy` to the calls of the connection to `peer`,
    /// recording them in `metrics` when given.
    #[must_use]
    pub(in crate::server) fn new(policy: Arc<CallPolicy>, metrics: Option<Arc<Metrics>>, peer: Peer) -> Self {
        Self { policy, metrics, peer }
    }
}

impl Layer<Routes> for CallLayer {
    type Service = Calls;

    fn layer(&self, inner: Routes) -> Calls {
        Calls { inner, policy: Arc::clone(&self.policy), metrics: self.metrics.clone(), peer: self.peer.clone() }
    }
}

/// The per-call service: see the module documentation.
#[derive(Debug, Clone)]
pub struct Calls {
    /// Always ready, so each call is made on it directly (no clone-swap).
    inner: Routes,
    policy: Arc<CallPolicy>,
    metrics: Option<Arc<Metrics>>,
    /// The connection's peer: each call holds the connection busy.
    peer: Peer,
}

impl Service<Request<Body>> for Calls {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Marked by the protocol layer, which sees every request first;
        // unmarked is gRPC (the hot path stores nothing).
        let mark = request.extensions().get::<CallMark>();
        let limit = self.policy.max_recv_bytes;
        let protocol = mark.map_or(Protocol::Grpc, |mark| mark.protocol);
        let mut end = CallEnd::new(&request, protocol, limit, self.peer.busy(), self.metrics.clone());
        // A call the protocol layer already refused (a bad header) is
        // answered here, so that it is logged like any other.
        if let Some(status) = mark.and_then(|mark| mark.refused.clone()) {
            end.code = Some(status.code());
            return answered(status.into_http());
        }
        let admitted = self.policy.admit();
        let timeout = self.policy.timeout(request.headers());
        let (admitted, timeout) = match (admitted, timeout) {
            (Ok(admitted), Ok(timeout)) => (admitted, timeout),
            (Err(status), _) | (_, Err(status)) => {
                end.code = Some(status.code());
                return answered(status.into_http());
            }
        };
        end.admitted = Some(admitted);
        let deadline = end.started + timeout;
        let encoding = request.headers().get(GRPC_ENCODING);
        if let Some(name) = encoding.map(|v| v.to_str().unwrap_or("(not text)"))
            && name != "identity"
            && Encoding::parse(name).is_none()
        {
            let status = compression::unsupported(name, "grpc-encoding");
            end.code = Some(status.code());
            let mut response = status.into_http();
            response.headers_mut().insert(GRPC_ACCEPT_ENCODING, HeaderValue::from_static(compression::ACCEPTED));
            return answered(response);
        }
        let compressed_ok = encoding.is_some();
        // The answer's compression, when the client takes one the server has.
        let compress =
            request.headers().get(GRPC_ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).and_then(Encoding::choose);
        let flows = self.metrics.as_ref().map(|metrics| Arc::clone(&metrics.flows));
        // A handler of an added service may ask which request messages
        // arrived compressed: only possible when an encoding is named.
        let mut request = request;
        let received = (compressed_ok && self.inner.served().is_added(request.uri().path())).then(|| {
            let received = ReceivedCompression::default();
            request.extensions_mut().insert(received.clone());
            received
        });
        let traced = end.span.as_ref().map(|span| span.messages());
        let request = request.map(|body| {
            Body::new(RequestFrames::new(body, limit, compressed_ok, flows).recording(received).traced(traced))
        });
        let call = self.inner.call(request);
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            // Biased, handler first: an answer ready at once (most unary
            // calls) never arms the timer or registers with the cut.
            let response = tokio::select! {
                biased;
                response = call => response?,
                () = sleep_until(deadline) => deadline_status(timeout).into_http(),
                () = policy.cut.cancelled() => cut_status().into_http(),
            };
            Ok(finish(response, end, Expiry { deadline, timeout, policy }, compress))
        })
    }
}

fn deadline_status(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!("the call's deadline of {} passed", humantime::format_duration(timeout)))
}

fn cut_status() -> Status {
    Status::unavailable("the server is shutting down and the call outlived the drain's grace period")
}

/// The `grpc-status` code in `headers`, read without decoding the message
/// (what [`Status::from_header_map`] costs on every call).
fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get(GRPC_STATUS)?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}

/// Whether a status of `code` may be a client's mistake that tonic words
/// its own way: only these two codes are looked at (the others cost nothing).
fn maybe_mistake(code: Code) -> bool {
    matches!(code, Code::Internal | Code::ResourceExhausted)
}

/// Maps what tonic reports as INTERNAL but is the client's mistake (a
/// message that does not decode or inflate), and words its decompression
/// limit as this server's other limits are worded.
fn client_mistake(status: &Status, limit: usize) -> Option<Status> {
    const DECODE: &str = "failed to decode Protobuf message: ";
    const INFLATE: &str = "Error decompressing: ";
    let message = status.message();
    match status.code() {
        Code::Internal => {
            if let Some(detail) = message.strip_prefix(DECODE) {
                return Some(Status::invalid_argument(format!(
                    "the request is not a valid protobuf message: {detail}"
                )));
            }
            let detail = message.strip_prefix(INFLATE)?;
            let detail = detail.split(", while").next().unwrap_or(detail);
            Some(Status::invalid_argument(format!("the request message does not decompress: {detail}")))
        }
        Code::ResourceExhausted if message.starts_with(INFLATE) => Some(compression::inflated_too_large(limit)),
        _ => None,
    }
}

/// Looks at a response from the routes: a status in its headers
/// (trailers-only) is final; otherwise the body is wrapped to enforce the
/// deadline and the cut, and to read the status from its trailers.
fn finish(
    mut response: Response<Body>,
    mut end: CallEnd,
    expiry: Expiry,
    compress: Option<Encoding>,
) -> Response<Body> {
    let limit = end.limit;
    if let Some(code) = grpc_code(response.headers()) {
        let mapped = maybe_mistake(code)
            .then(|| Status::from_header_map(response.headers()).and_then(|s| client_mistake(&s, limit)))
            .flatten();
        if let Some(mapped) = mapped {
            end.code = Some(mapped.code());
            return mapped.into_http();
        }
        end.code = Some(code);
        return response;
    }
    let compressor = compress.map(|encoding| {
        let choices = response.extensions_mut().remove::<SendCompression>();
        let headers = response.headers_mut();
        headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding.name()));
        // What it takes, for a client that speaks compression at all.
        headers.insert(GRPC_ACCEPT_ENCODING, HeaderValue::from_static(compression::ACCEPTED));
        Compressor { encoding, rest_of_message: 0, choices }
    });
    let sent = Follower::default();
    response.map(|body| Body::new(CallBody { inner: Some(body), expiry, waiting: None, end, compressor, sent }))
}

/// When a call must end: its deadline (and the timeout it came from, for the
/// message), or the drain's cut (the policy's).
struct Expiry {
    deadline: Instant,
    timeout: Duration,
    policy: Arc<CallPolicy>,
}

/// Compresses an answer's messages of [`compression::MIN_COMPRESS_BYTES`]
/// or more, frame by frame, as they pass; smaller ones go as they are. A
/// handler's choice for a message ([`SendCompression`]) overrides the size.
struct Compressor {
    encoding: Encoding,
    /// Bytes of a message begun in an earlier chunk, passed on as they are.
    rest_of_message: usize,
    /// The handler's choice for each message, when it makes them.
    choices: Option<SendCompression>,
}

impl Compressor {
    /// One chunk of the answer, its large messages compressed. tonic writes
    /// whole messages into a chunk, so a message is seen whole; one that is
    /// not (never, from tonic) passes through uncompressed, still valid.
    fn chunk(&mut self, chunk: Bytes) -> Bytes {
        let mut out: Option<BytesMut> = None;
        let mut at = self.rest_of_message.min(chunk.len());
        self.rest_of_message -= at;
        let mut copied = 0;
        while chunk.len() - at >= envelope::PREFIX_LEN {
            let len = u32::from_be_bytes([chunk[at + 1], chunk[at + 2], chunk[at + 3], chunk[at + 4]]) as usize;
            let end = at + envelope::PREFIX_LEN + len;
            // Taken for every message, so that the next one gets its own.
            let choice = self.choices.as_ref().and_then(SendCompression::take);
            if end > chunk.len() {
                self.rest_of_message = end - chunk.len();
                break;
            }
            if chunk[at] == 0 && choice.unwrap_or(len >= compression::MIN_COMPRESS_BYTES) {
                let out = out.get_or_insert_with(|| BytesMut::with_capacity(chunk.len()));
                out.extend_from_slice(&chunk[copied..at]);
                let compressed = self.encoding.compress(&chunk[at + envelope::PREFIX_LEN..end]);
                out.extend_from_slice(&envelope::encode(envelope::COMPRESSED, &compressed));
                copied = end;
            }
            at = end;
        }
        match out {
            None => chunk,
            Some(mut out) => {
                out.extend_from_slice(&chunk[copied..]);
                out.freeze()
            }
        }
    }
}

/// What is known of a call for its log line, written when the call ends.
#[derive(Debug)]
struct CallEnd {
    /// The request's URI, for its path (a clone shares the bytes).
    uri: http::Uri,
    protocol: Protocol,
    /// The request size limit, for the messages of client mistakes.
    limit: usize,
    started: Instant,
    /// The final status, once known; none when the peer went away first.
    code: Option<Code>,
    admitted: Option<Admitted>,
    /// The call keeps its connection from being idle; it knows the peer.
    busy: Busy,
    /// The metrics, when on, and the call's method label in them.
    metrics: Option<(Arc<Metrics>, &'static str)>,
    /// The call's span, when tracing is on (boxed: one word when off).
    span: Option<Box<ServerSpan>>,
}

impl CallEnd {
    fn new(
        request: &Request<Body>,
        protocol: Protocol,
        limit: usize,
        busy: Busy,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let started = Instant::now();
        let metrics = metrics.map(|metrics| {
            let label = metrics.start(request.uri().path(), protocol.name());
            (metrics, label)
        });
        let uri = request.uri().clone();
        let span = ServerSpan::start(request.headers(), &uri, protocol == Protocol::Connect, busy.peer());
        Self { uri, protocol, limit, started, code: None, admitted: None, busy, metrics, span }
    }
}

impl Drop for CallEnd {
    fn drop(&mut self) {
        // A response dropped before its status was sent: the client cancelled
        // or the connection went away.
        let code = self.code.unwrap_or(Code::Cancelled);
        let duration = self.started.elapsed();
        let protocol = self.protocol.name();
        if let Some((metrics, label)) = &self.metrics {
            metrics.finish(label, protocol, code, duration);
        }
        let (method, name, peer) = (self.uri.path(), code_name(code), self.busy.peer());
        let trace_id = self.span.as_ref().map(|span| span.trace_id());
        Call { method, protocol, code: name, duration, peer, trace_id }.log();
        if let Some(span) = self.span.take() {
            span.end(code);
        }
    }
}

/// What a waiting response body is woken by: its deadline, or the cut.
type Waiting = (Pin<Box<Sleep>>, Pin<Box<WaitForCancellationFutureOwned>>);

/// A response body that ends with DEADLINE_EXCEEDED at the deadline, or
/// UNAVAILABLE at the cut, dropping the handler's stream so its work stops;
/// and that reads (and corrects) the status in the trailers.
struct CallBody {
    /// The handler's body; `None` once the call has ended.
    inner: Option<Body>,
    expiry: Expiry,
    /// The timer and the cut's waiter, armed the first time the body has
    /// to wait: a response whose frames are all ready (a unary answer)
    /// never arms them.
    waiting: Option<Waiting>,
    end: CallEnd,
    /// The answer's compression, when the client takes one.
    compressor: Option<Compressor>,
    /// The answer's messages, counted when metrics are on.
    sent: Follower,
}

impl CallBody {
    /// Counts the data going out, when metrics or tracing are on.
    fn count_sent(&mut self, data: &Bytes) {
        if self.end.metrics.is_none() && self.end.span.is_none() {
            return;
        }
        let messages = self.sent.follow(data, |_, _| Ok::<_, Infallible>(())).unwrap_or(0);
        if let Some((metrics, _)) = &self.end.metrics {
            metrics.flows.sent.add(messages, data.len() as u64);
        }
        if let Some(span) = &self.end.span {
            span.passed(true, messages);
        }
    }

    /// Ends the call now with `status` in the trailers.
    fn end_with(&mut self, status: &Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.inner = None;
        self.waiting = None;
        self.end.code = Some(status.code());
        let mut trailers = HeaderMap::new();
        // Only fails on a message that cannot be a header; ours are ASCII.
        let _ = status.add_header(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl HttpBody for CallBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let (deadline, cut) = (this.expiry.deadline, &this.expiry.policy.cut);
                let (sleep, cancelled) = this
                    .waiting
                    .get_or_insert_with(|| (Box::pin(sleep_until(deadline)), Box::pin(cut.clone().cancelled_owned())));
                if sleep.as_mut().poll(cx).is_ready() {
                    return this.end_with(&deadline_status(this.expiry.timeout));
                }
                if cancelled.as_mut().poll(cx).is_ready() {
                    return this.end_with(&cut_status());
                }
                return Poll::Pending;
            }
        };
        // A stream that is never pending (a fast Scan) still ends on time.
        if frame.as_ref().is_some_and(|f| f.as_ref().is_ok_and(Frame::is_data)) {
            if Instant::now() >= this.expiry.deadline {
                return this.end_with(&deadline_status(this.expiry.timeout));
            }
            if this.expiry.policy.cut.is_cancelled() {
                return this.end_with(&cut_status());
            }
        }
        match frame {
            Some(Ok(frame)) if frame.is_trailers() => {
                let trailers = frame.trailers_ref();
                let code = trailers.and_then(grpc_code).unwrap_or(Code::Ok);
                if maybe_mistake(code) {
                    let limit = this.end.limit;
                    let mapped = trailers.and_then(Status::from_header_map).and_then(|s| client_mistake(&s, limit));
                    if let Some(mapped) = mapped {
                        return this.end_with(&mapped);
                    }
                }
                this.end.code = Some(code);
                this.inner = None;
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let data = match this.compressor.as_mut() {
                        Some(compressor) => compressor.chunk(data),
                        None => data,
                    };
                    this.count_sent(&data);
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Some(Err(status)) => {
                this.end.code = Some(status.code());
                this.inner = None;
                Poll::Ready(Some(Err(status)))
            }
            None => {
                this.end.code.get_or_insert(Code::Ok);
                this.inner = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_are_the_clients_mistake() {
        let decode = Status::internal(
            "failed to decode Protobuf message: SearchRequest.query: invalid string value: data is not UTF-8 encoded",
        );
        let mapped = client_mistake(&decode, 100).expect("mapped");
        assert_eq!(mapped.code(), Code::InvalidArgument);
        assert_eq!(
            mapped.message(),
            "the request is not a valid protobuf message: SearchRequest.query: invalid string value: data is not UTF-8 encoded"
        );
        assert!(client_mistake(&Status::internal("something else"), 100).is_none());
        assert!(client_mistake(&Status::unavailable("failed to decode Protobuf message: x"), 100).is_none());
    }

    #[test]
    fn decompression_errors_are_worded_as_the_limits_are() {
        // tonic's words (0.14, codec/decode.rs), as they reach this layer.
        let over = Status::resource_exhausted(
            "Error decompressing: size limit, of 4194304 bytes, exceeded while decompressing message",
        );
        let mapped = client_mistake(&over, 4 << 20).expect("mapped");
        assert_eq!(mapped.code(), Code::ResourceExhausted);
        assert_eq!(
            mapped.message(),
            "the request message inflates to more than the server's limit of 4194304 bytes (--max-recv-bytes)"
        );
        let corrupt = Status::internal("Error decompressing: invalid gzip header, while sending request");
        let mapped = client_mistake(&corrupt, 10).expect("mapped");
        assert_eq!(mapped.code(), Code::InvalidArgument);
        assert_eq!(mapped.message(), "the request message does not decompress: invalid gzip header");
        assert!(client_mistake(&Status::resource_exhausted("too many calls"), 10).is_none());
    }

    #[test]
    fn large_answers_are_compressed_small_ones_pass_as_they_are() {
        let small = envelope::encode(0, b"tiny");
        let large_message = "banana ".repeat(400);
        let large = envelope::encode(0, large_message.as_bytes());
        let chunk = Bytes::from([small.to_vec(), large.to_vec(), small.to_vec()].concat());
        let mut compressor = Compressor { encoding: Encoding::Gzip, rest_of_message: 0, choices: None };
        let out = compressor.chunk(chunk);
        assert_eq!(&out[..small.len()], &small[..], "the small message is untouched");
        let rest = &out[small.len()..];
        assert_eq!(rest[0], envelope::COMPRESSED);
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let inflated = Encoding::Gzip.inflate(&rest[5..5 + len], 1 << 20).expect("gzip");
        assert_eq!(inflated, large_message.as_bytes());
        assert_eq!(&rest[5 + len..], &small[..], "the message after it is untouched");

        // A chunk of small messages is passed on as it is, without a copy.
        let chunk = Bytes::from(small.to_vec());
        assert_eq!(compressor.chunk(chunk.clone()).as_ptr(), chunk.as_ptr());
        // A message cut across chunks passes through, and the next is found.
        let cut = large.len() - 10;
        let first = compressor.chunk(large.slice(..cut));
        let second = compressor.chunk(Bytes::from([&large[cut..], &small[..]].concat()));
        assert_eq!([first, second].concat(), [large.to_vec(), small.to_vec()].concat());
    }
}
