//! The client side: a library for calling a Search server, as grpc-go and
//! grpc.aio do it: targets, a channel with connectivity states and TLS, a
//! deadline on every call, retries of what the contract marks safe, and one
//! method per RPC; and what keeps a fleet's gray failures (a replica that
//! hangs, black-holes or slows down) from costing calls: keepalive, health
//! checking, outlier detection and hedging.
//!
//! Files:
//! - `mod.rs`: [`Client`] and [`ClientOptions`]: building, connecting,
//!   probing, the connectivity API.
//! - `calls.rs`: one method per RPC; unary calls with retries, streaming
//!   calls without.
//! - `responses.rs`: a streaming call's [`Responses`], ended by its deadline.
//! - `failure.rs`: what a failed attempt means (never sent, never answered,
//!   deadline) and the one-line error it becomes.
//! - `error.rs`: [`Error`], what a call can end with.
//! - `target.rs`: [`Target`], where to connect, as the user writes it.
//! - `connectivity.rs`: the five connectivity states, from the dialer's events.
//! - `secure.rs`: TLS over each dialed socket, its errors kept for the calls.
//! - `balancer.rs`: the channel over the target's addresses: subchannels,
//!   pick_first or round_robin, re-resolution, each subchannel's state from
//!   its connection, health and ejection, the [`Event`]s `-v` prints.
//! - `health.rs`: client-side health checking (gRFC A17).
//! - `outlier.rs`: outlier detection (gRFC A50).
//! - `hedging.rs`: the hedging policy and its delay (gRFC A6).
//! - `replay.rs`: a streaming call's retry buffer, for transparent retries.
//! - `stats.rs`: the client's own counts: calls, attempts, attempt
//!   durations, hedges, ejections, state changes.
//! - `retry.rs`: safe methods from the descriptor, [`Backoff`], the retry budget.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, timeout_at};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

mod balancer;
mod calls;
mod connectivity;
mod error;
mod failure;
mod health;
mod hedging;
mod outlier;
mod replay;
mod responses;
mod retry;
mod secure;
mod stats;
mod target;

pub use self::balancer::{Backend, Event, LoadBalancing, SubchannelWatcher};
use self::balancer::{Balancer, Subchannel};
use self::calls::with_timeout;
pub use self::connectivity::{Connectivity, ConnectivityState, Transition};
pub use self::error::{Error, describe_status};
use self::failure::Failure;
pub use self::hedging::{COLD_DELAY, Hedging, HedgingDelay, MIN_DELAY};
pub use self::outlier::{FailurePercentageEjection, OutlierDetection, OutlierError, SuccessRateEjection};
pub use self::replay::RetryBuffer;
pub use self::responses::Responses;
use self::retry::RetryBudget;
pub use self::retry::{Backoff, BackoffError, RetryThrottle};
pub use self::stats::{CallStats, Stats};
pub use self::target::{InvalidTarget, Target};
use crate::pb::v1::search_service_client::SearchServiceClient;
use crate::tls::ClientTls;

/// The deadline of a call unless told otherwise, as the Google API clients use.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one dial may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of a safe call, the first included (grpc's default retry policy).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// The service whose health the client watches: the one it calls.
pub const HEALTH_SERVICE: &str = "search.v1.SearchService";

/// Client keepalive, as grpc's channel arguments name it: after
/// `KEEPALIVE_TIME` without hearing from the server, the client pings it;
/// with no answer within `KEEPALIVE_TIMEOUT` the connection is closed and
/// its subchannel goes to TRANSIENT_FAILURE, so calls move to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before a ping (grpc `KEEPALIVE_TIME`).
    pub time: Duration,
    /// How long a ping may go unanswered (grpc `KEEPALIVE_TIMEOUT`).
    pub timeout: Duration,
    /// Ping a connection with no call on it too (grpc
    /// `KEEPALIVE_PERMIT_WITHOUT_CALLS`).
    pub without_calls: bool,
}

impl Default for Keepalive {
    /// A ping after 10 s of silence (the shortest grpc-go lets a client
    /// set), answered within 5 s: a dead or frozen server is found within
    /// 15 s. The server's `--min-ping-interval` defaults to 5 s, half the
    /// time, so that pings at these settings are never strikes.
    fn default() -> Self {
        Self { time: Duration::from_secs(10), timeout: Duration::from_secs(5), without_calls: false }
    }
}

