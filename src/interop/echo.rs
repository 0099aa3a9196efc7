//! The interop server's "Echo Metadata" feature, around the TestService:
//! `x-grpc-test-echo-initial` comes back in the answer's headers and
//! `x-grpc-test-echo-trailing-bin` in its trailers (in the headers of a
//! trailers-only answer). tonic's handlers can set headers but not the
//! trailers of a successful call, so this wraps the service's answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

/// Echoed in the answer's headers.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Echoed in the answer's trailers.
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

const INITIAL: HeaderName = HeaderName::from_static(ECHO_INITIAL);
const TRAILING: HeaderName = HeaderName::from_static(ECHO_TRAILING);

/// `S` with the metadata echo (see the module documentation).
#[derive(Debug, Clone)]
pub struct Echo<S>(pub S);

impl<S: NamedService> NamedService for Echo<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Echo<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let initial = request.headers().get(INITIAL).cloned();
        let trailing = request.headers().get(TRAILING).cloned();
        let call = self.0.call(request);
        Box::pin(async move {
            let mut response = call.await?;
            if let Some(value) = initial {
                response.headers_mut().insert(INITIAL, value);
            }
            let Some(value) = trailing else { return Ok(response) };
            // A trailers-only answer: its headers are its trailers.
            if response.headers().contains_key("grpc-status") {
                response.headers_mut().insert(TRAILING, value);
                return Ok(response);
            }
            Ok(response.map(|body| Body::new(WithTrailer { inner: body, trailer: Some(value) })))
        })
    }
}

/// A body whose trailers get one more entry.
struct WithTrailer {
    inner: Body,
    /// Added to the trailers; none once sent.
    trailer: Option<HeaderValue>,
}

impl HttpBody for WithTrailer {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) if frame.is_trailers() => {
                let mut trailers = frame.into_trailers().unwrap_or_default();
                if let Some(value) = this.trailer.take() {
                    trailers.insert(TRAILING, value);
                }
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Some(other) => Poll::Ready(Some(other)),
            // Ended without trailers: they are sent now.
            None => Poll::Ready(this.trailer.take().map(|value| {
                let mut trailers = HeaderMap::new();
                trailers.insert(TRAILING, value);
                Ok(Frame::trailers(trailers))
            })),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.trailer.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown: the trailers must not be taken for the end of the body.
        SizeHint::default()
    }
}
