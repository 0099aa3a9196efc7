//! What the layers of the service stack share about a call: the future
//! every service returns for it, and the mark the protocol layer leaves on
//! a call for the per-call layer (its protocol, a refusal). Below the
//! dispatch and the Connect protocol, which both write marks, and the
//! per-call layer, which reads them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use http::Response;
use tonic::Status;
use tonic::body::Body;

/// What every service of the stack returns for a call: boxed, so that what
/// hyper holds and moves per stream is two words.
pub(in crate::server) type CallFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// A call answered at once with `response`.
pub(in crate::server) fn answered(response: Response<Body>) -> CallFuture {
    Box::pin(std::future::ready(Ok(response)))
}

/// The protocols served on the one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum Protocol {
    /// gRPC over HTTP/2 (`application/grpc`, `application/grpc+proto`).
    Grpc,
    /// gRPC-Web (`application/grpc-web`, `application/grpc-web-text`, with
    /// `+proto`), over HTTP/1.1 or HTTP/2.
    GrpcWeb,
    /// The Connect protocol: unary `application/json` or `application/proto`
    /// (and `GET`), streaming `application/connect+json` or `+proto`.
    Connect,
}

impl Protocol {
    /// What a request of `content_type` speaks.
    pub(super) fn of_content_type(content_type: &[u8]) -> Self {
        if content_type.starts_with(b"application/grpc-web") {
            Self::GrpcWeb
        } else if content_type.starts_with(b"application/grpc") {
            Self::Grpc
        } else {
            Self::Connect
        }
    }

    /// The name in the per-call log line.
    pub(in crate::server) fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Connect => "connect",
        }
    }
}

/// What the protocol layer tells the per-call layer of a call that is not
/// plain gRPC (a plain gRPC call carries nothing: the hot path stores
/// nothing): its protocol, and the status it was refused with, if it was.
#[derive(Debug, Clone)]
pub(in crate::server) struct CallMark {
    /// The protocol the call came in on.
    pub protocol: Protocol,
    /// A status the protocol layer already decided on (a bad header).
    pub refused: Option<Status>,
}
