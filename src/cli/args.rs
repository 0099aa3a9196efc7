//! The `client` flags ([`Args`], parsed by clap) and their checked form
//! ([`Invocation`]): the two stages of a command line, as ripgrep has them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

use super::input::{Data, Source};
use super::load::LoadCall;
use super::output::Format;
use crate::client::{
    self, Backoff, ClientOptions, Compression, Hedging, HedgingDelay, Keepalive, LoadBalancing, OutlierDetection,
    Target,
};
use crate::tls::ClientTls;
use crate::traces::{TraceArgs, TraceConfig};

/// Calls the Search service: `client Banana` prints `status=1`.
#[derive(Debug, Parser)]
#[command(
    name = "client",
    version,
    subcommand_negates_reqs = true,
    override_usage = "client [OPTIONS] QUERY\n       client [OPTIONS] <COMMAND> [ARGS]"
)]
// The field docs are the --help text: `[IPv6]` and `[ADDR]` are the target
// syntax, not links.
#[allow(rustdoc::broken_intra_doc_links)]
pub struct Args {
    /// The server: HOST:PORT, [IPv6]:PORT, http://HOST:PORT, https://HOST:PORT
    /// for TLS, dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT..., ipv6:[ADDR]:PORT,...
    /// or unix:/PATH. Every address is a subchannel (see --lb).
    #[arg(long, short = 't', env = "SEARCH_TARGET", default_value = crate::DEFAULT_ADDR, global = true)]
    pub target: Target,

