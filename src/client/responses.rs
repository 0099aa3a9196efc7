//! The responses of a streaming call, as a `Stream` that ends at the call's
//! deadline on this side too, its end counted for outlier detection.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_stream::Stream;
use tonic::{Code, Streaming};

use super::Error;
use super::call::Caller;
use super::channel::Subchannel;
use crate::traces::StreamSpans;

/// The responses of a streaming call, ended by the call's deadline on this
/// side too (the server ends it there as well, from `grpc-timeout`).
pub struct Responses<T> {
    inner: Streaming<T>,
    deadline: Pin<Box<Sleep>>,
    /// The call layer, for the errors the stream ends with.
    caller: Arc<Caller>,
    /// The subchannel the call went to.
    sub: Arc<Subchannel>,
    done: bool,
    /// The call's spans, when traced: ended with the stream.
    spans: Option<StreamSpans>,
}

impl<T> fmt::Debug for Responses<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responses").field("done", &self.done).finish_non_exhaustive()
    }
}

impl<T> Responses<T> {
    pub(super) fn new(
        inner: Streaming<T>,
        deadline: Instant,
        caller: Arc<Caller>,
        sub: Arc<Subchannel>,
        spans: Option<StreamSpans>,
    ) -> Self {
        Self { inner, deadline: Box::pin(sleep_until(deadline)), caller, sub, done: false, spans }
    }

    /// The stream ended with `code`: its spans too.
    fn end_spans(&mut self, code: Code) {
        if let Some(spans) = self.spans.take() {
            spans.end(Some(code));
        }
    }

    /// The next response, `None` at the end of the stream.
    ///
    /// # Errors
    /// The status the call ended with, or [`Error::DeadlineExceeded`].
    pub async fn message(&mut self) -> Result<Option<T>, Error> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await.transpose()
    }
}

impl<T> Stream for Responses<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.done = true;
            this.sub.outlier.failure();
            this.end_spans(Code::DeadlineExceeded);
            return Poll::Ready(Some(Err(this.caller.deadline_exceeded(1, None))));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Err(status))) => {
                this.done = true;
                this.caller.channel.load_reported(&this.sub, status.metadata());
                this.sub.outlier.failure();
                this.end_spans(status.code());
                Poll::Ready(Some(Err(this.caller.failed(status, &this.sub, 1, None))))
            }
            Poll::Ready(None) => {
                this.done = true;
                // The stream is read to its end: its trailers are there.
                if let Some(Ok(Some(trailers))) = this.inner.trailers().now_or_never() {
                    this.caller.channel.load_reported(&this.sub, &trailers);
                }
                this.sub.outlier.success();
                this.end_spans(Code::Ok);
                Poll::Ready(None)
            }
            other => other.map(|item| item.map(|result| result.map_err(Error::Rpc))),
        }
    }
}
