//! The `client` commands ([`Command`]), one per RPC kind, and the flags of
//! `client bench` ([`BenchArgs`]) and `client soak` ([`SoakArgs`]).

use std::path::PathBuf;

use clap::Subcommand;
use clap::builder::BoolishValueParser;

use crate::cli::bench::LoadCall;

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
    /// Print what the xDS client of an xds:/// target holds, as JSON (each
    /// resource's type, name, status, version, error and content: grpc's
    /// CSDS), once the channel has reached a server or given up.
    XdsStatus,
}

/// `client soak`: how long, how many workers, how big the bursts.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(long, short = 'z', env = "SEARCH_SOAK_DURATION", value_name = "DURATION", default_value = "30s")]
    pub duration: humantime::Duration,

    /// Workers, each running the kinds of traffic in turn on its own
    /// connection.
    #[arg(long, short = 'c', env = "SEARCH_SOAK_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// Streams a burst holds open at once; set it past the server's
    /// --max-concurrent-calls to see calls shed. 0: no bursts.
    #[arg(long, env = "SEARCH_SOAK_BURST", default_value_t = 0)]
    pub burst: u32,

    /// The server's process id: its resident memory and open file
    /// descriptors are sampled each second (Linux /proc).
    #[arg(long, env = "SEARCH_SOAK_SERVER_PID", value_name = "PID")]
    pub server_pid: Option<u32>,
}

/// `client bench`: what to drive, how hard, for how long.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The RPC to drive: unary search, or classify (one batch per call on a
    /// stream each worker keeps open).
    #[arg(long, env = "SEARCH_BENCH_CALL", value_enum, default_value = "search")]
    pub call: LoadCall,

    /// Workers (closed model), or the most calls in flight (open model).
    #[arg(long, short = 'c', env = "SEARCH_BENCH_CONCURRENCY", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// Connections to spread the workers over.
    #[arg(long, env = "SEARCH_BENCH_CONNECTIONS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,

    /// The most calls to make.
    #[arg(long, short = 'n', env = "SEARCH_BENCH_TOTAL", default_value_t = 10_000)]
    pub total: u64,

    /// The longest the run may take.
    #[arg(long, short = 'z', env = "SEARCH_BENCH_DURATION", value_name = "DURATION", default_value = "1m")]
    pub duration: humantime::Duration,

    /// Send calls at this many per second whatever the answers (open model);
    /// latency then counts from each call's intended send time.
    #[arg(long, env = "SEARCH_BENCH_RATE", value_name = "CALLS_PER_SECOND")]
    pub rate: Option<f64>,

    /// A query to send; repeat for several, used in turn [default: Banana, Apple].
    #[arg(long = "query", short = 'q', env = "SEARCH_BENCH_QUERY", value_name = "QUERY")]
    pub queries: Vec<String>,

    /// Queries from a file, one per line.
    #[arg(long, env = "SEARCH_BENCH_QUERIES_FILE", value_name = "FILE", conflicts_with = "queries")]
    pub queries_file: Option<PathBuf>,

    /// Queries per Classify message.
    #[arg(long, env = "SEARCH_BENCH_BATCH", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,

    /// Call the article's /Search/search path instead of the v1 Search, to
    /// load-test the article's own Python server.
    #[arg(long, env = "SEARCH_BENCH_LEGACY", value_parser = BoolishValueParser::new())]
    pub legacy: bool,
}
