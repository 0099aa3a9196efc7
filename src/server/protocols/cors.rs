//! The CORS layer for the browser protocols (gRPC-Web and Connect), for
//! the origins of `--cors-origin`: the methods and headers they send, and
//! the ones a page must be able to read.

use std::time::Duration;

use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::server::config::CorsOrigins;

/// The CORS layer for browsers on `origins`: the methods and headers gRPC-Web
/// and Connect send, and the ones a page must be able to read. None without
/// origins: no answer then carries its `vary` headers.
pub(in crate::server) fn cors(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow_origin = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    let expose = [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "grpc-encoding",
        "grpc-accept-encoding",
        "content-encoding",
        "connect-content-encoding",
        "connect-accept-encoding",
    ];
    let layer = CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(expose.map(http::HeaderName::from_static))
        .max_age(CORS_MAX_AGE);
    Some(layer)
}

/// How long a browser may cache a preflight's answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);
