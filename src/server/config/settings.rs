//! The checked settings the library serves with ([`ServerConfig`]), what
//! the flags become or a program builds, and the origins a browser may call
//! from ([`CorsOrigins`]).

use std::time::Duration;

use super::admission::AdmissionSettings;
use super::defaults::*;
use super::security::SecurityConfig;
use crate::server::added::AddedServices;
use crate::server::orca::Orca;
use crate::tls::ServerTls;
use crate::traces::TraceConfig;

/// The checked settings the server runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Deadline of a call without one.
    pub default_timeout: Duration,
    /// Cap on the deadline a client asks for.
    pub max_timeout: Duration,
    /// Largest request message, in bytes.
    pub max_recv_bytes: usize,
    /// Calls at once over all connections.
    pub max_concurrent_calls: usize,
    /// The adaptive limit of calls in flight, when on.
    pub admission: Option<AdmissionSettings>,
    /// A fault for tests of clients' retries: of every `fail_calls + 1`
    /// calls, the first `fail_calls` are refused with UNAVAILABLE (0: off).
    pub fail_calls: u32,
    /// A load for benchmarks of balancing: the CPU time every Search call
    /// burns before its answer (zero: off).
    pub work_per_call: Duration,
    /// Streams at once per connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 keepalive ping interval.
    pub keepalive_interval: Duration,
    /// HTTP/2 keepalive ping timeout.
    pub keepalive_timeout: Duration,
    /// Maximum connection age.
    pub max_connection_age: Duration,
    /// Grace after the maximum connection age (and after any GOAWAY).
    pub max_connection_age_grace: Duration,
    /// How long a connection may go without a call.
    pub max_connection_idle: Duration,
    /// Answer bytes buffered per stream for a client that does not read.
    pub max_send_buffer: usize,
    /// The shortest gap between unanswered PINGs (or SETTINGS).
    pub min_ping_interval: Duration,
    /// Drain time after a shutdown signal.
    pub grace: Duration,
    /// The longest a TLS handshake and the first word may take.
    pub handshake_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Largest request header block, in bytes (over HTTP/1.1, the request
    /// head, at least 8 KiB).
    pub max_header_bytes: u32,
    /// TLS, when serving it.
    pub tls: Option<ServerTls>,
    /// Origins whose web pages may call the server (CORS).
    pub cors: CorsOrigins,
    /// Whether to serve the web page at `/` (`web/dist/`, in the binary).
    pub page: bool,
    /// Where to serve `/metrics`, if anywhere.
    pub metrics_listen: Option<String>,
    /// Services served beside Search, health and reflection (none from
    /// the flags: a program adds them, as the interop server does).
    pub services: AddedServices,
    /// Where and how spans are exported, when tracing is on (the binary
    /// installs it: `traces::install`).
    pub traces: Option<TraceConfig>,
    /// Who may call what (off unless a policy or a key set is given).
    pub security: SecurityConfig,
    /// Load reports (ORCA), per call and out of band, when on.
    pub orca: Option<Orca>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            default_timeout: DEFAULT_TIMEOUT,
            max_timeout: MAX_TIMEOUT,
            max_recv_bytes: MAX_RECV_BYTES.0,
            max_concurrent_calls: MAX_CONCURRENT_CALLS as usize,
            admission: None,
            fail_calls: 0,
            work_per_call: Duration::ZERO,
            max_concurrent_streams: MAX_CONCURRENT_STREAMS,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            max_connection_age: MAX_CONNECTION_AGE,
            max_connection_age_grace: MAX_CONNECTION_AGE_GRACE,
            max_connection_idle: MAX_CONNECTION_IDLE,
            max_send_buffer: MAX_SEND_BUFFER.0,
            min_ping_interval: MIN_PING_INTERVAL,
            grace: GRACE,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_connections: default_max_connections() as usize,
            max_header_bytes: MAX_HEADER_BYTES.0 as u32,
            tls: None,
            cors: CorsOrigins::None,
            page: true,
            metrics_listen: None,
            services: AddedServices::default(),
            traces: None,
            security: SecurityConfig::default(),
            orca: None,
        }
    }
}

/// The origins allowed to call the server from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// None: no CORS headers, so browsers refuse cross-origin calls.
    None,
    /// Any origin (`*`).
    Any,
    /// These origins (`scheme://host[:port]`).
    List(Vec<http::HeaderValue>),
}