    /// The call's deadline, retries included; sent to the server as
    /// grpc-timeout.
    #[arg(long, env = "SEARCH_TIMEOUT", value_name = "DURATION", global = true,
          default_value_t = client::DEFAULT_TIMEOUT.into())]
    pub timeout: humantime::Duration,

    /// How long one attempt to connect may take.
    #[arg(long, env = "SEARCH_CONNECT_TIMEOUT", value_name = "DURATION", global = true,
          default_value_t = client::DEFAULT_CONNECT_TIMEOUT.into())]
    pub connect_timeout: humantime::Duration,

    /// Wait for the server to come up (within --timeout) instead of failing
    /// at once when it cannot be reached.
    #[arg(long, global = true)]
    pub wait_for_ready: bool,

    /// Attempts of a call the contract marks side-effect free (Search), the
    /// first included; 1 turns retries off.
    #[arg(long, env = "SEARCH_RETRY_MAX_ATTEMPTS", value_name = "N", global = true,
          default_value_t = client::DEFAULT_MAX_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    pub retry_max_attempts: u32,

    /// The longest wait before the first retry (full jitter: a random wait
    /// up to this).
    #[arg(long, value_name = "DURATION", global = true, default_value_t = Backoff::DEFAULT.initial().into())]
    pub retry_initial_backoff: humantime::Duration,

    /// The cap on the wait between retries.
    #[arg(long, value_name = "DURATION", global = true, default_value_t = Backoff::DEFAULT.max().into())]
    pub retry_max_backoff: humantime::Duration,

    /// How much the wait grows after each retry.
    #[arg(long, value_name = "FACTOR", global = true, default_value_t = Backoff::DEFAULT.multiplier())]
    pub retry_multiplier: f64,

    /// For https:// targets: the CA that signs the server's certificate (PEM);
    /// the system roots when not given.
    #[arg(long, env = "SEARCH_CA", value_name = "FILE", global = true)]
    pub ca: Option<PathBuf>,

    /// For mutual TLS: this client's certificate (PEM); needs --key.
    #[arg(long, env = "SEARCH_CERT", value_name = "FILE", global = true, requires = "key")]
    pub cert: Option<PathBuf>,

    /// The private key of --cert (PEM).
    #[arg(long, env = "SEARCH_KEY", value_name = "FILE", global = true, requires = "cert")]
    pub key: Option<PathBuf>,

    /// Compress the requests: gzip or zstd (off by default). Answers are read
    /// in whatever encoding the server picks.
    #[arg(long, env = "SEARCH_COMPRESS", value_enum, value_name = "ENCODING", global = true)]
    pub compress: Option<Compression>,

    /// How calls are spread over the target's addresses: pick_first (the
    /// first that works, as grpc) or round_robin (every ready one in turn).
    #[arg(long, env = "SEARCH_LB", value_enum, default_value = "pick_first", global = true)]
    pub lb: LoadBalancing,

    /// Ping the server after this long without hearing from it; no answer
    /// within --keepalive-timeout closes the connection and moves calls to
    /// the other subchannels. `off`: no pings. [grpc: KEEPALIVE_TIME]
    #[arg(long, value_name = "DURATION|off", global = true, default_value_t = Toggle(Some(Keepalive::default().time)))]
    pub keepalive_time: Toggle,

    /// How long a keepalive ping may go unanswered. [grpc: KEEPALIVE_TIMEOUT]
    #[arg(long, value_name = "DURATION", global = true, default_value_t = Keepalive::default().timeout.into())]
    pub keepalive_timeout: humantime::Duration,

    /// Ping connections with no call on them too.
    /// [grpc: KEEPALIVE_PERMIT_WITHOUT_CALLS]
    #[arg(long, global = true)]
    pub keepalive_without_calls: bool,

    /// The service whose health each connection watches (grpc.health.v1
    /// Watch); calls go only to connections where it is SERVING. "" asks
    /// for the whole server. [grpc: healthCheckConfig.serviceName]
    #[arg(long, value_name = "SERVICE", global = true, default_value = client::HEALTH_SERVICE)]
    pub health_check_service: String,

    /// Do not watch the servers' health. [grpc: GRPC_ARG_INHIBIT_HEALTH_CHECKING]
    #[arg(long, global = true)]
    pub no_health_check: bool,

    /// Time between two outlier detection sweeps, each of which ejects the
    /// subchannels failing far more than the rest. [grpc: outlier_detection
    /// interval]
    #[arg(long, value_name = "DURATION", global = true,
          default_value_t = OutlierDetection::default().interval.into())]
    pub outlier_interval: humantime::Duration,

    /// An ejection lasts this, times the ejections in a row (at most 300s).
    /// [grpc: outlier_detection base_ejection_time]
    #[arg(long, value_name = "DURATION", global = true,
          default_value_t = OutlierDetection::default().base_ejection_time.into())]
    pub outlier_base_ejection_time: humantime::Duration,

    /// The most subchannels ejected at once, in percent (one may always be,
    /// never all). [grpc: outlier_detection max_ejection_percent]
    #[arg(long, value_name = "PERCENT", global = true,
          default_value_t = OutlierDetection::default().max_ejection_percent,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub outlier_max_ejection_percent: u32,

    /// Eject a subchannel whose attempts failed more than this percent in a
    /// sweep's interval (with at least 20 attempts). [grpc:
    /// failure_percentage_ejection threshold]
    #[arg(long, value_name = "PERCENT", global = true,
          default_value_t = 85, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub outlier_failure_percentage: u32,

    /// Do not eject subchannels. [grpc: no outlier_detection policy]
    #[arg(long, global = true)]
    pub no_outlier_detection: bool,

    /// When a Search with no answer yet is sent again to another server:
    /// `auto` (the 99th percentile of recent answers, at least 1ms; 50ms
    /// until a second of answers is known), a duration, or `off` (then
    /// --retry-* apply). [grpc: hedgingPolicy.hedgingDelay]
    #[arg(long, value_name = "auto|DURATION|off", global = true, default_value_t = HedgeDelay::Auto)]
    pub hedging_delay: HedgeDelay,

    /// Attempts of a hedged call at most, the first included.
    /// [grpc: hedgingPolicy.maxAttempts]
    #[arg(long, value_name = "N", global = true, default_value_t = Hedging::default().max_attempts,
          value_parser = clap::value_parser!(u32).range(1..=5))]
    pub hedging_max_attempts: u32,

    /// Show the channel's connectivity changes, each subchannel's (with the
    /// reason: a dial, keepalive, health, an ejection), hedges and retries
    /// on stderr.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,

    /// Print each response message as one JSON line (proto3 JSON mapping)
    /// instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The request as JSON instead of a query or file: the JSON itself,
    /// @FILE, or @- for standard input. Streaming calls take several
    /// messages, one after another.
    #[arg(long, short = 'd', value_name = "JSON|@FILE|@-", global = true)]
    pub data: Option<String>,

    /// OpenTelemetry traces: a span per call and per attempt, sent over OTLP.
    #[command(flatten)]
    pub traces: TraceArgs,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// The query for the unary Search call (the default command).
    pub query: Option<String>,
}

