//! The xDS client (gRFC A27, with A28, A31, A32, A42, A44, A50, A52, A58):
//! grpc's bootstrap, one ADS stream to the management server, the four
//! resource types decoded and validated into plain Rust types, a cache
//! with watchers, and a dump of it (grpc's CSDS). The channel reads its
//! resources; it imports only the client's base (`backoff.rs`, `error.rs`)
//! and the crate's shared core, never `channel/`, `call/` nor the surface.
//!
//! Files, from the bottom up:
//! - `bootstrap.rs`: [`Bootstrap`], from `GRPC_XDS_BOOTSTRAP` or
//!   `GRPC_XDS_BOOTSTRAP_CONFIG`.
//! - `resource.rs`: [`ResourceType`] and its type URLs, [`Resource`], the
//!   decoding of each; `fields.rs` the protobuf fields' checks (durations,
//!   fractions); `listener.rs`, `route.rs` (with `route_match.rs` and
//!   `route_action.rs`), `cluster.rs` (with `cluster_lb.rs`), `endpoint.rs`:
//!   each resource's rules.
//! - `protocol.rs`: the ACK/NACK/nonce rules of one type, no I/O.
//! - `cache.rs`: what is held, its watchers, timers and dump.
//! - `wire.rs`: the DiscoveryRequest and the node on the wire.
//! - `ads.rs`: the stream's task; `client.rs`: [`XdsClient`], its handle.

mod ads;
mod bootstrap;
mod cache;
mod client;
mod cluster;
mod cluster_lb;
mod endpoint;
mod fields;
mod listener;
mod protocol;
mod resource;
mod route;
mod route_action;
mod route_match;
mod wire;

pub use self::bootstrap::{
    BOOTSTRAP_CONFIG_ENV, BOOTSTRAP_FILE_ENV, Bootstrap, BootstrapError, ChannelCreds, Node, NodeLocality, XdsServer,
};
pub use self::cache::{DumpEntry, Status, Watched};
pub use self::client::{DOES_NOT_EXIST_TIMEOUT, ResourceWatch, XdsClient, XdsSettings};
pub use self::cluster::{Cluster, DEFAULT_MAX_REQUESTS, FailurePercentage, OutlierSettings, SuccessRate};
pub use self::cluster_lb::{LbPolicy, MAX_RING_SIZE, WrrConfig};
pub use self::endpoint::{DropOverload, Endpoint, Endpoints, Health, Locality, LocalityEndpoints};
pub use self::listener::{HCM_TYPE_URL, Listener, ROUTER_TYPE_URL, RouteSource};
pub use self::resource::{Resource, ResourceType};
pub use self::route::{Route, RouteConfig, VirtualHost};
pub use self::route_action::{Forward, HashPolicy, HashSource, RetryPolicy, RouteAction, WeightedCluster};
pub use self::route_match::{HeaderMatch, HeaderRule, PathMatch, Pattern, RouteMatch};
