//! Lingering on an HTTP/1.1 request body the server stopped reading: a
//! call refused early (a message over the size limit, say) answers before
//! the client has sent its whole body, and HTTP/1.1 has no way to say
//! "stop sending" short of closing the connection, which the client sees as
//! a broken pipe before it reads the answer. So the rest of the body is read
//! and dropped, within a bound of bytes and time, as nginx's lingering close
//! does; past the bound the connection closes as before. hyper (checked)
//! reads on only what has already arrived of a body its service dropped,
//! then stops reading; tower-http has no layer for it.

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
        let Some(mut body) = self.inner.take().filter(|body| !body.is_end_stream()) else {
            return;
        };
        // Outside a runtime (never, in the server) there is nothing to do.
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
}
