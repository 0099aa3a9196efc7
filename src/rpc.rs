//! Names both sides share: the paths of the unary methods and the gRPC
//! status codes as the spec (and grpcurl) spell them.

use tonic::Code;

/// The v1 unary method, wire-compatible with the legacy one: the request's
/// field 1 is the query string, the response's field 1 the status varint.
pub const SEARCH_PATH: &str = "/search.v1.SearchService/Search";

/// The path of the article's unary method, which a client written the
/// article's way calls (`channel.unary_unary("/Search/search", ...)`).
pub const LEGACY_SEARCH_PATH: &str = "/Search/search";

/// The canonical name of a gRPC status code, as in the gRPC spec.
#[must_use]
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use tonic::server::NamedService;

    use super::*;
    use crate::pb::v1::search_service_server::SearchServiceServer;

    #[test]
    fn search_path_names_the_generated_service() {
        let name = <SearchServiceServer<()> as NamedService>::NAME;
        assert_eq!(SEARCH_PATH, format!("/{name}/Search"));
    }

    #[test]
    fn code_names_match_the_spec_numbering() {
        // The spec's table, in order: a renamed or shifted entry fails here.
        let names: Vec<_> = (0..=16).map(|n| code_name(Code::from_i32(n))).collect();
        assert_eq!(names[0], "OK");
        assert_eq!(names[4], "DEADLINE_EXCEEDED");
        assert_eq!(names[8], "RESOURCE_EXHAUSTED");
        assert_eq!(names[14], "UNAVAILABLE");
        assert_eq!(names[16], "UNAUTHENTICATED");
    }
}
