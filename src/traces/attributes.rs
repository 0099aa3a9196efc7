//! The RPC semantic conventions' attributes both sides put on their spans:
//! the RPC system, service and method, host and port.

/// `rpc.system` of a call: `grpc` (gRPC-Web too) or `connect_rpc`.
#[must_use]
pub fn rpc_system(connect: bool) -> &'static str {
    if connect { "connect_rpc" } else { "grpc" }
}

/// The `rpc.service` and `rpc.method` of a path (`/pkg.Service/Method`);
/// a path of another shape is all service.
pub(super) fn service_and_method(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.rsplit_once('/').unwrap_or((path, ""))
}

/// `host` and `port` of `host:port` or `[v6]:port`.
pub(super) fn host_port(address: &str) -> Option<(&str, i64)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(service_and_method("/search.v1.SearchService/Search"), ("search.v1.SearchService", "Search"));
        assert_eq!(service_and_method("/Search/search"), ("Search", "search"));
        assert_eq!(service_and_method("/odd"), ("odd", ""));
        assert_eq!(host_port("127.0.0.1:8100"), Some(("127.0.0.1", 8100)));
        assert_eq!(host_port("[::1]:9"), Some(("::1", 9)));
        assert_eq!(host_port("unix"), None);
    }
}
