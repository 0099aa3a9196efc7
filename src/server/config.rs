//! The server's settings: flags with environment variables ([`ServerArgs`]),
//! checked into the [`ServerConfig`] the library serves with.
//!
//! Every default is a constant here, shown by `server --help`, so the flags,
//! [`ServerConfig::default`] and `docs/server.md` cannot drift apart.
//!
//! Durations are humantime's; sizes ([`ByteSize`]) are parsed here: the
//! `bytesize` crate (checked) also takes decimal units and fractions
//! (`1.5MB`) and writes `4.0 MiB`, where these flags take whole binary
//! units and `--help` shows a default as it is typed (`4MiB`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::added::AddedServices;
use crate::telemetry::LogFormat;
use crate::tls::{self, ServerTls};
use crate::traces::{TraceArgs, TraceConfig, TraceConfigError};

/// Deadline of a call that arrives without one (no `grpc-timeout` header).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest deadline a client may ask for; longer ones are cut to this.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The largest request message accepted, as grpc's default receive limit.
pub const MAX_RECV_BYTES: ByteSize = ByteSize(4 << 20);
/// Calls served at once, over all connections; more are refused at once.
pub const MAX_CONCURRENT_CALLS: u32 = 10_000;
/// HTTP/2 streams (calls) open at once on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
/// How often an idle connection is pinged (HTTP/2 keepalive).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// How long a keepalive ping may go unanswered before the connection is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection may live, so that clients rebalance over servers.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30 * 60);
/// Extra time an aged connection gets before it is closed.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(60);
/// How long a connection may go without a call before it is closed.
pub const MAX_CONNECTION_IDLE: Duration = Duration::from_secs(5 * 60);
/// Bytes of answers buffered per stream for a client that does not read
/// them (HTTP/2 flow control holds the rest back).
pub const MAX_SEND_BUFFER: ByteSize = ByteSize(64 << 10);
/// The shortest time between two PINGs (or SETTINGS) from a client that
/// is not answered by any data in between: half this project's client
/// keepalive time (10 s), so that its pings are never strikes, and short
/// enough for grpc clients that ping every 10 s, the least grpc-go allows.
/// grpc servers default to 5 minutes, which turns away every client that
/// looks for a dead peer faster than that.
pub const MIN_PING_INTERVAL: Duration = Duration::from_secs(5);
/// The largest request header block over HTTP/2 (hyper's default).
pub const MAX_HEADER_BYTES: ByteSize = ByteSize(16 << 10);
/// How long a new connection may take to finish its TLS handshake and say
/// its first word (the HTTP/2 preface and SETTINGS, or a request head).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// File descriptors kept for everything but connections: listeners, logs,
/// files, the runtime's own.
const SPARE_FDS: u64 = 64;

/// The default `--max-connections`: the process's open-file limit, less
/// what the rest of the server needs (each connection is one descriptor).
#[must_use]
pub fn default_max_connections() -> u32 {
    let limit = open_file_limit().unwrap_or(1024);
    u32::try_from(limit.saturating_sub(SPARE_FDS).max(1)).unwrap_or(u32::MAX)
}

/// The soft limit on open files (`ulimit -n`).
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one rlimit into the struct it is given.
        let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
        (got == 0).then_some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    None
}
/// How long calls in flight may run after a shutdown signal.
pub const GRACE: Duration = Duration::from_secs(10);

/// Serves the Search service (does a query contain "banana"?) over gRPC.
#[derive(Debug, Parser)]
#[command(name = "server", version)]
pub struct ServerArgs {
    /// The address to listen on, HOST:PORT. Every address HOST resolves to is
    /// bound (localhost: IPv4 and IPv6 loopback); port 0 picks a free port.
    #[arg(long, short = 'l', env = "SEARCH_LISTEN", default_value = crate::DEFAULT_ADDR)]
    pub listen: String,

    /// Deadline of a call that arrives without one (no grpc-timeout).
    #[arg(long, env = "SEARCH_DEFAULT_TIMEOUT", value_name = "DURATION", default_value_t = DEFAULT_TIMEOUT.into())]
    pub default_timeout: humantime::Duration,

    /// The longest deadline a client may ask for; a longer one is cut to this.
    #[arg(long, env = "SEARCH_MAX_TIMEOUT", value_name = "DURATION", default_value_t = MAX_TIMEOUT.into())]
    pub max_timeout: humantime::Duration,

    /// The largest request message accepted (bytes, or with KiB/MiB/GiB);
    /// a larger one fails with RESOURCE_EXHAUSTED.
    #[arg(long, env = "SEARCH_MAX_RECV_BYTES", value_name = "SIZE", default_value_t = MAX_RECV_BYTES)]
    pub max_recv_bytes: ByteSize,

