//! A call's answer on its way out: a status in the headers (trailers-only)
//! is final; otherwise its body ([`CallBody`]) enforces the deadline and
//! the drain's cut on a streamed answer too, compresses the messages, counts
//! them, and reads (and corrects) the status in its trailers.
//!
//! It is the server's one deadline mechanism on answers: tonic's transport
//! server's timeout (and tower's `Timeout`) covers only the handler's
//! future, not a streamed response.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tonic::body::Body;
use tonic::{Code, Status};

use super::call_end::CallEnd;
use super::compressor::Compressor;
use super::mistakes::{client_mistake, grpc_code, maybe_mistake};
use super::policy::CallPolicy;
use crate::rpc::header::{GRPC_ACCEPT_ENCODING, GRPC_ENCODING};
use crate::server::protocols::SendCompression;
use crate::server::protocols::compression::{self, Encoding};
use crate::server::protocols::envelope::Follower;

/// A call past its deadline: DEADLINE_EXCEEDED, naming the timeout.
pub(super) fn deadline_status(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!("the call's deadline of {} passed", humantime::format_duration(timeout)))
}

/// A call cut by the drain, past its grace: UNAVAILABLE.
pub(super) fn cut_status() -> Status {
    Status::unavailable("the server is shutting down and the call outlived the drain's grace period")
}

/// Looks at a response from the routes: a status in its headers
/// (trailers-only) is final; otherwise the body is wrapped to enforce the
/// deadline and the cut, and to read the status from its trailers.
pub(super) fn finish(
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
        end.report_load(response.headers_mut());
        return response;
    }
    let compressor = compress.map(|encoding| {
        let choices = response.extensions_mut().remove::<SendCompression>();
        let headers = response.headers_mut();
        headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding.name()));
        // What it takes, for a client that speaks compression at all.
        headers.insert(GRPC_ACCEPT_ENCODING, HeaderValue::from_static(compression::ACCEPTED));
        Compressor::new(encoding, choices)
    });
    let sent = Follower::default();
    response.map(|body| Body::new(CallBody { inner: Some(body), expiry, waiting: None, end, compressor, sent }))
}

/// When a call must end: its deadline (and the timeout it came from, for the
/// message), or the drain's cut (the policy's).
pub(super) struct Expiry {
    pub(super) deadline: Instant,
    pub(super) timeout: Duration,
    pub(super) policy: Arc<CallPolicy>,
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
        self.end.report_load(&mut trailers);
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
            Some(Ok(mut frame)) if frame.is_trailers() => {
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
                if let Some(trailers) = frame.trailers_mut() {
                    this.end.report_load(trailers);
                }
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
