//! The four resource types of gRFC A27 (Listener, RouteConfiguration,
//! Cluster, ClusterLoadAssignment): their type URLs, a decoded resource of
//! any of them, and the helpers their validation shares.

use prost_types::Any;
use serde::Serialize;
use std::fmt;

use super::cluster::{self, Cluster};
use super::endpoint::{self, Endpoints};
use super::listener::{self, Listener};
use super::route::{self, RouteConfig};
use crate::pb::envoy::config::cluster::v3 as cds;
use crate::pb::envoy::config::endpoint::v3 as eds;
use crate::pb::envoy::config::listener::v3 as lds;
use crate::pb::envoy::config::route::v3 as rds;

/// The type URL of `envoy.service.discovery.v3.Resource`, a wrapper a
/// state-of-the-world response may put around each resource.
const WRAPPER_TYPE_URL: &str = "type.googleapis.com/envoy.service.discovery.v3.Resource";

/// A resource type of the ADS stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ResourceType {
    /// LDS: `envoy.config.listener.v3.Listener`.
    Listener,
    /// RDS: `envoy.config.route.v3.RouteConfiguration`.
    RouteConfiguration,
    /// CDS: `envoy.config.cluster.v3.Cluster`.
    Cluster,
    /// EDS: `envoy.config.endpoint.v3.ClusterLoadAssignment`.
    ClusterLoadAssignment,
}

impl ResourceType {
    /// Every type, in the order a client subscribes to them.
    pub const ALL: [Self; 4] = [Self::Listener, Self::RouteConfiguration, Self::Cluster, Self::ClusterLoadAssignment];

    /// The type URL on the wire.
    #[must_use]
    pub fn type_url(self) -> &'static str {
        match self {
            Self::Listener => "type.googleapis.com/envoy.config.listener.v3.Listener",
            Self::RouteConfiguration => "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            Self::Cluster => "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            Self::ClusterLoadAssignment => "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        }
    }

    /// The type of a type URL, when it is one of the four.
    #[must_use]
    pub fn from_type_url(url: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.type_url() == url)
    }

    /// Whether a resource left out of a state-of-the-world update is
    /// deleted (LDS and CDS); RDS and EDS resources are only ever named by
    /// a resource of the type above them, so their absence says nothing.
    #[must_use]
    pub fn deleted_when_absent(self) -> bool {
        matches!(self, Self::Listener | Self::Cluster)
    }

    /// The short name: LDS, RDS, CDS, EDS.
    #[must_use]
    pub fn short(self) -> &'static str {
        match self {
            Self::Listener => "LDS",
            Self::RouteConfiguration => "RDS",
            Self::Cluster => "CDS",
            Self::ClusterLoadAssignment => "EDS",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// A validated resource, in the plain types the channel uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    /// A Listener.
    Listener(Listener),
    /// A RouteConfiguration.
    RouteConfiguration(RouteConfig),
    /// A Cluster.
    Cluster(Cluster),
    /// A ClusterLoadAssignment.
    ClusterLoadAssignment(Endpoints),
}

/// One resource of a response, decoded: its name (when it could be read)
/// and the resource, or why it breaks a rule.
#[derive(Debug)]
pub struct Decoded {
    /// The resource's name; `None` when not even the name could be read.
    pub name: Option<String>,
    /// The resource, or the rule it breaks.
    pub result: Result<Resource, String>,
}

/// A resource's name, when its message decoded, and the resource as the
/// channel takes it, or the rule it breaks.
type Named = (Option<String>, Result<Resource, String>);

/// Decodes a message of type `M`, names it, and validates it into `T`.
fn decode_as<M: prost::Message + Default, T>(
    bytes: &[u8],
    what: &str,
    name: fn(&M) -> &str,
    validate: fn(&M) -> Result<T, String>,
    into: fn(T) -> Resource,
) -> Named {
    match super::fields::message::<M>(bytes, what) {
        Ok(m) => (Some(name(&m).to_owned()), validate(&m).map(into)),
        Err(err) => (None, Err(err)),
    }
}

/// Decodes and validates one resource of a response of type `kind`.
#[must_use]
pub fn decode(kind: ResourceType, any: &Any) -> Decoded {
    let wrapped;
    let any = if any.type_url == WRAPPER_TYPE_URL {
        // A resource wrapped in `Resource` (the `xds.config.resource-in-sotw` feature).
        match super::fields::message::<crate::pb::envoy::service::discovery::v3::Resource>(
            &any.value,
            "Resource wrapper",
        ) {
            Ok(resource) => match resource.resource {
                Some(inner) => {
                    wrapped = inner;
                    &wrapped
                }
                None => {
                    return Decoded { name: Some(resource.name), result: Err("an empty Resource wrapper".to_owned()) };
                }
            },
            Err(err) => return Decoded { name: None, result: Err(err) },
        }
    } else {
        any
    };
    if any.type_url != kind.type_url() {
        let result = Err(format!("a resource of type {} in a response of type {}", any.type_url, kind.type_url()));
        return Decoded { name: None, result };
    }
    let (name, result) = match kind {
        ResourceType::Listener => {
            decode_as(&any.value, "Listener", |m: &lds::Listener| &m.name, listener::validate, Resource::Listener)
        }
        ResourceType::RouteConfiguration => decode_as(
            &any.value,
            "RouteConfiguration",
            |m: &rds::RouteConfiguration| &m.name,
            route::validate,
            Resource::RouteConfiguration,
        ),
        ResourceType::Cluster => {
            decode_as(&any.value, "Cluster", |m: &cds::Cluster| &m.name, cluster::validate, Resource::Cluster)
        }
        ResourceType::ClusterLoadAssignment => decode_as(
            &any.value,
            "ClusterLoadAssignment",
            |m: &eds::ClusterLoadAssignment| &m.cluster_name,
            endpoint::validate,
            Resource::ClusterLoadAssignment,
        ),
    };
    Decoded { name, result }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_urls_round_trip() {
        for kind in ResourceType::ALL {
            assert_eq!(ResourceType::from_type_url(kind.type_url()), Some(kind));
        }
        assert_eq!(ResourceType::from_type_url("type.googleapis.com/envoy.config.listener.v2.Listener"), None);
        let deleted: Vec<_> = ResourceType::ALL.into_iter().filter(|t| t.deleted_when_absent()).collect();
        assert_eq!(deleted, [ResourceType::Listener, ResourceType::Cluster]);
    }

    #[test]
    fn a_resource_of_another_type_is_refused() {
        let any = Any { type_url: ResourceType::Cluster.type_url().to_owned(), value: Vec::new() };
        let decoded = decode(ResourceType::Listener, &any);
        assert!(decoded.result.expect_err("refused").contains("envoy.config.cluster.v3.Cluster"));
    }
}