    /// Calls served at once over all connections; more are refused at once
    /// with RESOURCE_EXHAUSTED (load shedding, no queue).
    #[arg(long, env = "SEARCH_MAX_CONCURRENT_CALLS", value_name = "N", default_value_t = MAX_CONCURRENT_CALLS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_calls: u32,

    /// HTTP/2 streams (calls) open at once on one connection.
    #[arg(long, env = "SEARCH_MAX_CONCURRENT_STREAMS", value_name = "N", default_value_t = MAX_CONCURRENT_STREAMS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,

    /// How often to ping a connection to check the client is still there.
    #[arg(long, env = "SEARCH_KEEPALIVE_INTERVAL", value_name = "DURATION", default_value_t = KEEPALIVE_INTERVAL.into())]
    pub keepalive_interval: humantime::Duration,

    /// How long a ping may go unanswered before the connection is closed.
    #[arg(long, env = "SEARCH_KEEPALIVE_TIMEOUT", value_name = "DURATION", default_value_t = KEEPALIVE_TIMEOUT.into())]
    pub keepalive_timeout: humantime::Duration,

    /// How long a connection may live before it is closed (clients reconnect,
    /// and so spread over servers).
    #[arg(long, env = "SEARCH_MAX_CONNECTION_AGE", value_name = "DURATION", default_value_t = MAX_CONNECTION_AGE.into())]
    pub max_connection_age: humantime::Duration,

    /// Extra time an aged connection gets for its calls before it is closed.
    #[arg(long, env = "SEARCH_MAX_CONNECTION_AGE_GRACE", value_name = "DURATION",
          default_value_t = MAX_CONNECTION_AGE_GRACE.into())]
    pub max_connection_age_grace: humantime::Duration,

    /// How long a connection may go with no call in flight before it gets a
    /// GOAWAY and is closed (clients reconnect on their next call).
    #[arg(long, env = "SEARCH_MAX_CONNECTION_IDLE", value_name = "DURATION", default_value_t = MAX_CONNECTION_IDLE.into())]
    pub max_connection_idle: humantime::Duration,

    /// Answer bytes the server buffers per stream for a client that does not
    /// read them; past it the call waits (per connection: this times
    /// --max-concurrent-streams).
    #[arg(long, env = "SEARCH_MAX_SEND_BUFFER", value_name = "SIZE", default_value_t = MAX_SEND_BUFFER)]
    pub max_send_buffer: ByteSize,

    /// The shortest time between two PINGs (or two SETTINGS) from a client
    /// with no answer sent in between; the third shorter gap gets a GOAWAY
    /// (ENHANCE_YOUR_CALM, too_many_pings), as grpc servers do.
    #[arg(long, env = "SEARCH_MIN_PING_INTERVAL", value_name = "DURATION", default_value_t = MIN_PING_INTERVAL.into())]
    pub min_ping_interval: humantime::Duration,

    /// After Ctrl-C or SIGTERM, how long calls in flight may still run before
    /// they are cut with UNAVAILABLE.
    #[arg(long, env = "SEARCH_GRACE", value_name = "DURATION", default_value_t = GRACE.into())]
    pub grace: humantime::Duration,

    /// How long a new connection may take to finish its TLS handshake and
    /// send the HTTP/2 preface and SETTINGS (or an HTTP/1.1 request head)
    /// before it is closed: a client that connects and says nothing holds
    /// nothing longer than this.
    #[arg(long, env = "SEARCH_HANDSHAKE_TIMEOUT", value_name = "DURATION", default_value_t = HANDSHAKE_TIMEOUT.into())]
    pub handshake_timeout: humantime::Duration,

    /// The largest header block of an HTTP/2 request (`SETTINGS_MAX_HEADER_LIST_SIZE`);
    /// a larger one is refused.
    #[arg(long, env = "SEARCH_MAX_HEADER_BYTES", value_name = "SIZE", default_value_t = MAX_HEADER_BYTES)]
    pub max_header_bytes: ByteSize,

    /// Connections open at once; past it a new connection is closed at once
    /// (counted, and logged once a second). Defaults to the open-file limit
    /// less 64.
    #[arg(long, env = "SEARCH_MAX_CONNECTIONS", value_name = "N", default_value_t = default_max_connections(),
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "SEARCH_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "SEARCH_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, env = "SEARCH_CLIENT_CA", value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,

    // The doc is the --help text, where a bare URL reads best.
    #[allow(rustdoc::bare_urls)]
    /// Let web pages from this origin call the server (CORS), e.g.
    /// https://app.example.com; repeat for several, or * for any. None by
    /// default: browsers then refuse cross-origin calls.
    #[arg(long = "cors-origin", env = "SEARCH_CORS_ORIGIN", value_name = "ORIGIN", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Do not serve the web page (at /, with its script, style and icon):
    /// the port then answers calls only.
    #[arg(long, env = "SEARCH_NO_PAGE")]
    pub no_page: bool,

    /// Serve Prometheus metrics at http://HOST:PORT/metrics (off by default).
    #[arg(long, env = "SEARCH_METRICS_LISTEN", value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,

    /// Log lines as text or as JSON objects (stderr; RUST_LOG filters).
    #[arg(long, env = "SEARCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// OpenTelemetry traces: a span per call, sent over OTLP.
    #[command(flatten)]
    pub traces: TraceArgs,
}

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
    /// Largest HTTP/2 request header block, in bytes.
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            default_timeout: DEFAULT_TIMEOUT,
            max_timeout: MAX_TIMEOUT,
            max_recv_bytes: MAX_RECV_BYTES.0,
            max_concurrent_calls: MAX_CONCURRENT_CALLS as usize,
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
        }
    }
}