/// How a client calls: deadline, connecting, retries, TLS.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Each call's overall deadline, retries included; sent as `grpc-timeout`.
    pub timeout: Duration,
    /// How long one dial may take.
    pub connect_timeout: Duration,
    /// Wait for the server to come up (within the deadline) instead of
    /// failing at once when it cannot be reached, for every call.
    pub wait_for_ready: bool,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// Attempts of a call the contract marks safe, the first included.
    pub max_attempts: u32,
    /// The retry budget shared by the client's calls.
    pub retry_budget: RetryThrottle,
    /// What a streaming call keeps of its request messages to send them
    /// again when the server never took the call.
    pub retry_buffer: RetryBuffer,
    /// TLS for `https://` targets (the system roots unless a CA is given).
    pub tls: ClientTls,
    /// Compress request messages with this encoding (answers in gzip, zstd
    /// or deflate are read whatever it is).
    pub compression: Option<Compression>,
    /// How calls are spread over the target's addresses.
    pub lb: LoadBalancing,
    /// Client keepalive; `None`: no pings.
    pub keepalive: Option<Keepalive>,
    /// Watch this service's health on every connection and send calls only
    /// to SERVING ones (gRFC A17); `None`: no health checking.
    pub health_check: Option<String>,
    /// Eject subchannels that fail more than the others (gRFC A50); `None`:
    /// off.
    pub outlier_detection: Option<OutlierDetection>,
    /// Hedge the calls the contract marks side-effect free (gRFC A6);
    /// `None`: retry them instead (see `max_attempts`).
    pub hedging: Option<Hedging>,
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

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            wait_for_ready: false,
            backoff: Backoff::DEFAULT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_budget: RetryThrottle::default(),
            retry_buffer: RetryBuffer::default(),
            tls: ClientTls::default(),
            compression: None,
            lb: LoadBalancing::PickFirst,
            keepalive: Some(Keepalive::default()),
            health_check: Some(HEALTH_SERVICE.to_owned()),
            outlier_detection: Some(OutlierDetection::default()),
            hedging: Some(Hedging::default()),
        }
    }
}

/// A Search client: one method per RPC of `search.v1.SearchService`.
///
/// The channel resolves the target and connects on the first call, over
/// one subchannel per address (see `balancer.rs`), and reconnects after a
/// lost connection. Cloning is cheap; clones share the connections, their
/// connectivity states, the retry budget and the counts.
#[derive(Debug, Clone)]
pub struct Client {
    balancer: Arc<Balancer>,
    target: Target,
    options: Arc<ClientOptions>,
    connectivity: Connectivity,
    budget: Arc<RetryBudget>,
    stats: Arc<Stats>,
    /// The hedging delay, learned from the answers.
    hedge_delay: Arc<hedging::Delay>,
    /// The bytes the streaming calls keep to send again, all together.
    retry_bytes: replay::ChannelBytes,
}

impl Client {
    /// A client for `target`. Nothing is dialed until the first call.
    ///
    /// # Errors
    /// [`Error::Connect`] when the TLS settings are refused (a bad CA or
    /// client certificate).
    pub fn new(target: &Target, options: ClientOptions) -> Result<Self, Error> {
        let connectivity = Connectivity::default();
        let budget = Arc::new(RetryBudget::new(options.retry_budget));
        let hedge_delay = Arc::new(hedging::Delay::new(options.hedging.map_or(HedgingDelay::Auto, |h| h.delay)));
        let options = Arc::new(options);
        let stats = Arc::<Stats>::default();
        let balancer = Balancer::new(target, Arc::clone(&options), connectivity.clone(), Arc::clone(&stats))?;
        let retry_bytes = replay::ChannelBytes::default();
        Ok(Self { balancer, target: target.clone(), options, connectivity, budget, stats, hedge_delay, retry_bytes })
    }

    /// A client with the default options, connected now, so that an
    /// unreachable server is reported before anything else happens.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached.
    pub async fn connect(target: &Target) -> Result<Self, Error> {
        Self::connect_with(target, ClientOptions::default()).await
    }

    /// [`Client::connect`] with `options`.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached.
    pub async fn connect_with(target: &Target, options: ClientOptions) -> Result<Self, Error> {
        let client = Self::new(target, options)?;
        client.reach().await?;
        Ok(client)
    }

    /// Connects now, so that an unreachable server is reported before
    /// anything else happens: waiting for it (within the deadline) with
    /// `wait_for_ready`, else failing at once.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached.
    pub async fn reach(&self) -> Result<(), Error> {
        let deadline = Instant::now() + self.options.timeout;
        if self.options.wait_for_ready { self.ready(deadline).await } else { self.probe(deadline).await }
    }

