//! Client mistakes given their codes: what tonic reports as INTERNAL (a
//! message that does not decode or inflate, a unary request without its
//! message, a gRPC-Web text body that is not base64) is INVALID_ARGUMENT,
//! and its decompression limit is worded as this server's other limits. The
//! status is read from a response's headers or trailers without decoding
//! its message, and only two codes are looked at further.

use http::HeaderMap;
use tonic::{Code, Status};

use crate::rpc::header::GRPC_STATUS;
use crate::server::protocols::compression;

/// The `grpc-status` code in `headers`, read without decoding the message
/// (what [`Status::from_header_map`] costs on every call).
pub(super) fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get(GRPC_STATUS)?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}

/// Whether a status of `code` may be a client's mistake that tonic words
/// its own way: only these two codes are looked at (the others cost nothing).
pub(super) fn maybe_mistake(code: Code) -> bool {
    matches!(code, Code::Internal | Code::ResourceExhausted)
}

/// Maps what tonic reports as INTERNAL but is the client's mistake (a
/// message that does not decode or inflate, a unary request without its
/// message, a gRPC-Web text body that is not base64), and words its
/// decompression limit as this server's other limits are worded.
pub(super) fn client_mistake(status: &Status, limit: usize) -> Option<Status> {
    const DECODE: &str = "failed to decode Protobuf message: ";
    const INFLATE: &str = "Error decompressing: ";
    // tonic's generated server, for a unary call (0.14, server/grpc.rs).
    const NO_MESSAGE: &str = "Missing request message.";
    // tonic-web's words for a text body it cannot decode: base64's own
    // errors, or a length that is not a multiple of 4 (0.14, call.rs).
    const WEB_TEXT: &str = "tonic-web: ";
    let message = status.message();
    match status.code() {
        Code::Internal => {
            if let Some(detail) = message.strip_prefix(DECODE) {
                return Some(Status::invalid_argument(format!(
                    "the request is not a valid protobuf message: {detail}"
                )));
            }
            if message == NO_MESSAGE {
                return Some(Status::invalid_argument("a unary call takes one request message; the request has none"));
            }
            if let Some(detail) = message.strip_prefix(WEB_TEXT)
                && (detail.starts_with("malformed base64") || detail.starts_with("Invalid "))
            {
                return Some(Status::invalid_argument(format!(
                    "the request body is not valid base64 (application/grpc-web-text): {detail}"
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
        // Found by the dispatch fuzz target: a unary call with no message
        // through tonic's generated server, and a gRPC-Web text body that
        // is not base64, were answered INTERNAL.
        let none = client_mistake(&Status::internal("Missing request message."), 100).expect("mapped");
        assert_eq!(
            (none.code(), none.message()),
            (Code::InvalidArgument, "a unary call takes one request message; the request has none")
        );
        for detail in ["Invalid symbol 93, offset 17.", "malformed base64 request", "Invalid last symbol 65, offset 3."]
        {
            let web = client_mistake(&Status::internal(format!("tonic-web: {detail}")), 100).expect("mapped");
            assert_eq!(web.code(), Code::InvalidArgument, "{detail}");
            assert!(web.message().ends_with(detail), "{}", web.message());
        }
        assert!(client_mistake(&Status::internal("tonic-web: error reading a body from connection"), 100).is_none());
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
}