/// The calls, one per RPC kind.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Does QUERY contain "banana"? Prints status=1 or status=0 (unary;
    /// the default command, so `client QUERY` is the same).
    Search {
        /// The text to test.
        query: Option<String>,
    },
    /// Classify every line of FILE (or standard input), printing one
    /// status=N line per input line, in order, as answers arrive
    /// (bidirectional streaming).
    Classify {
        /// One query per line; - or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Count the lines of FILE (or standard input) and how many contain
    /// "banana"; prints queries=N matches=M (client streaming).
    Count {
        /// One query per line; - or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Print every occurrence of "banana" in FILE (or standard input) as
    /// line=L column=C offset=O, as the server finds them (server streaming).
    Scan {
        /// The text to scan, in UTF-8.
        file: Option<PathBuf>,
    },
    /// Load-test the server, like ghz: calls at a fixed concurrency (closed
    /// model) or rate (open model, --rate), then throughput, latency
    /// percentiles, a histogram and the count of each status code.
    Bench(BenchArgs),
    /// Soak the server with mixed traffic for a given time: all four RPC
    /// kinds, clients that disconnect mid-call, deadlines that expire
    /// mid-stream, bursts past the server's limit; every call must end with
    /// a code its kind of traffic allows (else exit 1). With --server-pid,
    /// samples the server's memory and descriptors each second.
    Soak(SoakArgs),
}

/// `client soak`: how long, how many workers, how big the bursts.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(long, short = 'z', value_name = "DURATION", default_value = "30s")]
    pub duration: humantime::Duration,

    /// Workers, each running the kinds of traffic in turn on its own
    /// connection.
    #[arg(long, short = 'c', default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// Streams a burst holds open at once; set it past the server's
    /// --max-concurrent-calls to see calls shed. 0: no bursts.
    #[arg(long, default_value_t = 0)]
    pub burst: u32,

    /// The server's process id: its resident memory and open file
    /// descriptors are sampled each second (Linux /proc).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
}

/// `client bench`: what to drive, how hard, for how long.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The RPC to drive: unary search, or classify (one batch per call on a
    /// stream each worker keeps open).
    #[arg(long, value_enum, default_value = "search")]
    pub call: LoadCall,

    /// Workers (closed model), or the most calls in flight (open model).
    #[arg(long, short = 'c', default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// Connections to spread the workers over.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,

    /// The most calls to make.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    pub total: u64,

    /// The longest the run may take.
    #[arg(long, short = 'z', value_name = "DURATION", default_value = "1m")]
    pub duration: humantime::Duration,

    /// Send calls at this many per second whatever the answers (open model);
    /// latency then counts from each call's intended send time.
    #[arg(long, value_name = "CALLS_PER_SECOND")]
    pub rate: Option<f64>,

    /// A query to send; repeat for several, used in turn [default: Banana, Apple].
    #[arg(long = "query", short = 'q', value_name = "QUERY")]
    pub queries: Vec<String>,

    /// Queries from a file, one per line.
    #[arg(long, value_name = "FILE", conflicts_with = "queries")]
    pub queries_file: Option<PathBuf>,

    /// Queries per Classify message.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,

    /// Call the article's /Search/search path instead of the v1 Search, to
    /// load-test the article's own Python server.
    #[arg(long)]
    pub legacy: bool,
}

