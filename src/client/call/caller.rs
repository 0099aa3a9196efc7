//! What every call of a client shares ([`Caller`]: the channel, the
//! settings, the retry budget, the hedging delay, the retry buffer's bytes,
//! the counts), and what each attempt's request carries (its deadline, its
//! trace context, its compression).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_stream::Stream;
use tonic::Request;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use super::hedging::{self, Hedging, HedgingDelay};
use super::replay::{ChannelBytes, Replay, RetryBuffer};
use super::retry::{RetryBudget, RetryThrottle};
use super::throttle::{Throttle, Throttling};
use crate::client::backoff::Backoff;
use crate::client::channel::{Balancer, Event, Subchannel};
use crate::client::error::Error;
use crate::client::metadata::Metadata;
use crate::client::stats::Stats;
use crate::client::token::BearerToken;
use crate::pb::v1::search_service_client::SearchServiceClient;
use crate::traces::{AttemptSpan, TRACEPARENT, TRACESTATE};

/// What the call layer takes of the client's options.
#[derive(Debug, Clone)]
pub(in crate::client) struct CallSettings {
    /// Each call's overall deadline, every attempt included.
    pub(in crate::client) timeout: Duration,
    /// A call that cannot be sent waits for the server, within its deadline.
    pub(in crate::client) wait_for_ready: bool,
    /// The wait before a retry.
    pub(in crate::client) backoff: Backoff,
    /// Attempts of a call the contract marks safe, the first included.
    pub(in crate::client) max_attempts: u32,
    /// The retry budget's size.
    pub(in crate::client) retry_budget: RetryThrottle,
    /// Client-side adaptive throttling; `None`: off.
    pub(in crate::client) throttling: Option<Throttling>,
    /// What a streaming call keeps to send again.
    pub(in crate::client) retry_buffer: RetryBuffer,
    /// The encoding of request messages; `None`: uncompressed.
    pub(in crate::client) compression: Option<Compression>,
    /// Hedging of side-effect-free methods; `None`: off.
    pub(in crate::client) hedging: Option<Hedging>,
    /// The token every attempt carries; `None`: none.
    pub(in crate::client) token: Option<BearerToken>,
    /// The caller's headers every attempt carries.
    pub(in crate::client) metadata: Metadata,
}

/// How the client compresses what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// tonic's name for it.
    #[must_use]
    pub fn encoding(self) -> CompressionEncoding {
        match self {
            Self::Gzip => CompressionEncoding::Gzip,
            Self::Zstd => CompressionEncoding::Zstd,
        }
    }
}

/// The encodings the client reads answers in.
const ACCEPTED: [CompressionEncoding; 3] =
    [CompressionEncoding::Gzip, CompressionEncoding::Zstd, CompressionEncoding::Deflate];

/// What every call of a client shares: the channel, the settings, the retry
/// budget, the hedging delay, the bytes the streaming calls keep, the counts.
#[derive(Debug)]
pub(in crate::client) struct Caller {
    /// The channel the calls go on.
    pub(in crate::client) channel: Arc<Balancer>,
    pub(super) settings: CallSettings,
    pub(super) budget: RetryBudget,
    /// The throttle every attempt goes through, when throttling is on.
    pub(super) throttle: Option<Throttle>,
    /// The hedging delay, learned from the answers.
    pub(super) hedge_delay: hedging::Delay,
    /// The bytes the streaming calls keep to send again, all together.
    retry_bytes: ChannelBytes,
    pub(super) stats: Arc<Stats>,
}

impl Caller {
    /// The calls of a client over `channel`, counted into `stats`.
    pub(in crate::client) fn new(channel: Arc<Balancer>, settings: CallSettings, stats: Arc<Stats>) -> Self {
        Self {
            channel,
            budget: RetryBudget::new(settings.retry_budget),
            throttle: settings.throttling.map(Throttle::new),
            hedge_delay: hedging::Delay::new(settings.hedging.map_or(HedgingDelay::Auto, |h| h.delay)),
            retry_bytes: ChannelBytes::default(),
            settings,
            stats,
        }
    }

