//! The Search service: does a query contain "banana", ignoring case?
//!
//! A Rust port of the `grpc.aio` service of the original article, driven by
//! one protobuf contract (`proto/search/v1/search.proto`) shared by the
//! server, the client and the JSON view of the messages.
//!
//! Layout:
//! - [`pb`]: the generated bindings (`gen/`, written by `buf generate`).
//! - [`matcher`]: the domain, pure functions: the answer Python would give.
//! - [`service`]: the generated service trait, implemented with thin handlers.
//! - [`server`]: binding, routing (the legacy `/Search/search` path, health,
//!   reflection), serving and draining; [`calls`] is what happens around
//!   every call (with `frames`, the request's gRPC framing); [`config`]
//!   the server's flags.
//! - [`tls`]: PEM files for both ends.
//! - [`client`]: deadlines, retries, one method per RPC; [`target`] where
//!   it connects; [`connectivity`] its channel's state; [`retry`] backoff,
//!   budget and which methods are safe.
//! - [`cli`]: the `client` command line: flags, the call, exit codes; with
//!   [`input`] (lines, texts, `-d` JSON) and [`output`] (text or JSON lines).
//! - [`load`]: the load generator behind `client bench`.
//! - [`shutdown`], [`telemetry`]: signals and logging for the binaries.

pub mod calls;
pub mod cli;
pub mod client;
pub mod config;
pub mod connectivity;
pub mod error;
mod frames;
pub mod input;
pub mod load;
pub mod matcher;
pub mod output;
pub mod pb;
pub mod retry;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod target;
pub mod telemetry;
pub mod tls;

/// Where the server listens and the client connects unless told otherwise:
/// the article's address.
pub const DEFAULT_ADDR: &str = "localhost:8100";
