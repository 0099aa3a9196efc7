//! The services a program serves beside the built-in ones (the contract,
//! health, reflection): [`AddedServices`], such as gRPC's interop
//! TestService, each a generated tonic server with the descriptor set that
//! declares it. Below every layer: the method table, the routes and
//! reflection read it, and it imports nothing of the server.

use std::convert::Infallible;

use http::{Request, Response};
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;
use tower::util::BoxCloneSyncService;

/// A service of the stack, boxed: every service but Search's own paths.
pub(super) type Boxed = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// Services a program serves beside Search, health and reflection, through
/// the same stack: the connection loop and its limits, the protocols
/// (gRPC, gRPC-Web, Connect), the per-call layer (admission, deadline, the
/// drain, compression, metrics, the log line). Each is a generated tonic
/// server (or any service that names itself the same way) with the encoded
/// descriptor set that declares it: its methods are routed, counted and
/// offered to Connect from there, and reflection describes it.
///
/// A call to an added service may learn, per message, whether its request
/// messages arrived compressed, and choose whether each answer is
/// ([`ReceivedCompression`](super::ReceivedCompression),
/// [`SendCompression`](super::SendCompression)).
#[derive(Clone, Default)]
pub struct AddedServices {
    pub(super) list: Vec<AddedService>,
}

/// One added service.
#[derive(Clone)]
pub(super) struct AddedService {
    /// Its full name, as its paths start (`grpc.testing.TestService`).
    pub(super) name: &'static str,
    pub(super) service: Boxed,
    /// The encoded `FileDescriptorSet` that declares it.
    pub(super) descriptor_set: &'static [u8],
}

impl AddedServices {
    /// Adds `service`, declared in `descriptor_set` (the generated
    /// `FILE_DESCRIPTOR_SET` of its package). Requests to it may be
    /// compressed with any encoding the server takes, so a generated server
    /// should accept them all (`accept_compressed`); answers are compressed
    /// by the per-call layer.
    #[must_use]
    pub fn add<S>(mut self, service: S, descriptor_set: &'static [u8]) -> Self
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + NamedService,
        S: Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        self.list.push(AddedService { name: S::NAME, service: BoxCloneSyncService::new(service), descriptor_set });
        self
    }

    /// The names of the services added, in order.
    #[must_use]
    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|added| added.name).collect()
    }
}

impl std::fmt::Debug for AddedServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
