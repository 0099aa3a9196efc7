//! What a client is told: [`ClientOptions`], every setting with its
//! default (grpc's where grpc has one), and how they divide between the
//! channel and the calls.

use std::time::Duration;

use super::backoff::Backoff;
use super::call::{CallSettings, Compression, Hedging, RetryBuffer, RetryThrottle, Throttling};
use super::channel::{ChannelSettings, Keepalive, LoadBalancing, OutlierDetection, WeightSettings};
use super::metadata::Metadata;
use super::token::BearerToken;
use super::xds::Bootstrap;
use crate::tls::ClientTls;

/// The deadline of a call unless told otherwise, as the Google API clients use.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one dial may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of a safe call, the first included (grpc's default retry policy).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// The service whose health the client watches: the one it calls.
pub const HEALTH_SERVICE: &str = "search.v1.SearchService";

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
    /// Client-side adaptive throttling: attempts refused locally while the
    /// servers refuse a large share of them; `None`: off.
    pub throttling: Option<Throttling>,
    /// What a streaming call keeps of its request messages to send them
    /// again when the server never took the call.
    pub retry_buffer: RetryBuffer,
    /// TLS for `https://` targets (the system roots unless a CA is given).
    pub tls: ClientTls,
    /// Compress request messages with this encoding (answers in gzip, zstd
    /// or deflate are read whatever it is).
    pub compression: Option<Compression>,
    /// How calls are spread over the target's addresses: by default
    /// (`auto`) round robin when there are several, pick_first for one.
    pub lb: LoadBalancing,
    /// Weighted round robin's settings, under `lb: WeightedRoundRobin`.
    pub weights: WeightSettings,
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
    /// The token sent with every attempt and health watch
    /// (`authorization: Bearer`); `None`: none.
    pub token: Option<BearerToken>,
    /// Headers sent with every attempt of every call (not health watches),
    /// and seen by xDS route matching; none by default. An
    /// `authorization` header here and a `token` are refused together.
    pub metadata: Metadata,
    /// The xDS bootstrap of `xds:///` targets; `None`: the environment's
    /// (`GRPC_XDS_BOOTSTRAP` or `GRPC_XDS_BOOTSTRAP_CONFIG`).
    pub xds_bootstrap: Option<Bootstrap>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            wait_for_ready: false,
            backoff: Backoff::DEFAULT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_budget: RetryThrottle::default(),
            throttling: None,
            retry_buffer: RetryBuffer::default(),
            tls: ClientTls::default(),
            compression: None,
            lb: LoadBalancing::Auto,
            weights: WeightSettings::default(),
            keepalive: Some(Keepalive::default()),
            health_check: Some(HEALTH_SERVICE.to_owned()),
            outlier_detection: Some(OutlierDetection::default()),
            hedging: Some(Hedging::default()),
            token: None,
            metadata: Metadata::new(),
            xds_bootstrap: None,
        }
    }
}

impl ClientOptions {
    /// What the channel takes of them.
    pub(super) fn channel(&self) -> ChannelSettings {
        ChannelSettings {
            connect_timeout: self.connect_timeout,
            backoff: self.backoff,
            tls: self.tls.clone(),
            lb: self.lb,
            keepalive: self.keepalive,
            health_check: self.health_check.clone(),
            outlier_detection: self.outlier_detection,
            weights: self.weights,
            token: self.token.clone(),
            xds_bootstrap: self.xds_bootstrap.clone(),
        }
    }

    /// What the calls take of them.
    pub(super) fn call(&self) -> CallSettings {
        CallSettings {
            timeout: self.timeout,
            wait_for_ready: self.wait_for_ready,
            backoff: self.backoff,
            max_attempts: self.max_attempts,
            retry_budget: self.retry_budget,
            throttling: self.throttling,
            retry_buffer: self.retry_buffer,
            compression: self.compression,
            hedging: self.hedging,
            token: self.token.clone(),
            metadata: self.metadata.clone(),
        }
    }
}
