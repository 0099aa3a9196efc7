//! The call: what happens to one call between the client's method and the
//! channel. Every call, unary or streaming, runs the same attempt loop
//! under its deadline, as gRFC A6's rules say: hedged or retried when the
//! contract marks the method safe, sent again when the server never had it
//! (with a streaming call's messages so far), within the retry budget.
//!
//! It sits on `channel/` (it asks the channel for a subchannel and tells the
//! subchannel how its attempt ended) and may import the client's base
//! (`error.rs`, `stats.rs`, `backoff.rs`) and the crate's shared core; never
//! the client's surface.
//!
//! Files:
//! - `caller.rs`: `Caller`, what every call of a client shares; the
//!   settings the call layer takes; [`Compression`].
//! - `rules.rs`: the rules, without I/O: what is hedged, retried, sent
//!   again, and when the budget says no.
//! - `attempts.rs`: the attempt loop that follows them, for every call;
//!   `running.rs` its attempts while they run.
//! - `failure.rs`: what a failed attempt means (never sent, never
//!   answered, the deadline) and the error it becomes.
//! - `retry.rs`: the methods the contract marks safe; the retry budget.
//! - `hedging.rs`: the hedging policy and its delay, learned from answers.
//! - `replay.rs`: a streaming call's retry buffer, for sending it again.
//! - `throttle.rs`: client-side adaptive throttling, from the share of
//!   attempts the servers took.

mod attempts;
mod caller;
mod failure;
mod hedging;
mod replay;
mod retry;
mod rules;
mod running;
mod throttle;

pub(in crate::client) use self::attempts::Answered;
pub use self::caller::Compression;
pub(in crate::client) use self::caller::{CallSettings, Caller};
pub use self::hedging::{COLD_DELAY, Hedging, HedgingDelay, MIN_DELAY};
pub use self::replay::RetryBuffer;
pub use self::retry::RetryThrottle;
pub(in crate::client) use self::rules::Kind;
pub use self::throttle::Throttling;