/// A checked command line: what to call, with what, where and how.
#[derive(Debug)]
pub struct Invocation {
    /// The server.
    pub target: Target,
    /// Deadline, retries, TLS.
    pub options: ClientOptions,
    /// Show connectivity changes and retries on stderr.
    pub verbose: bool,
    /// How to print responses.
    pub format: Format,
    /// The call and its input.
    pub call: Call,
    /// Where spans go, when tracing is on.
    pub traces: Option<TraceConfig>,
}

/// One call with where its input comes from.
#[derive(Debug)]
pub enum Call {
    /// Unary Search.
    Search(Query),
    /// Bidirectional Classify.
    Classify(Input),
    /// Client-streaming Count.
    Count(Input),
    /// Server-streaming Scan.
    Scan(Input),
    /// A load test.
    Bench(BenchArgs),
    /// A soak.
    Soak(SoakArgs),
}

/// The input of the unary call.
#[derive(Debug)]
pub enum Query {
    /// The positional QUERY.
    Text(String),
    /// `-d`.
    Json(Data),
}

/// The input of a streaming call.
#[derive(Debug)]
pub enum Input {
    /// FILE or standard input.
    Plain(Source),
    /// `-d`.
    Json(Data),
}

impl Args {
    /// Checks what clap cannot: that a call has exactly one input.
    ///
    /// # Errors
    /// A usage error, printed by clap with exit code 2.
    pub fn validate(self) -> Result<Invocation, clap::Error> {
        let data = self.data.as_deref().map(Data::from_arg);
        let conflict = |what: &str| {
            Args::command().error(ErrorKind::ArgumentConflict, format!("{what} and --data cannot be used together"))
        };
        let streaming = |file: Option<PathBuf>| match (file, data.clone()) {
            (Some(_), Some(_)) => Err(conflict("FILE")),
            (None, Some(data)) => Ok(Input::Json(data)),
            (file, None) => Ok(Input::Plain(Source::from_arg(file))),
        };
        if self.command.is_some() && self.query.is_some() {
            let message = "a QUERY goes after `search`, not before a command (`client search QUERY`)";
            return Err(Args::command().error(ErrorKind::ArgumentConflict, message));
        }
        let call = match self.command {
            None => Call::Search(query(self.query, data.clone())?),
            Some(Command::Search { query: q }) => Call::Search(query(q, data.clone())?),
            Some(Command::Classify { file }) => Call::Classify(streaming(file)?),
            Some(Command::Count { file }) => Call::Count(streaming(file)?),
            Some(Command::Scan { file }) => Call::Scan(streaming(file)?),
            Some(Command::Bench(bench)) => {
                if data.is_some() {
                    return Err(conflict("bench"));
                }
                match bench.rate {
                    Some(rate) if !(rate > 0.0 && rate.is_finite()) => {
                        return Err(Args::command().error(ErrorKind::ValueValidation, "--rate must be more than 0"));
                    }
                    Some(_) if bench.call == LoadCall::Classify => {
                        let message = "--rate (the open model) drives unary search calls only";
                        return Err(Args::command().error(ErrorKind::ArgumentConflict, message));
                    }
                    _ => {}
                }
                Call::Bench(bench)
            }
            Some(Command::Soak(soak)) => {
                if data.is_some() {
                    return Err(conflict("soak"));
                }
                if soak.duration.is_zero() {
                    return Err(Args::command().error(ErrorKind::ValueValidation, "--duration must be more than 0"));
                }
                Call::Soak(soak)
            }
        };
        let format = if self.json { Format::Json } else { Format::Text };
        let usage = |kind, message: String| Args::command().error(kind, message);
        if self.timeout.is_zero() {
            return Err(usage(ErrorKind::ValueValidation, "--timeout must be more than 0".into()));
        }
        if self.connect_timeout.is_zero() {
            return Err(usage(ErrorKind::ValueValidation, "--connect-timeout must be more than 0".into()));
        }
        let backoff =
            Backoff::new(self.retry_initial_backoff.into(), self.retry_max_backoff.into(), self.retry_multiplier)
                .map_err(|err| usage(ErrorKind::ValueValidation, format!("bad retry backoff: {err}")))?;
        let tls = ClientTls::load(self.ca.as_deref(), self.cert.as_deref(), self.key.as_deref())
            .map_err(|err| usage(ErrorKind::Io, err.to_string()))?;
        if self.keepalive_timeout.is_zero() {
            return Err(usage(ErrorKind::ValueValidation, "--keepalive-timeout must be more than 0".into()));
        }
        let keepalive = match self.keepalive_time.0 {
            Some(time) if time.is_zero() => {
                return Err(usage(ErrorKind::ValueValidation, "--keepalive-time must be more than 0 (or off)".into()));
            }
            time => time.map(|time| Keepalive {
                time,
                timeout: self.keepalive_timeout.into(),
                without_calls: self.keepalive_without_calls,
            }),
        };
        let outlier_detection = if self.no_outlier_detection {
            None
        } else {
            let defaults = OutlierDetection::default();
            let config = OutlierDetection {
                interval: self.outlier_interval.into(),
                base_ejection_time: self.outlier_base_ejection_time.into(),
                max_ejection_percent: self.outlier_max_ejection_percent,
                failure_percentage: defaults.failure_percentage.map(|rule| client::FailurePercentageEjection {
                    threshold: self.outlier_failure_percentage,
                    ..rule
                }),
                ..defaults
            };
            config.check().map_err(|err| usage(ErrorKind::ValueValidation, format!("bad outlier detection: {err}")))?;
            Some(config)
        };
        let hedging = match self.hedging_delay {
            HedgeDelay::Off => None,
            HedgeDelay::Auto => Some(HedgingDelay::Auto),
            HedgeDelay::Fixed(delay) => Some(HedgingDelay::Fixed(delay)),
        }
        .map(|delay| Hedging { max_attempts: self.hedging_max_attempts, delay });
        let options = ClientOptions {
            timeout: self.timeout.into(),
            connect_timeout: self.connect_timeout.into(),
            wait_for_ready: self.wait_for_ready,
            backoff,
            max_attempts: self.retry_max_attempts,
            tls,
            compression: self.compress,
            lb: self.lb,
            keepalive,
            health_check: (!self.no_health_check).then_some(self.health_check_service),
            outlier_detection,
            hedging,
            ..ClientOptions::default()
        };
        let traces =
            self.traces.check("search-client").map_err(|err| usage(ErrorKind::ValueValidation, err.to_string()))?;
        Ok(Invocation { target: self.target, options, verbose: self.verbose, format, call, traces })
    }
}

