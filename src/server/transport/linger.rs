//! Reading the rest of a request body the server stopped reading, within
//! a bound of bytes and time, as nginx's lingering close does.
//!
//! - HTTP/1.1: a call refused early (a message over the size limit, say)
//!   answers before the client has sent its whole body, and HTTP/1.1 has
//!   no way to say "stop sending" short of closing the connection, which
//!   the client sees as a broken pipe before it reads the answer. Past the
//!   bound the connection closes as before. hyper (checked) reads on only
//!   what has already arrived of a body its service dropped, then stops
//!   reading; tower-http has no layer for it.
//! - HTTP/2: a call refused before its request was read ([`read_out`],
//!   from the call layer) would otherwise be reset (NO_ERROR) as soon as
//!   it is answered, and its message, usually on its way by then, would
//!   draw a second reset once h2 has forgotten the stream (STREAM_CLOSED;
//!   h2 keeps the last 50 streams it reset). h2 counts those second resets
//!   over the connection's life and closes it at 1,024 (GOAWAY
//!   `ENHANCE_YOUR_CALM`, `too_many_internal_resets`): a client shed at 4x
//!   the server's capacity lost its connection every half second. Read to
//!   its end, the stream closes as a whole exchange: no reset either way.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tonic::Status;
use tonic::body::Body;

/// The most bytes read and dropped after the server stopped reading.
const LINGER_BYTES: usize = 64 << 20;
/// The longest time spent doing so.
const LINGER_TIME: Duration = Duration::from_secs(5);

/// An HTTP/1.1 request body that, dropped before its end, reads the rest
/// in the background (bounded) so that the client can finish sending.
pub(super) struct Lingering {
    inner: Option<Body>,
}

impl Lingering {
    pub(super) fn new(inner: Body) -> Self {
        Self { inner: Some(inner) }
    }
}

impl HttpBody for Lingering {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(SizeHint::default, HttpBody::size_hint)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        if let Some(body) = self.inner.take() {
            read_out(body);
        }
    }
}

/// Reads the rest of `body` in the background and drops it, within the
/// bounds above; nothing to do when it has ended (or outside a runtime,
/// never the case in the server).
pub(in crate::server) fn read_out(mut body: Body) {
    if body.is_end_stream() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut read = 0;
        let drain = async {
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > LINGER_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    });
}
