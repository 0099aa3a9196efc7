//! The Search service: does a query contain "banana", ignoring case?
//!
//! A Rust port of the `grpc.aio` service of the original article, driven by
//! one protobuf contract (`proto/search/v1/search.proto`) shared by the
//! server, the client and the JSON view of the messages.
//!
//! Layout: three sides, none importing another, over a shared core, and
//! the interop cases above the server and the client (the whole map, with
//! the path of a request, is `ARCHITECTURE.md`).
//! - [`server`]: gRPC, gRPC-Web and the Connect protocol on one port, in
//!   three layers that import downwards only: the calls (the per-call
//!   layer, routing, the handlers), the protocols (dispatch, framing,
//!   compression), the transport (sockets, connections); the flags, the
//!   drain.
//! - [`client`]: the library that calls a server: targets, connectivity,
//!   deadlines, retries, one method per RPC.
//! - [`cli`]: the `client` command: flags, input, output, exit codes, and
//!   the load tool behind `client bench`.
//! - [`interop`]: gRPC's interop test service, served by the server, and
//!   the interop client's cases; above the server and the client.
//! - The shared core, owned by neither side: [`pb`] (the generated code,
//!   `gen/`), [`matcher`] (the domain: pure functions), [`rpc`] (the
//!   contract's methods from its descriptor, method paths, status-code
//!   names), [`lenient`] (protobuf decoded as protobuf's own runtimes
//!   decode it), [`tls`] (PEM files for both ends),
//!   [`logging`] (log lines for the binaries), [`traces`] (OpenTelemetry
//!   spans for both sides, exported over OTLP).

#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod interop;
pub mod lenient;
pub mod logging;
pub mod matcher;
pub mod pb;
pub mod rpc;
pub mod server;
pub mod tls;
pub mod traces;

/// Where the server listens and the client connects unless told otherwise:
/// the article's address.
pub const DEFAULT_ADDR: &str = "localhost:8100";
