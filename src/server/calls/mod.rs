//! The call layer: what happens to each call once it is a gRPC call,
//! whatever protocol it came in on. The per-call layer admits it (load
//! shedding), sets and enforces its deadline and the drain's cut, gives
//! client mistakes their codes, compresses answers, counts and logs it;
//! below it one dispatch by path sends it to the direct unary Search, the
//! streaming calls, or a generated service (health, reflection, an added
//! service, the Search service's other methods); the handlers answer from
//! the domain ([`crate::matcher`]).
//!
//! It imports the protocols layer (the stack's future, the protocol's mark,
//! the framing, compression) and the transport layer (the connection a call
//! keeps busy, the connection counts for the metrics), never the reverse.
//!
//! Files:
//! - `layer.rs`: the per-call layer around every route ([`CallLayer`]):
//!   admission, refusals, the deadline and the cut on the handler.
//! - `call_body.rs`: the answer on its way out: the deadline and the cut on
//!   a streamed answer, its status read from the trailers.
//! - `call_end.rs`: the call's end: metrics, the log line, the span.
//! - `mistakes.rs`: client mistakes that tonic reports as INTERNAL, given
//!   their own codes.
//! - `compressor.rs`: an answer's large messages compressed as they pass.
//! - `policy.rs`: what it decides per call: the deadline from
//!   `grpc-timeout`, admission under the limit of calls in flight, the
//!   drain's cut ([`CallPolicy`]).
//! - `adaptive.rs`: the adaptive limit of calls in flight, a gradient
//!   controller on the latency of admitted calls.
//! - `metrics.rs`: Prometheus metrics at `--metrics-listen`.
//! - `routes.rs`: each gRPC path to what serves it ([`Routes`]); a method
//!   of the contract without a path of its own goes to the generated
//!   server, so a new one is routed as soon as its handler exists.
//! - `unary.rs`: the Search call served directly, without tonic's codec.
//! - `streaming.rs`: the Search service's streaming calls, through tonic's
//!   codec with buffers sized for the contract's messages.
//! - `handlers.rs`: the RPC handlers over the matcher ([`Search`]).

mod adaptive;
mod call_body;
mod call_end;
mod compressor;
mod handlers;
mod layer;
mod metrics;
mod mistakes;
mod policy;
mod routes;
mod streaming;
mod unary;

pub use self::handlers::Search;
pub(in crate::server) use self::layer::CallLayer;
pub(in crate::server) use self::metrics::{Metrics, serve_metrics};
pub(in crate::server) use self::policy::CallPolicy;
pub(in crate::server) use self::routes::Routes;
