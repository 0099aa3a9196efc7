//! The generated protobuf bindings: the only module that touches `gen/`.
//!
//! `buf generate` writes `gen/` (see `docs/protocols.md`, "Changing the contract"); nothing
//! here is edited by hand. The messages carry pbjson serde impls for the proto3
//! JSON mapping, and [`v1::FILE_DESCRIPTOR_SET`] is the encoded contract for
//! reflection and for reading method options at run time.

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