    /// The channel's connectivity state; with `try_to_connect`, an IDLE
    /// channel starts connecting (as grpc.aio's `get_state(True)`).
    #[must_use]
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        let state = self.connectivity.state();
        if try_to_connect && state == ConnectivityState::Idle {
            let client = self.clone();
            tokio::spawn(async move {
                let _ = client.probe(Instant::now() + client.options.connect_timeout).await;
            });
        }
        state
    }

    /// Waits until the state is no longer `last` and returns the new one
    /// (as grpc.aio's `wait_for_state_change`).
    pub async fn wait_for_state_change(&self, last: ConnectivityState) -> ConnectivityState {
        self.connectivity.wait_for_state_change(last).await
    }

    /// The connectivity handle, to watch the state from elsewhere.
    #[must_use]
    pub fn connectivity(&self) -> &Connectivity {
        &self.connectivity
    }

    /// Shuts the client down: SHUTDOWN, and every later call fails.
    pub fn shutdown(&self) {
        self.connectivity.shutdown();
    }

    /// Every subchannel: its address, its state, the attempts sent to it.
    #[must_use]
    pub fn backends(&self) -> Vec<Backend> {
        self.balancer.backends()
    }

    /// Calls `watcher` with every event of the channel from now on, as it
    /// happens, in order: subchannel transitions with their causes (a dial,
    /// keepalive, health, an ejection) and hedges (`client -v`).
    pub fn watch_subchannels(&self, watcher: SubchannelWatcher) {
        self.balancer.watch(watcher);
    }

    /// Connects every subchannel the policy uses (round_robin: all of them;
    /// pick_first: the first that works) and waits, within `within`, until
    /// none is still connecting: so that a load test starts its clock on a
    /// settled channel.
    pub async fn settle(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let _ = self.probe(deadline).await;
        while Instant::now() < deadline {
            let settling = self.backends().iter().any(|backend| match backend.state {
                ConnectivityState::Connecting => true,
                ConnectivityState::Idle => self.options.lb == LoadBalancing::RoundRobin,
                _ => false,
            });
            if !settling {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The hedging delay now (the automatic one moves with the latency).
    #[must_use]
    pub fn hedging_delay(&self) -> Option<Duration> {
        self.options.hedging.map(|_| self.hedge_delay.get())
    }

    /// The client's counts so far: calls, attempts, attempt durations,
    /// hedges, ejections, state changes.
    #[must_use]
    pub fn stats(&self) -> CallStats {
        self.stats.snapshot()
    }

    /// The generated client on `channel`, sending and reading compressed
    /// messages as the options say.
    fn grpc(&self, channel: Channel) -> SearchServiceClient<Channel> {
        compressed(SearchServiceClient::new(channel), self.options.compression)
    }

    /// Makes sure a connection is up: one side-effect-free health check
    /// (any answer, even UNIMPLEMENTED, proves the connection).
    async fn probe(&self, deadline: Instant) -> Result<(), Error> {
        let sub = self.balancer.pick().await?;
        let request = with_timeout(HealthCheckRequest { service: String::new() }, deadline);
        match timeout_at(deadline, HealthClient::new(sub.channel().1).check(request)).await {
            Err(_) => Err(self.deadline_exceeded(1, None)),
            Ok(Ok(_)) => {
                sub.connectivity.mark_answered();
                Ok(())
            }
            Ok(Err(status)) => match self.failure(&status, &sub) {
                Failure::NotSent(cause) | Failure::GoingAway(cause) | Failure::Unanswered(cause) => {
                    Err(Error::Connect { target: self.target.to_string(), cause })
                }
                Failure::Deadline => Err(self.deadline_exceeded(1, None)),
                Failure::Status => {
                    sub.connectivity.mark_answered();
                    Ok(())
                }
            },
        }
    }

    /// With `wait_for_ready`, waits (backing off) until the server can be
    /// reached, or fails with DEADLINE_EXCEEDED at the deadline.
    async fn ready(&self, deadline: Instant) -> Result<(), Error> {
        if !self.options.wait_for_ready || self.connectivity.state() == ConnectivityState::Ready {
            return Ok(());
        }
        let mut attempt = 0;
        let mut last = None;
        loop {
            attempt += 1;
            match self.probe(deadline).await {
                Err(Error::Connect { cause, .. }) => {
                    last = Some(format!("cannot connect: {cause}"));
                    let delay = self.options.backoff.delay(attempt);
                    if Instant::now() + delay >= deadline {
                        return Err(self.deadline_exceeded(attempt, last));
                    }
                    tokio::time::sleep(delay).await;
                }
                // The deadline passed during a dial: say why we were waiting.
                Err(Error::DeadlineExceeded { .. }) if last.is_some() => {
                    return Err(self.deadline_exceeded(attempt, last));
                }
                other => return other,
            }
        }
    }
}

/// `client` sending with `compression` and reading every encoding it knows.
fn compressed(client: SearchServiceClient<Channel>, compression: Option<Compression>) -> SearchServiceClient<Channel> {
    let client = ACCEPTED.into_iter().fold(client, SearchServiceClient::accept_compressed);
    match compression {
        Some(compression) => client.send_compressed(compression.encoding()),
        None => client,
    }
}