/// Why the flags do not make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A duration flag that must be positive is zero.
    #[error("--{flag} must be more than 0")]
    Zero {
        /// The flag.
        flag: &'static str,
    },
    /// The default deadline is longer than the cap on deadlines.
    #[error("--default-timeout ({default}) is longer than --max-timeout ({max})")]
    DefaultOverMax {
        /// The default timeout.
        default: humantime::Duration,
        /// The cap.
        max: humantime::Duration,
    },
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::Error),
    /// A size flag past what the protocol can say.
    #[error("--{flag} is too large (at most 4GiB - 1)")]
    TooLarge {
        /// The flag.
        flag: &'static str,
    },
    /// A `--cors-origin` that is not an origin.
    #[error("--cors-origin {0:?} is not an origin such as https://app.example.com, or *")]
    CorsOrigin(String),
    /// A trace flag that cannot be used.
    #[error(transparent)]
    Traces(#[from] TraceConfigError),
}

impl ServerArgs {
    /// Checks the flags and loads the TLS files.
    ///
    /// # Errors
    /// A zero duration where one must be positive, a default deadline over
    /// the cap, or TLS files that cannot be read.
    pub fn into_config(self) -> Result<ServerConfig, ConfigError> {
        for (flag, value) in [
            ("default-timeout", self.default_timeout),
            ("max-timeout", self.max_timeout),
            ("keepalive-interval", self.keepalive_interval),
            ("keepalive-timeout", self.keepalive_timeout),
            ("max-connection-age", self.max_connection_age),
            ("max-connection-idle", self.max_connection_idle),
            ("handshake-timeout", self.handshake_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero { flag });
            }
        }
        if *self.default_timeout > *self.max_timeout {
            return Err(ConfigError::DefaultOverMax { default: self.default_timeout, max: self.max_timeout });
        }
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls::load(&cert, &key, self.client_ca.as_deref())?),
            _ => None,
        };
        Ok(ServerConfig {
            default_timeout: self.default_timeout.into(),
            max_timeout: self.max_timeout.into(),
            max_recv_bytes: self.max_recv_bytes.0,
            max_concurrent_calls: self.max_concurrent_calls as usize,
            max_concurrent_streams: self.max_concurrent_streams,
            keepalive_interval: self.keepalive_interval.into(),
            keepalive_timeout: self.keepalive_timeout.into(),
            max_connection_age: self.max_connection_age.into(),
            max_connection_age_grace: self.max_connection_age_grace.into(),
            max_connection_idle: self.max_connection_idle.into(),
            max_send_buffer: self.max_send_buffer.0,
            min_ping_interval: self.min_ping_interval.into(),
            grace: self.grace.into(),
            handshake_timeout: self.handshake_timeout.into(),
            max_connections: self.max_connections as usize,
            max_header_bytes: u32::try_from(self.max_header_bytes.0)
                .map_err(|_| ConfigError::TooLarge { flag: "max-header-bytes" })?,
            tls,
            cors: CorsOrigins::parse(&self.cors_origins)?,
            page: !self.no_page,
            metrics_listen: self.metrics_listen,
            services: AddedServices::default(),
            traces: self.traces.check("search-server")?,
        })
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

