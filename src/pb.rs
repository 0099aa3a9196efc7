//! The generated protobuf bindings: the only module that touches `gen/`.
//!
//! `buf generate` writes `gen/` (see `docs/protocols.md`, "Changing the contract"); nothing
//! here is edited by hand. The contract's messages (and the interop contract's,
//! and the ORCA report's) carry pbjson serde impls for the proto3 JSON mapping,
//! and [`v1::FILE_DESCRIPTOR_SET`] is the encoded contract for reflection and
//! for reading method options at run time. The xDS packages ([`envoy`],
//! [`google`], [`udpa`], `xds::r#type`) are binary protobuf only, without descriptor
//! sets (`docs/protocols.md`, "The xDS protos").

/// One generated package as a module: its file from `gen/` included as
/// written, neither formatted nor linted.
macro_rules! package {
    ($(#[$doc:meta])* $name:ident = $file:literal) => {
        $(#[$doc])*
        #[rustfmt::skip]
        #[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
        pub mod $name {
            include!($file);
        }
    };
}

/// `search.v1`: the Search service contract (`proto/search/v1/search.proto`).
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
#[path = "../gen/search/v1/search.v1.rs"]
pub mod v1;

/// `grpc.testing`: gRPC's interoperability test contract
/// (`proto/grpc/testing/`), served by the interop server (`src/interop/`).
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
#[path = "../gen/grpc/testing/grpc.testing.rs"]
pub mod testing;

/// `xds.*`: the xDS project's ORCA load reports (`proto/xds/`), the message
/// (`xds::data::orca::v3::OrcaLoadReport`) and the out-of-band stream
/// (`xds::service::orca::v3`), nested as the generated code names them
/// (its paths climb four modules up), so included rather than `#[path]`ed.
pub mod xds {
    /// `xds.data`.
    pub mod data {
        /// `xds.data.orca`.
        pub mod orca {
            /// `xds.data.orca.v3`: the load report.
            #[rustfmt::skip]
            #[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
            pub mod v3 {
                include!("../gen/xds/data/orca/v3/xds.data.orca.v3.rs");
            }
        }
    }
    /// `xds.type`.
    pub mod r#type {
        package!(
            /// `xds.type.v3`: `TypedStruct`, a config given as a Struct.
            v3 = "../gen/xds/r#type/v3/xds.type.v3.rs"
        );
    }
    /// `xds.service`.
    pub mod service {
        /// `xds.service.orca`.
        pub mod orca {
            /// `xds.service.orca.v3`: `OpenRcaService`, the out-of-band stream.
            #[rustfmt::skip]
            #[allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
            pub mod v3 {
                include!("../gen/xds/service/orca/v3/xds.service.orca.v3.rs");
            }
        }
    }
}

/// `envoy.*`: the xDS resources a client reads, their stream (ADS) and the
/// client status service (CSDS), from this project's subset of Envoy's API
/// (`proto/envoy/`). Nested as the generated code names them: its paths
/// climb to the root of `pb`, where `google` and `xds` sit beside it.
pub mod envoy {
    /// `envoy.admin`.
    pub mod admin {
        package!(
            /// `envoy.admin.v3`: a resource's status in a client, for CSDS.
            v3 = "../gen/envoy/admin/v3/envoy.admin.v3.rs"
        );
    }
    /// `envoy.config`: the resources.
    pub mod config {
        /// `envoy.config.cluster`.
        pub mod cluster {
            package!(
                /// `envoy.config.cluster.v3`: `Cluster` (CDS).
                v3 = "../gen/envoy/config/cluster/v3/envoy.config.cluster.v3.rs"
            );
        }
        /// `envoy.config.core`.
        pub mod core {
            package!(
                /// `envoy.config.core.v3`: `Node`, addresses, config sources.
                v3 = "../gen/envoy/config/core/v3/envoy.config.core.v3.rs"
            );
        }
        /// `envoy.config.endpoint`.
        pub mod endpoint {
            package!(
                /// `envoy.config.endpoint.v3`: `ClusterLoadAssignment` (EDS).
                v3 = "../gen/envoy/config/endpoint/v3/envoy.config.endpoint.v3.rs"
            );
        }
        /// `envoy.config.listener`.
        pub mod listener {
            package!(
                /// `envoy.config.listener.v3`: `Listener` (LDS).
                v3 = "../gen/envoy/config/listener/v3/envoy.config.listener.v3.rs"
            );
        }
        /// `envoy.config.route`.
        pub mod route {
            package!(
                /// `envoy.config.route.v3`: `RouteConfiguration` (RDS).
                v3 = "../gen/envoy/config/route/v3/envoy.config.route.v3.rs"
            );
        }
    }
    /// `envoy.extensions`: the typed configs resources carry.
    pub mod extensions {
        /// `envoy.extensions.filters`.
        pub mod filters {
            /// `envoy.extensions.filters.http`.
            pub mod http {
                /// `envoy.extensions.filters.http.router`.
                pub mod router {
                    package!(
                        /// `envoy.extensions.filters.http.router.v3`: `Router`.
                        v3 = "../gen/envoy/extensions/filters/http/router/v3/envoy.extensions.filters.http.router.v3.rs"
                    );
                }
            }
            /// `envoy.extensions.filters.network`.
            pub mod network {
                /// `envoy.extensions.filters.network.http_connection_manager`.
                pub mod http_connection_manager {
                    package!(
                        /// `...http_connection_manager.v3`: `HttpConnectionManager`.
                        v3 = "../gen/envoy/extensions/filters/network/http_connection_manager/v3/envoy.extensions.filters.network.http_connection_manager.v3.rs"
                    );
                }
            }
        }
        /// `envoy.extensions.load_balancing_policies`: a cluster's policies.
        pub mod load_balancing_policies {
            /// `...client_side_weighted_round_robin`.
            pub mod client_side_weighted_round_robin {
                package!(
                    /// `...client_side_weighted_round_robin.v3`.
                    v3 = "../gen/envoy/extensions/load_balancing_policies/client_side_weighted_round_robin/v3/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.rs"
                );
            }
            /// `...pick_first`.
            pub mod pick_first {
                package!(
                    /// `...pick_first.v3`.
                    v3 = "../gen/envoy/extensions/load_balancing_policies/pick_first/v3/envoy.extensions.load_balancing_policies.pick_first.v3.rs"
                );
            }
            /// `...ring_hash`.
            pub mod ring_hash {
                package!(
                    /// `...ring_hash.v3`.
                    v3 = "../gen/envoy/extensions/load_balancing_policies/ring_hash/v3/envoy.extensions.load_balancing_policies.ring_hash.v3.rs"
                );
            }
            /// `...round_robin`.
            pub mod round_robin {
                package!(
                    /// `...round_robin.v3`.
                    v3 = "../gen/envoy/extensions/load_balancing_policies/round_robin/v3/envoy.extensions.load_balancing_policies.round_robin.v3.rs"
                );
            }
            /// `...wrr_locality`.
            pub mod wrr_locality {
                package!(
                    /// `...wrr_locality.v3`.
                    v3 = "../gen/envoy/extensions/load_balancing_policies/wrr_locality/v3/envoy.extensions.load_balancing_policies.wrr_locality.v3.rs"
                );
            }
        }
    }
    /// `envoy.service`: the services.
    pub mod service {
        /// `envoy.service.discovery`.
        pub mod discovery {
            package!(
                /// `envoy.service.discovery.v3`: the ADS stream and its messages.
                v3 = "../gen/envoy/service/discovery/v3/envoy.service.discovery.v3.rs"
            );
        }
        /// `envoy.service.status`.
        pub mod status {
            package!(
                /// `envoy.service.status.v3`: the client status service (CSDS).
                v3 = "../gen/envoy/service/status/v3/envoy.service.status.v3.rs"
            );
        }
    }
    /// `envoy.type`.
    pub mod r#type {
        package!(
            /// `envoy.type.v3`: fractions and ranges.
            v3 = "../gen/envoy/r#type/v3/envoy.type.v3.rs"
        );
        /// `envoy.type.matcher`.
        pub mod matcher {
            package!(
                /// `envoy.type.matcher.v3`: string and regex matchers.
                v3 = "../gen/envoy/r#type/matcher/v3/envoy.type.matcher.v3.rs"
            );
        }
    }
}

/// `udpa.*`: the xDS project's older package names.
pub mod udpa {
    /// `udpa.type`.
    pub mod r#type {
        package!(
            /// `udpa.type.v1`: `TypedStruct`, the older name of
            /// `xds.type.v3.TypedStruct`.
            v1 = "../gen/udpa/r#type/v1/udpa.type.v1.rs"
        );
    }
}

/// `google.*`: googleapis' messages the xDS stream carries.
pub mod google {
    package!(
        /// `google.rpc`: `Status`, the error detail of a NACK
        /// (`proto/google/rpc/status.proto`).
        rpc = "../gen/google/rpc/google.rpc.rs"
    );
}
