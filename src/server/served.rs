//! What the server serves: the descriptor sets of its services (the
//! contract, health, reflection v1 and v1alpha) and every method path they
//! hold, the article's `/Search/search` included. Below every layer: the
//! routes, the metrics' method label and the Connect protocol's method
//! table all read it, and it imports nothing of the server.

use std::sync::LazyLock;

use crate::pb::v1::FILE_DESCRIPTOR_SET;
use crate::rpc::LEGACY_SEARCH_PATH;

/// The descriptor sets of every service served: the contract, health, and
/// reflection v1 and v1alpha.
pub(super) const SERVED: [&[u8]; 4] = [
    FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// Every method path served, the article's `/Search/search` included.
static PATHS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut paths: Vec<String> = SERVED.iter().flat_map(|set| crate::rpc::methods(set)).map(|m| m.path).collect();
    paths.push(LEGACY_SEARCH_PATH.to_owned());
    paths
});

/// `path` as served (with the lifetime of the table), if it is.
pub(super) fn served(path: &str) -> Option<&'static str> {
    PATHS.iter().find(|served| *served == path).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_path_is_known_and_nothing_else() {
        assert_eq!(served("/search.v1.SearchService/Search"), Some("/search.v1.SearchService/Search"));
        assert_eq!(served("/Search/search"), Some("/Search/search"));
        assert_eq!(served("/grpc.health.v1.Health/Check"), Some("/grpc.health.v1.Health/Check"));
        let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert_eq!(served(reflection), Some(reflection));
        assert_eq!(served("/search.v1.SearchService/Nope"), None);
        assert_eq!(served("/Search/Search"), None);
        assert_eq!(served("/"), None);
        assert_eq!(served(""), None);
    }
}