impl CorsOrigins {
    /// The origins of the `--cors-origin` flags.
    ///
    /// # Errors
    /// [`ConfigError::CorsOrigin`] for a value that is not `*` nor an origin.
    pub fn parse(origins: &[String]) -> Result<Self, ConfigError> {
        if origins.iter().any(|origin| origin == "*") {
            return Ok(Self::Any);
        }
        if origins.is_empty() {
            return Ok(Self::None);
        }
        let parse = |origin: &String| {
            let uri: http::Uri = origin.parse().map_err(|_| ConfigError::CorsOrigin(origin.clone()))?;
            // An origin is a scheme and a host, with no path or query.
            let bare = uri.scheme().is_some()
                && uri.host().is_some()
                && matches!(uri.path(), "" | "/")
                && uri.query().is_none();
            if !bare || origin.ends_with('/') {
                return Err(ConfigError::CorsOrigin(origin.clone()));
            }
            http::HeaderValue::from_str(origin).map_err(|_| ConfigError::CorsOrigin(origin.clone()))
        };
        origins.iter().map(parse).collect::<Result<_, _>>().map(Self::List)
    }
}

/// A size in bytes, written as a number with an optional binary unit:
/// `4194304`, `4MiB`, `512KiB`, `1GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let scale: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => return Err(format!("unknown unit {other:?} (use B, KiB, MiB or GiB)")),
        };
        let number: usize = number.parse().map_err(|_| format!("{text:?} is not a size such as 4MiB"))?;
        match number.checked_mul(scale) {
            Some(0) => Err("a size must be more than 0".to_owned()),
            Some(bytes) => Ok(Self(bytes)),
            None => Err(format!("{text} is too large")),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if bytes >= scale && bytes.is_multiple_of(scale) {
                return write!(f, "{}{unit}", bytes / scale);
            }
        }
        write!(f, "{bytes}")
    }
}

impl ValueEnum for LogFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Text, Self::Json]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Self::Text => "text",
            Self::Json => "json",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServerConfig, String> {
        let args = ServerArgs::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map_err(|err| err.kind().to_string())?;
        args.into_config().map_err(|err| err.to_string())
    }

    #[test]
    fn sizes_read_and_print_with_binary_units() {
        assert_eq!("4MiB".parse::<ByteSize>(), Ok(ByteSize(4 << 20)));
        assert_eq!("4194304".parse::<ByteSize>(), Ok(ByteSize(4 << 20)));
        assert_eq!("512 KiB".parse::<ByteSize>(), Ok(ByteSize(512 << 10)));
        assert_eq!(ByteSize(4 << 20).to_string(), "4MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        assert!("4MB".parse::<ByteSize>().unwrap_err().contains("unknown unit"));
        assert!("0".parse::<ByteSize>().is_err());
        assert!("99999999999GiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn the_flags_default_to_the_constants() {
        let config = parse(&[]).expect("defaults are valid");
        let defaults = ServerConfig::default();
        assert_eq!(config.default_timeout, defaults.default_timeout);
        assert_eq!(config.max_timeout, defaults.max_timeout);
        assert_eq!(config.max_recv_bytes, 4 << 20);
        assert_eq!(config.max_concurrent_calls, defaults.max_concurrent_calls);
        assert_eq!(config.grace, defaults.grace);
        assert_eq!(config.max_connection_age_grace, defaults.max_connection_age_grace);
    }

    #[test]
    fn bad_combinations_are_refused_with_the_flag() {
        assert_eq!(parse(&["--max-timeout", "0s"]).unwrap_err(), "--max-timeout must be more than 0");
        assert_eq!(
            parse(&["--default-timeout", "5m", "--max-timeout", "1m"]).unwrap_err(),
            "--default-timeout (5m) is longer than --max-timeout (1m)"
        );
        assert!(parse(&["--tls-cert", "cert.pem"]).is_err(), "a certificate needs its key");
        assert!(parse(&["--max-concurrent-calls", "0"]).is_err());
        assert_eq!(
            parse(&["--cors-origin", "https://app.example.com/page"]).unwrap_err(),
            "--cors-origin \"https://app.example.com/page\" is not an origin such as https://app.example.com, or *"
        );
        assert!(parse(&["--cors-origin", "app.example.com"]).is_err());
    }

    #[test]
    fn the_page_is_served_unless_turned_off() {
        assert!(parse(&[]).expect("valid").page);
        assert!(ServerConfig::default().page);
        assert!(!parse(&["--no-page"]).expect("valid").page);
    }

    #[test]
    fn cors_origins_read_as_a_list_or_any() {
        let origins = |args: &[&str]| parse(args).expect("valid").cors;
        assert_eq!(origins(&[]), CorsOrigins::None);
        assert_eq!(origins(&["--cors-origin", "*"]), CorsOrigins::Any);
        assert_eq!(
            origins(&["--cors-origin", "https://a.example", "--cors-origin", "http://localhost:3000"]),
            CorsOrigins::List(vec![
                http::HeaderValue::from_static("https://a.example"),
                http::HeaderValue::from_static("http://localhost:3000")
            ])
        );
    }
}
