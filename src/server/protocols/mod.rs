//! The protocols layer: how a call is carried on the wire, and the one port
//! that takes three protocols. Each request is told apart by its content
//! type: gRPC goes on as it is, gRPC-Web through tonic-web, the Connect
//! protocol through its translation (`connect/`), so that everything below
//! sees gRPC. The 5-byte envelope all three share, the framing checks of a
//! request body, the size limit's wording and message compression are here
//! too, for the per-call layer and the direct unary path to use.
//!
//! It imports nothing of the call layer nor of the transport layer; of the
//! rest of the server only `method_table.rs` (the methods Connect can route)
//! and `config/` (the CORS origins).
//!
//! Files:
//! - `dispatch.rs`: the dispatch by content type, CORS for the browser
//!   protocols ([`ProtocolLayer`]).
//! - `call_future.rs`: the future every service of the stack returns for a
//!   call ([`CallFuture`]).
//! - `mark.rs`: the protocol's mark on a call, for the per-call layer
//!   ([`CallMark`]).
//! - `cors.rs`: the CORS layer for the browser protocols ([`cors`]).
//! - `connect/`: the Connect protocol, translated to and from gRPC.
//! - `envelope.rs`: the 5-byte message envelope all three share.
//! - `frames.rs`: a request's gRPC framing checked as it arrives (size
//!   limit, truncation), the messages counted ([`RequestFrames`]).
//! - `compression.rs`: gzip, deflate, zstd: bounded inflating, compressing.
//! - `per_message.rs`: which request messages arrived compressed, and
//!   which answers must be, for handlers that know or choose it
//!   ([`ReceivedCompression`], [`SendCompression`]).

mod call_future;
pub(in crate::server) mod compression;
mod connect;
mod cors;
mod dispatch;
pub(in crate::server) mod envelope;
mod frames;
mod mark;
mod per_message;

pub(in crate::server) use self::call_future::{CallFuture, answered, refused};
/// For the fuzz targets (`server/fuzzing/`).
#[cfg(any(fuzzing, test))]
pub(in crate::server) use self::connect::{NON_FINITE, connect_timeout, json as connect_json};
pub(in crate::server) use self::cors::cors;
pub(in crate::server) use self::dispatch::ProtocolLayer;
pub(in crate::server) use self::frames::{Flows, RequestFrames, too_large};
pub(in crate::server) use self::mark::{CallMark, Protocol};
pub use self::per_message::{ReceivedCompression, SendCompression};
