//! Which protocol a request speaks, told from its content type: gRPC,
//! gRPC-Web, or the Connect protocol (everything else, which the Connect
//! layer answers, with 415 when it is not Connect either). It is stored in
//! the request's extensions, so the per-call log line can name it.

use http::Request;
use http::header::CONTENT_TYPE;

/// The protocols served on the one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
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
    /// What `request` speaks.
    pub fn of<B>(request: &Request<B>) -> Self {
        let content_type = request.headers().get(CONTENT_TYPE).map_or(&b""[..], |value| value.as_bytes());
        if content_type.starts_with(b"application/grpc-web") {
            Self::GrpcWeb
        } else if content_type.starts_with(b"application/grpc") {
            Self::Grpc
        } else {
            Self::Connect
        }
    }

    /// The name in the per-call log line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Connect => "connect",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_type_tells_the_protocol() {
        let of = |content_type: Option<&str>| {
            let mut request = Request::builder();
            if let Some(value) = content_type {
                request = request.header(CONTENT_TYPE, value);
            }
            Protocol::of(&request.body(()).expect("valid request"))
        };
        assert_eq!(of(Some("application/grpc")), Protocol::Grpc);
        assert_eq!(of(Some("application/grpc+proto")), Protocol::Grpc);
        assert_eq!(of(Some("application/grpc-web+proto")), Protocol::GrpcWeb);
        assert_eq!(of(Some("application/grpc-web-text")), Protocol::GrpcWeb);
        assert_eq!(of(Some("application/json")), Protocol::Connect);
        assert_eq!(of(Some("application/connect+proto")), Protocol::Connect);
        assert_eq!(of(None), Protocol::Connect);
    }
}
