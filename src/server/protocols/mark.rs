//! The mark the protocol layer leaves on a call for the per-call layer
//! ([`CallMark`]): the call's [`Protocol`], and the status it was refused
//! with, if it was. Written by the dispatch and the Connect protocol, read
//! by the per-call layer.

use tonic::Status;

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
