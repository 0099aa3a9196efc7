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
//! [`Caller::call`], here, is the layer's one way in: each call runs
//! `attempts.rs`'s loop, in a span of its own when tracing is on.
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

use std::future::Future;

use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use self::attempts::Call;
use self::running::Answer;
use crate::client::Error;
use crate::traces::{CallSpan, StreamSpans};

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

impl Caller {
    /// Runs a call of `kind` to the method at `path`: each attempt sends a
    /// message from `message` (`None`: there is none left to send again)
    /// with `attempt`, on the transport of the subchannel picked for it.
    /// Traced when tracing is on: a span for the call, one per attempt.
    ///
    /// # Errors
    /// What the call ended with: see [`Error`].
    pub(in crate::client) async fn call<R, T, Fut>(
        &self,
        path: &'static str,
        kind: Kind,
        message: impl FnMut() -> Option<R>,
        attempt: impl FnMut(Channel, Request<R>) -> Fut,
    ) -> Result<Answered<T>, Error>
    where
        T: Answer,
        Fut: Future<Output = Result<T, Status>>,
    {
        let Some(span) = CallSpan::start(path) else {
            return Call::new(self, path, kind, message, attempt, None).run().await;
        };
        let result = Call::new(self, path, kind, message, attempt, Some(&span)).run().await;
        match result {
            Ok(mut answered) if kind == Kind::Streaming => {
                answered.spans = answered.attempt.take().map(|attempt| StreamSpans { call: span, attempt });
                Ok(answered)
            }
            Ok(answered) => {
                span.end(Some(Code::Ok));
                Ok(answered)
            }
            Err(err) => {
                span.end(err.code());
                Err(err)
            }
        }
    }
}
