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
