//! What both sides know of the contract: its methods as the descriptor set
//! describes them (kind, idempotency, message types), the paths of the unary
//! methods, the gRPC headers' names, and the gRPC status codes as the spec
//! (and grpcurl) spell them.

use std::sync::LazyLock;

use prost::Message;
use prost_types::FileDescriptorSet;
pub use prost_types::method_options::IdempotencyLevel as Idempotency;
use tonic::Code;

use crate::pb::v1::FILE_DESCRIPTOR_SET;

/// The v1 unary method, wire-compatible with the legacy one: the request's
/// field 1 is the query string, the response's field 1 the status varint.
pub const SEARCH_PATH: &str = "/search.v1.SearchService/Search";

/// The streaming methods' paths.
pub const CLASSIFY_PATH: &str = "/search.v1.SearchService/Classify";
/// See [`CLASSIFY_PATH`].
pub const COUNT_PATH: &str = "/search.v1.SearchService/Count";
/// See [`CLASSIFY_PATH`].
pub const SCAN_PATH: &str = "/search.v1.SearchService/Scan";

/// The path of the article's unary method, which a client written the
/// article's way calls (`channel.unary_unary("/Search/search", ...)`).
pub const LEGACY_SEARCH_PATH: &str = "/Search/search";

/// The gRPC headers' names, parsed at compile time: a `&str` name is
/// parsed on every lookup.
pub mod header {
    use http::HeaderName;

    /// The status code, in the trailers (or a trailers-only answer).
    pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
    /// The status message, percent-encoded.
    pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
    /// The compression of the messages sent.
    pub const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
    /// The compressions the sender takes.
    pub const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
    /// The call's timeout.
    pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
}

/// One method of a service, as its descriptor has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `/package.Service/Method`.
    pub path: String,
    /// Whether the client sends a stream of messages.
    pub client_streaming: bool,
    /// Whether the server answers with a stream of messages.
    pub server_streaming: bool,
    /// The `idempotency_level` option (`NO_SIDE_EFFECTS` allows retries and
    /// Connect's `GET`).
    pub idempotency: Idempotency,
    /// The request message's full name, without the leading dot.
    pub input: String,
    /// The response message's full name, without the leading dot.
    pub output: String,
}

/// The methods of every service in an encoded `FileDescriptorSet`; none when
/// it does not decode.
#[must_use]
pub fn methods(encoded: &[u8]) -> Vec<Method> {
    let Ok(set) = FileDescriptorSet::decode(encoded) else {
        return Vec::new();
    };
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            let service_name = match file.package() {
                "" => service.name().to_owned(),
                package => format!("{package}.{}", service.name()),
            };
            for method in &service.method {
                methods.push(Method {
                    path: format!("/{service_name}/{}", method.name()),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                    idempotency: method
                        .options
                        .as_ref()
                        .map_or(Idempotency::IdempotencyUnknown, |options| options.idempotency_level()),
                    input: method.input_type().trim_start_matches('.').to_owned(),
                    output: method.output_type().trim_start_matches('.').to_owned(),
                });
            }
        }
    }
    methods
}

/// The contract's methods (`search.v1`), read once from the committed
/// descriptor set, so that what Rust knows of them cannot drift from the proto.
static CONTRACT: LazyLock<Vec<Method>> = LazyLock::new(|| methods(FILE_DESCRIPTOR_SET));

/// The contract's method at `path`, if there is one.
#[must_use]
pub fn method(path: &str) -> Option<&'static Method> {
    CONTRACT.iter().find(|method| method.path == path)
}

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
    fn the_contract_describes_its_four_methods() {
        let search = method(SEARCH_PATH).expect("Search is in the contract");
        assert_eq!(search.idempotency, Idempotency::NoSideEffects);
        assert_eq!((search.client_streaming, search.server_streaming), (false, false));
        assert_eq!(
            (search.input.as_str(), search.output.as_str()),
            ("search.v1.SearchRequest", "search.v1.SearchResponse")
        );
        let kinds = |name: &str| {
            let m = method(&format!("/search.v1.SearchService/{name}")).expect(name);
            (m.client_streaming, m.server_streaming, m.idempotency)
        };
        assert_eq!(kinds("Classify"), (true, true, Idempotency::IdempotencyUnknown));
        assert_eq!(kinds("Count"), (true, false, Idempotency::IdempotencyUnknown));
        assert_eq!(kinds("Scan"), (false, true, Idempotency::IdempotencyUnknown));
        assert!(method(LEGACY_SEARCH_PATH).is_none(), "the legacy path is not in the contract");
    }

    #[test]
    fn methods_follow_the_descriptor() {
        use prost_types::{FileDescriptorProto, MethodDescriptorProto, MethodOptions, ServiceDescriptorProto};
        let method = |name: &str, level: Option<Idempotency>| MethodDescriptorProto {
            name: Some(name.into()),
            input_type: Some(".p.v1.In".into()),
            output_type: Some(".p.v1.Out".into()),
            server_streaming: Some(name == "Watch"),
            options: level.map(|l| MethodOptions { idempotency_level: Some(l as i32), ..MethodOptions::default() }),
            ..MethodDescriptorProto::default()
        };
        let set = FileDescriptorSet {
            file: vec![FileDescriptorProto {
                package: Some("p.v1".into()),
                service: vec![ServiceDescriptorProto {
                    name: Some("S".into()),
                    method: vec![
                        method("Read", Some(Idempotency::NoSideEffects)),
                        method("Put", Some(Idempotency::Idempotent)),
                        method("Watch", None),
                    ],
                    ..ServiceDescriptorProto::default()
                }],
                ..FileDescriptorProto::default()
            }],
        };
        let found = methods(&set.encode_to_vec());
        let summary: Vec<_> =
            found.iter().map(|m| (m.path.as_str(), m.idempotency, m.server_streaming, m.input.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("/p.v1.S/Read", Idempotency::NoSideEffects, false, "p.v1.In"),
                ("/p.v1.S/Put", Idempotency::Idempotent, false, "p.v1.In"),
                ("/p.v1.S/Watch", Idempotency::IdempotencyUnknown, true, "p.v1.In"),
            ]
        );
        assert!(methods(b"not a descriptor set").is_empty());
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