fn query(text: Option<String>, data: Option<Data>) -> Result<Query, clap::Error> {
    match (text, data) {
        (Some(text), None) => Ok(Query::Text(text)),
        (None, Some(data)) => Ok(Query::Json(data)),
        (Some(_), Some(_)) => {
            Err(Args::command().error(ErrorKind::ArgumentConflict, "QUERY and --data cannot be used together"))
        }
        (None, None) => Err(Args::command().error(
            ErrorKind::MissingRequiredArgument,
            "a QUERY to search is required (or --data, or a command: classify, count, scan)",
        )),
    }
}

/// A duration, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toggle(pub Option<Duration>);

impl FromStr for Toggle {
    type Err = humantime::DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "off" => Ok(Self(None)),
            text => humantime::parse_duration(text).map(|duration| Self(Some(duration))),
        }
    }
}

impl fmt::Display for Toggle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(duration) => write!(f, "{}", humantime::format_duration(duration)),
            None => f.write_str("off"),
        }
    }
}

/// `--hedging-delay`: `auto`, a duration, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeDelay {
    /// From recent latency.
    Auto,
    /// This long.
    Fixed(Duration),
    /// No hedging.
    Off,
}

impl FromStr for HedgeDelay {
    type Err = humantime::DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            text => humantime::parse_duration(text).map(Self::Fixed),
        }
    }
}

impl fmt::Display for HedgeDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Off => f.write_str("off"),
            Self::Fixed(delay) => write!(f, "{}", humantime::format_duration(*delay)),
        }
    }
}
