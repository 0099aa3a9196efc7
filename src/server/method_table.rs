//! The method table: every method one server serves, read from the
//! descriptor sets of its services (the contract, health, reflection v1
//! and v1alpha, and the [`AddedServices`]), each path with what its
//! descriptor says of it, the article's `/Search/search` included. Below
//! every layer: the routes, the metrics' method label and the Connect
//! protocol's method table all read it, and it imports nothing of the
//! server but the added services.
//!
//! A server's table ([`MethodTable`]) is built once per set of services and
//! kept for the life of the process (a process serves one or two such
//! sets), so that every layer holds it, and the paths in it, as `&'static`.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use super::added::AddedServices;
use crate::pb::v1::FILE_DESCRIPTOR_SET;
use crate::rpc::{LEGACY_SEARCH_PATH, Method};

/// The descriptor sets of the services every server serves: the contract,
/// health, and reflection v1 and v1alpha.
pub(super) const BUILT_IN: [&[u8]; 4] = [
    FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// Everything one server serves: each method path with what its descriptor
/// says of it, and which of them belong to added services.
#[derive(Debug)]
pub(super) struct MethodTable {
    /// Every method path served and its method, the article's path last.
    methods: Vec<(&'static str, Method)>,
    /// The names of the added services.
    added: Vec<&'static str>,
}

impl MethodTable {
    /// The table of a server serving the built-in services and `services`:
    /// built on the first call for this set, the same one after.
    pub(super) fn of(services: &AddedServices) -> &'static Self {
        static TABLES: Kept<Vec<(&'static str, usize)>, MethodTable> = Mutex::new(Vec::new());
        // The descriptor sets are statics: their addresses tell them apart.
        let key = services.list.iter().map(|a| (a.name, a.descriptor_set.as_ptr() as usize)).collect();
        keep(&TABLES, key, || Self::build(services))
    }

    fn build(services: &AddedServices) -> Self {
        let mut methods: Vec<(&'static str, Method)> =
            BUILT_IN.iter().flat_map(|set| crate::rpc::methods(set)).map(|m| (intern(&m.path), m)).collect();
        for added in &services.list {
            // Only the added service's own methods: its file may declare
            // others (grpc.testing's UnimplementedService), not served.
            let prefix = format!("/{}/", added.name);
            let own = crate::rpc::methods(added.descriptor_set).into_iter().filter(|m| m.path.starts_with(&prefix));
            methods.extend(own.map(|m| (intern(&m.path), m)));
        }
        // The article's path: the Search method under another name.
        if let Some((_, search)) = methods.iter().find(|(path, _)| *path == crate::rpc::SEARCH_PATH) {
            let legacy = Method { path: LEGACY_SEARCH_PATH.to_owned(), ..search.clone() };
            methods.push((intern(LEGACY_SEARCH_PATH), legacy));
        }
        Self { methods, added: services.names() }
    }

    /// `path` as served (with the lifetime of the table), if it is.
    pub(super) fn path(&self, path: &str) -> Option<&'static str> {
        self.methods.iter().find(|(served, _)| *served == path).map(|(served, _)| *served)
    }

    /// Every method served, with its path.
    pub(super) fn methods(&self) -> impl Iterator<Item = (&'static str, &Method)> {
        self.methods.iter().map(|(path, method)| (*path, method))
    }

    /// Whether `path` names a method of an added service.
    pub(super) fn is_added(&self, path: &str) -> bool {
        let service = path.strip_prefix('/').and_then(|p| p.split_once('/')).map(|(service, _)| service);
        service.is_some_and(|service| self.added.contains(&service))
    }
}

/// Tables kept for the life of the process, each under its key.
pub(super) type Kept<K, T> = Mutex<Vec<(K, &'static T)>>;

/// The table kept in `tables` under `key`, built by `build` the first time.
pub(super) fn keep<K: PartialEq, T>(tables: &Kept<K, T>, key: K, build: impl FnOnce() -> T) -> &'static T {
    let mut tables = tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, table)) = tables.iter().find(|(k, _)| *k == key) {
        return table;
    }
    let table: &'static T = Box::leak(Box::new(build()));
    tables.push((key, table));
    table
}

/// `text` with the life of the process, kept once however often it is asked
/// for: the method paths of every table.
fn intern(text: &str) -> &'static str {
    static INTERNED: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Mutex::default);
    let mut interned = INTERNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(kept) = interned.get(text) {
        return kept;
    }
    let kept: &'static str = Box::leak(text.to_owned().into_boxed_str());
    interned.insert(kept);
    kept
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::{Request, Response};
    use tonic::body::Body;
    use tonic::server::NamedService;
    use tower::Service;

    use super::*;

    #[test]
    fn every_served_path_is_known_and_nothing_else() {
        let table = MethodTable::of(&AddedServices::default());
        assert_eq!(table.path("/search.v1.SearchService/Search"), Some("/search.v1.SearchService/Search"));
        assert_eq!(table.path("/Search/search"), Some("/Search/search"));
        assert_eq!(table.path("/grpc.health.v1.Health/Check"), Some("/grpc.health.v1.Health/Check"));
        let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert_eq!(table.path(reflection), Some(reflection));
        assert_eq!(table.path("/search.v1.SearchService/Nope"), None);
        assert_eq!(table.path("/Search/Search"), None);
        assert_eq!(table.path("/"), None);
        assert_eq!(table.path(""), None);
        assert_eq!(table.path("/grpc.testing.TestService/EmptyCall"), None, "not added");
        assert!(!table.is_added("/search.v1.SearchService/Search"));
    }

    /// A service named as grpc.testing's TestService that answers nothing:
    /// only its name and paths matter here.
    #[derive(Clone)]
    struct Nothing;

    impl NamedService for Nothing {
        const NAME: &'static str = "grpc.testing.TestService";
    }

    impl Service<Request<Body>> for Nothing {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Body>) -> Self::Future {
            std::future::ready(Ok(Response::new(Body::empty())))
        }
    }

    #[test]
    fn an_added_service_is_served_and_only_its_own_methods() {
        let services = AddedServices::default().add(Nothing, crate::pb::testing::FILE_DESCRIPTOR_SET);
        let table = MethodTable::of(&services);
        let empty = "/grpc.testing.TestService/EmptyCall";
        assert_eq!(table.path(empty), Some(empty));
        assert!(table.is_added(empty));
        assert!(!table.is_added("/search.v1.SearchService/Search"));
        assert_eq!(table.path("/search.v1.SearchService/Search"), Some("/search.v1.SearchService/Search"));
        // Declared in the same file, not added: not served.
        assert_eq!(table.path("/grpc.testing.UnimplementedService/UnimplementedCall"), None);
        // The same set of services, the same table.
        assert!(std::ptr::eq(table, MethodTable::of(&services.clone())));
        assert!(!std::ptr::eq(table, MethodTable::of(&AddedServices::default())));
    }
}