    /// The settings the calls run by.
    pub(in crate::client) fn settings(&self) -> &CallSettings {
        &self.settings
    }

    /// The hedging delay now (the automatic one moves with the latency);
    /// `None` when hedging is off.
    pub(in crate::client) fn hedging_delay(&self) -> Option<Duration> {
        self.settings.hedging.map(|_| self.hedge_delay.get())
    }

    /// The generated client on `channel`, sending and reading compressed
    /// messages as the settings say.
    pub(in crate::client) fn grpc(&self, channel: Channel) -> SearchServiceClient<Channel> {
        let client =
            ACCEPTED.into_iter().fold(SearchServiceClient::new(channel), SearchServiceClient::accept_compressed);
        match self.settings.compression {
            Some(compression) => client.send_compressed(compression.encoding()),
            None => client,
        }
    }

    /// tonic's generic client on `channel`, for a path the generated one
    /// lacks, compressed as [`Caller::grpc`].
    pub(in crate::client) fn generic(&self, channel: Channel) -> tonic::client::Grpc<Channel> {
        let grpc = ACCEPTED.into_iter().fold(tonic::client::Grpc::new(channel), tonic::client::Grpc::accept_compressed);
        match self.settings.compression {
            Some(compression) => grpc.send_compressed(compression.encoding()),
            None => grpc,
        }
    }

    /// A call that `sub`'s server never took goes out again: counted, and
    /// shown by `-v`.
    pub(super) fn resent(&self, path: &str, sub: &Subchannel, error: &Error) {
        self.stats.resent();
        tracing::debug!(method = path, error = %error, "sending again (the server never took the call)");
        if self.channel.watched() {
            let (method, address, why) = (path.to_owned(), sub.address.to_string(), error.to_string());
            self.channel.emit(&Event::Resent { method, address, why });
        }
    }

    /// The retry buffer of a streaming call sending `requests`.
    pub(in crate::client) fn replay<S>(&self, requests: S) -> Replay<S>
    where
        S: Stream + Send + 'static,
        S::Item: prost::Message + Clone,
    {
        Replay::new(requests, self.settings.retry_buffer, Arc::clone(&self.retry_bytes))
    }
}

/// `message` as a request carrying what is left before `deadline` as its
/// `grpc-timeout`.
pub(in crate::client) fn with_timeout<M>(message: M, deadline: Instant) -> Request<M> {
    let mut request = Request::new(message);
    request.set_timeout(deadline.saturating_duration_since(Instant::now()));
    request
}

/// Sends the trace context of `attempt` with `request`: `traceparent`
/// naming the attempt's span, and `tracestate` when the trace has one.
pub(super) fn send_context<M>(request: &mut Request<M>, attempt: &AttemptSpan) {
    let Some((parent, state)) = attempt.headers() else { return };
    let metadata = request.metadata_mut();
    if let Ok(value) = parent.parse() {
        metadata.insert(TRACEPARENT, value);
    }
    if let Some(value) = state.and_then(|state| state.parse().ok()) {
        metadata.insert(TRACESTATE, value);
    }
}

impl Caller {
    /// Whether the client's throttle lets an attempt out now (always, when
    /// throttling is off). One it refuses is not sent: the call fails with
    /// [`Error::Throttled`] unless `others_running`, attempts of the call
    /// still running that may yet answer.
    pub(super) fn throttle_admits(&self, others_running: bool) -> Result<bool, Error> {
        let Some(throttle) = &self.throttle else { return Ok(true) };
        match throttle.admit(Instant::now(), fastrand::f64()) {
            Ok(()) => Ok(true),
            Err(_) if others_running => Ok(false),
            Err(refusing) => Err(Error::Throttled { refusing, ratio: throttle.settings().ratio }),
        }
    }

    /// Records, for the client's throttle, that `attempts` attempts ended,
    /// `taken` by a server or not.
    pub(super) fn throttle_ended(&self, taken: bool, attempts: usize) {
        if let Some(throttle) = &self.throttle {
            let now = Instant::now();
            for _ in 0..attempts {
                throttle.ended(now, taken);
            }
        }
    }
}
