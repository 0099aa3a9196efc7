//! gRPC's interoperability test cases on this project's stack: the
//! `grpc.testing.TestService` as an interop server implements it, served
//! through the same server as Search ([`services`] adds it to a
//! [`ServerConfig`](crate::server::ServerConfig)), and an interop client
//! that runs each case by its name against any interop server.
//!
//! A side of its own, above the server and the client: it uses their
//! public API, and nothing else imports it.
//!
//! Files:
//! - `service.rs`: the TestService's handlers ([`Interop`]).
//! - `echo.rs`: the metadata echo around them ([`Echo`]).
//! - `cases/`: the cases, by name ([`Case`]).
//! - `client.rs`: where the client connects ([`InteropTarget`]) and how a
//!   case fails ([`Failed`]).
//! - `raw.rs`: calls over a bare HTTP/2 connection, for the compressed flags.
//! - `orca.rs`: the ORCA cases' server side: the figures a request asks
//!   for, as its call's or the server's load report ([`orca::reporter`]).

mod cases;
mod client;
mod echo;
pub mod orca;
mod raw;
mod service;

pub use self::cases::Case;
pub use self::client::{Failed, InteropTarget};
pub use self::echo::Echo;
pub use self::service::Interop;
use crate::pb::testing::FILE_DESCRIPTOR_SET;
use crate::pb::testing::test_service_server::TestServiceServer;
use crate::server::AddedServices;

/// The TestService `interop` as a service to add to a server, taking
/// request messages of up to `max_recv_bytes` (the server's limit),
/// compressed with any encoding the server takes.
#[must_use]
pub fn services(interop: Interop, max_recv_bytes: usize) -> AddedServices {
    use tonic::codec::CompressionEncoding::{Deflate, Gzip, Zstd};
    let service = TestServiceServer::new(interop)
        .accept_compressed(Gzip)
        .accept_compressed(Zstd)
        .accept_compressed(Deflate)
        .max_decoding_message_size(max_recv_bytes)
        .max_encoding_message_size(usize::MAX);
    AddedServices::default().add(Echo(service), FILE_DESCRIPTOR_SET)
}
