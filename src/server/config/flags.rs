//! The server's flags ([`ServerArgs`]), each with its environment variable
//! (`SEARCH_...`, or OpenTelemetry's own for the trace flags), checked into
//! the [`ServerConfig`] the library serves with ([`ServerArgs::into_config`]),
//! and why they may not make one ([`ConfigError`]).
//!
//! Durations are humantime's; sizes are [`ByteSize`]s; a switch's variable
//! takes what people write for yes and no (`1`, `true`, `yes`, `on`, and
//! `0`, `false`, `no`, `off`), as clap's `BoolishValueParser` reads them.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Parser, ValueEnum};

use super::admission::AdmissionArgs;
use super::byte_size::ByteSize;
use super::defaults::*;
pub use super::error::ConfigError;
use super::orca::OrcaArgs;
use super::security::SecurityArgs;
use super::settings::{CorsOrigins, ServerConfig};
use crate::logging::LogFormat;
use crate::server::added::AddedServices;
use crate::tls::ServerTls;
use crate::traces::TraceArgs;

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

    /// A fault for testing clients' retries: of every N+1 calls of the Search
    /// service, the first N are refused with UNAVAILABLE before they start
    /// (0: off).
    #[arg(long, env = "SEARCH_FAIL_CALLS", value_name = "N", default_value_t = 0)]
    pub fail_calls: u32,

    /// A load for benchmarks of balancing and overload: every call of the
    /// Search service burns this much CPU time on the runtime's blocking
    /// pool before its answer, as a heavier handler would (0s: off).
    #[arg(long, env = "SEARCH_WORK_PER_CALL", value_name = "DURATION", default_value = "0s")]
    pub work_per_call: humantime::Duration,

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

    /// The largest request header block: over HTTP/2 its
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`, over HTTP/1.1 the request head as sent
    /// (at least 8 KiB there); a larger one is refused with 431.
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
    #[arg(long, env = "SEARCH_NO_PAGE", value_parser = BoolishValueParser::new())]
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

    /// Who may call what.
    #[command(flatten)]
    pub security: SecurityArgs,

    /// Load reports.
    #[command(flatten)]
    pub orca: OrcaArgs,

    /// Admission control.
    #[command(flatten)]
    pub admission: AdmissionArgs,
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
            ("orca-min-interval", self.orca.orca_min_interval),
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
            admission: self.admission.settings()?,
            fail_calls: self.fail_calls,
            work_per_call: self.work_per_call.into(),
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
            security: self.security.config(),
            orca: self.orca.reporter(),
        })
    }
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
    use clap::{ArgAction, CommandFactory};

    use super::*;

    fn parse(args: &[&str]) -> Result<ServerConfig, String> {
        let args = ServerArgs::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map_err(|err| err.kind().to_string())?;
        args.into_config().map_err(|err| err.to_string())
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

    /// Every flag, the trace flags flattened in included, can be set from
    /// the environment, as the README says: a flag added without its
    /// variable fails here.
    #[test]
    fn every_flag_has_an_environment_variable() {
        let command = ServerArgs::command();
        let flags: Vec<_> = command
            .get_arguments()
            .filter(|arg| !matches!(arg.get_action(), ArgAction::Help | ArgAction::Version))
            .collect();
        assert!(flags.len() > 25, "the flags are walked: {}", flags.len());
        let missing: Vec<_> = flags.iter().filter(|arg| arg.get_env().is_none()).map(|arg| arg.get_id()).collect();
        assert!(missing.is_empty(), "flags without an environment variable: {missing:?}");
    }

    /// A switch's variable takes 1 and 0 as well as true and false
    /// (`SEARCH_NO_PAGE=1`): clap reads a switch's variable with the
    /// switch's value parser, which a command line never shows, so each
    /// switch is made to take a value here and given those words.
    #[test]
    fn a_switch_variable_takes_1_and_0_as_well_as_true_and_false() {
        let switches: Vec<String> = ServerArgs::command()
            .get_arguments()
            .filter(|arg| matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse))
            .map(|arg| arg.get_id().to_string())
            .collect();
        assert!(switches.contains(&"no_page".to_owned()), "{switches:?}");
        for id in &switches {
            let command = ServerArgs::command().mut_arg(id, |arg| arg.action(ArgAction::Set));
            let long = command.get_arguments().find(|arg| arg.get_id() == id).and_then(|arg| arg.get_long());
            let flag = format!("--{}", long.expect("a long flag"));
            for (word, value) in
                [("1", true), ("0", false), ("true", true), ("false", false), ("yes", true), ("off", false)]
            {
                let matches = command.clone().try_get_matches_from(["server", &flag, word]);
                let parsed = matches.map(|matches| matches.get_one::<bool>(id).copied());
                assert_eq!(parsed.ok().flatten(), Some(value), "{id}={word}");
            }
        }
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
