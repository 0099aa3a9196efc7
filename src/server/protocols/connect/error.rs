//! Errors as the Connect protocol writes them: a JSON body
//! `{"code": "invalid_argument", "message": "..."}` with the HTTP status its
//! code maps to (unary), or the `error` of the end-of-stream message
//! (streaming).

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use tonic::body::Body;
use tonic::{Code, Status};

/// A Connect error: the code's name and the message.
#[derive(Debug, Serialize)]
pub(super) struct ConnectError<'a> {
    code: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
}

impl<'a> ConnectError<'a> {
    /// The error of `status`.
    pub(super) fn new(status: &'a Status) -> Self {
        Self { code: code_name(status.code()), message: status.message() }
    }
}

/// The Connect name of a code: the gRPC name in lower case, but `canceled`.
pub(super) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status of a unary response that failed with `code`, from the
/// Connect protocol's table.
pub(super) fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::REQUEST_TIMEOUT),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON of `status` as a Connect error.
pub(super) fn json(status: &Status) -> Vec<u8> {
    // Two strings into a fixed shape: serialising cannot fail.
    serde_json::to_vec(&ConnectError::new(status)).unwrap_or_default()
}

/// A Connect error response with `http` as its status.
pub(super) fn error_response(http: StatusCode, status: &Status) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(Bytes::from(json(status)))));
    *response.status_mut() = http;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_json_with_the_mapped_status() {
        let status = Status::invalid_argument("bad \"query\"");
        assert_eq!(
            String::from_utf8(json(&status)).expect("UTF-8"),
            r#"{"code":"invalid_argument","message":"bad \"query\""}"#
        );
        assert_eq!(http_status(Code::InvalidArgument), 400);
        assert_eq!(http_status(Code::ResourceExhausted), 429);
        assert_eq!(http_status(Code::Unimplemented), 501);
        assert_eq!(http_status(Code::DeadlineExceeded), 504);
        assert_eq!(http_status(Code::Unavailable), 503);
        assert_eq!(http_status(Code::Cancelled), 499);
        assert_eq!(code_name(Code::Cancelled), "canceled");
        assert_eq!(String::from_utf8(json(&Status::unavailable(""))).expect("UTF-8"), r#"{"code":"unavailable"}"#);
    }
}
