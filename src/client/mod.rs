//! The client side: a library for calling a Search server, as grpc-go and
//! grpc.aio do it: targets, a channel with connectivity states and TLS, a
//! deadline on every call, retries and hedges of what the contract marks
//! safe, and one method per RPC; and what keeps a fleet's gray failures (a
//! replica that hangs, black-holes or slows down) from costing calls:
//! keepalive, health checking, outlier detection and hedging.
//!
//! Three layers, each importing only those below it, over a base that
//! imports none of them (`python3 tools/import_layers.py` checks it):
//! - the surface, what a program calls: `handle.rs` ([`Client`], the handle
//!   a program holds: building, connecting, the connectivity API, the
//!   counts), `methods.rs` (one method per RPC), `options.rs` ([`ClientOptions`] and the defaults),
//!   `responses.rs` (a streaming call's [`Responses`]);
//! - `call/`: what happens to one call: the attempt loop and its rules
//!   (retries, hedges, sending again), failures, the retry buffer;
//! - `channel/`: where calls go: the target, resolution, subchannels and
//!   their connections, the balancing policy, health, outlier detection;
//! - `xds/`: the xDS client (gRFC A27): the bootstrap, the ADS stream, the
//!   resources it brings as plain types, their watchers; below the channel,
//!   which will read it as it reads a resolver;
//! - the base: `error.rs` ([`Error`], what a call ends with), `stats.rs`
//!   (the client's counts), `backoff.rs` ([`Backoff`]), `token.rs`
//!   ([`BearerToken`], the per-call credentials), `metadata.rs`
//!   ([`Metadata`], the caller's own headers on every call).

mod backoff;
mod call;
mod channel;
mod error;
mod handle;
mod metadata;
mod methods;
mod options;
mod responses;
mod stats;
mod token;
pub mod xds;

pub use self::backoff::{Backoff, BackoffError};
pub use self::call::{
    COLD_DELAY, Compression, Hedging, HedgingDelay, MIN_DELAY, RetryBuffer, RetryThrottle, Throttling,
};
pub use self::channel::{
    Backend, Connectivity, ConnectivityState, Event, FailurePercentageEjection, InvalidTarget, Keepalive,
    LoadBalancing, OutlierDetection, OutlierError, SubchannelWatcher, SuccessRateEjection, Target, Transition,
    WeightSettings,
};
pub use self::error::{Error, describe_status};
pub use self::handle::Client;
pub use self::metadata::{Metadata, MetadataError};
pub use self::options::{
    ClientOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT, HEALTH_SERVICE,
};
pub use self::responses::Responses;
pub use self::stats::{CallStats, Stats};
pub use self::token::{BearerToken, MAX_TOKEN_BYTES, TokenError};
