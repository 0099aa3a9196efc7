//! The raw `client` flags ([`Args`]) as clap parses them, each with its
//! environment variable; their checks are in `checked.rs`.

use std::path::PathBuf;

use clap::Parser;
use clap::builder::BoolishValueParser;

use super::commands::Command;
use super::values::{HedgeDelay, Toggle};
use crate::client::{
    self, Backoff, Compression, Hedging, Keepalive, LoadBalancing, OutlierDetection, Target, Throttling, WeightSettings,
};
use crate::traces::TraceArgs;

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
    #[arg(long, env = "SEARCH_WAIT_FOR_READY", global = true, value_parser = BoolishValueParser::new())]
    pub wait_for_ready: bool,

    /// Attempts of a unary call the contract marks safe to retry
    /// (NO_SIDE_EFFECTS or IDEMPOTENT: Search), the first included; 1 turns
    /// retries off.
    #[arg(long, env = "SEARCH_RETRY_MAX_ATTEMPTS", value_name = "N", global = true,
          default_value_t = client::DEFAULT_MAX_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    pub retry_max_attempts: u32,

    /// The longest wait before the first retry (full jitter: a random wait
    /// up to this).
    #[arg(long, env = "SEARCH_RETRY_INITIAL_BACKOFF", value_name = "DURATION", global = true, default_value_t = Backoff::DEFAULT.initial().into())]
    pub retry_initial_backoff: humantime::Duration,

    /// The cap on the wait between retries.
    #[arg(long, env = "SEARCH_RETRY_MAX_BACKOFF", value_name = "DURATION", global = true, default_value_t = Backoff::DEFAULT.max().into())]
    pub retry_max_backoff: humantime::Duration,

    /// How much the wait grows after each retry.
    #[arg(long, env = "SEARCH_RETRY_MULTIPLIER", value_name = "FACTOR", global = true, default_value_t = Backoff::DEFAULT.multiplier())]
    pub retry_multiplier: f64,

    /// Throttle the client itself when the servers refuse its calls: at
    /// most FACTOR attempts sent per attempt a server took (not answered
    /// UNAVAILABLE or RESOURCE_EXHAUSTED, nor left unanswered at the
    /// deadline) over --throttle-window; the rest fail at once, unsent, as
    /// UNAVAILABLE. 2 is the SRE book's; at least 1. Off unless given.
    #[arg(long, env = "SEARCH_THROTTLE_RATIO", value_name = "FACTOR", global = true)]
    pub throttle_ratio: Option<f64>,

    /// How far back --throttle-ratio counts.
    #[arg(long, env = "SEARCH_THROTTLE_WINDOW", value_name = "DURATION", global = true,
          default_value_t = Throttling::default().window.into())]
    pub throttle_window: humantime::Duration,

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

    /// A file holding the bearer token sent with every call and health watch
    /// (authorization: Bearer), read again whenever it changes (a rotated
    /// service-account token). Or the token itself in SEARCH_TOKEN (not a
    /// flag: a command line is visible to every user of the machine). Sent
    /// only over https:// or to a loopback target unless
    /// --allow-token-over-plaintext.
    #[arg(long, env = "SEARCH_TOKEN_FILE", value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,

    /// A header sent with every call, `name: value` (repeatable): a `-bin`
    /// name takes its value in base64. Not grpc-*, content-type, te,
    /// user-agent, host nor a pseudo-header; authorization only without a
    /// token. In SEARCH_HEADER, one header a line.
    #[arg(
        long = "header",
        short = 'H',
        env = "SEARCH_HEADER",
        value_name = "NAME: VALUE",
        global = true,
        value_delimiter = '\n'
    )]
    pub headers: Vec<String>,

    /// Send the token over plaintext to a target that is not loopback (an
    /// http:// target on another machine): only where the whole network
    /// path is trusted, such as a sidecar's or a private link's.
    #[arg(long, env = "SEARCH_ALLOW_TOKEN_OVER_PLAINTEXT", global = true, value_parser = BoolishValueParser::new())]
    pub allow_token_over_plaintext: bool,

    /// Compress the requests: gzip or zstd (off by default). Answers are read
    /// in whatever encoding the server picks.
    #[arg(long, env = "SEARCH_COMPRESS", value_enum, value_name = "ENCODING", global = true)]
    pub compress: Option<Compression>,

    /// How calls are spread over the target's addresses. auto: round_robin
    /// when the target has several, so that health checking, outlier
    /// detection and hedging keep a hung, lost or slow replica from costing
    /// calls; pick_first for one. pick_first: the first address that works,
    /// in order (grpc's default policy). round_robin: every READY one in turn.
    /// weighted_round_robin: READY ones in proportion to their servers' load
    /// reports (ORCA; servers run with --orca), round robin until two are
    /// known (see --wrr-*).
    #[arg(long, env = "SEARCH_LB", value_enum, default_value = "auto", global = true)]
    pub lb: LoadBalancing,

    /// weighted_round_robin: how long a server reports before its weight is
    /// used, from its first report and each time it is READY again.
    /// [grpc: blackout_period]
    #[arg(long, env = "SEARCH_WRR_BLACKOUT_PERIOD", value_name = "DURATION", global = true,
          default_value_t = WeightSettings::default().blackout_period.into())]
    pub wrr_blackout_period: humantime::Duration,

    /// weighted_round_robin: a weight with no report for this long is dropped
    /// (the server takes the mean weight's share). [grpc: weight_expiration_period]
    #[arg(long, env = "SEARCH_WRR_WEIGHT_EXPIRATION_PERIOD", value_name = "DURATION", global = true,
          default_value_t = WeightSettings::default().weight_expiration_period.into())]
    pub wrr_weight_expiration_period: humantime::Duration,

    /// weighted_round_robin: how often the weights are read again (at least
    /// 100ms). [grpc: weight_update_period]
    #[arg(long, env = "SEARCH_WRR_WEIGHT_UPDATE_PERIOD", value_name = "DURATION", global = true,
          default_value_t = WeightSettings::default().weight_update_period.into())]
    pub wrr_weight_update_period: humantime::Duration,

    /// weighted_round_robin: how much errors weigh: a server's utilization
    /// counts its errors per query times this. [grpc: error_utilization_penalty]
    #[arg(long, env = "SEARCH_WRR_ERROR_UTILIZATION_PENALTY", value_name = "FACTOR", global = true,
          default_value_t = WeightSettings::default().error_utilization_penalty)]
    pub wrr_error_utilization_penalty: f64,

    /// weighted_round_robin: take the load reports from each server's
    /// out-of-band stream, asked for every DURATION, instead of each call's
    /// trailer; off: from the trailers. [grpc: enable_oob_load_report,
    /// oob_reporting_period]
    #[arg(long, env = "SEARCH_WRR_OOB_REPORTING_PERIOD", value_name = "DURATION|off", global = true, default_value_t = Toggle(None))]
    pub wrr_oob_reporting_period: Toggle,

    /// Ping the server after this long without hearing from it; no answer
    /// within --keepalive-timeout closes the connection and moves calls to
    /// the other subchannels. `off`: no pings. [grpc: KEEPALIVE_TIME]
    #[arg(long, env = "SEARCH_KEEPALIVE_TIME", value_name = "DURATION|off", global = true, default_value_t = Toggle(Some(Keepalive::default().time)))]
    pub keepalive_time: Toggle,

    /// How long a keepalive ping may go unanswered. [grpc: KEEPALIVE_TIMEOUT]
    #[arg(long, env = "SEARCH_KEEPALIVE_TIMEOUT", value_name = "DURATION", global = true, default_value_t = Keepalive::default().timeout.into())]
    pub keepalive_timeout: humantime::Duration,

    /// Ping connections with no call on them too.
    /// [grpc: KEEPALIVE_PERMIT_WITHOUT_CALLS]
    #[arg(long, env = "SEARCH_KEEPALIVE_WITHOUT_CALLS", global = true, value_parser = BoolishValueParser::new())]
    pub keepalive_without_calls: bool,

    /// The service whose health each connection watches (grpc.health.v1
    /// Watch); calls go only to connections where it is SERVING. "" asks
    /// for the whole server. [grpc: healthCheckConfig.serviceName]
    #[arg(long, env = "SEARCH_HEALTH_CHECK_SERVICE", value_name = "SERVICE", global = true, default_value = client::HEALTH_SERVICE)]
    pub health_check_service: String,

    /// Do not watch the servers' health. [grpc: GRPC_ARG_INHIBIT_HEALTH_CHECKING]
    #[arg(long, env = "SEARCH_NO_HEALTH_CHECK", global = true, value_parser = BoolishValueParser::new())]
    pub no_health_check: bool,

    /// Time between two outlier detection sweeps, each of which ejects the
    /// subchannels failing far more than the rest. [grpc: outlier_detection
    /// interval]
    #[arg(long, env = "SEARCH_OUTLIER_INTERVAL", value_name = "DURATION", global = true,
          default_value_t = OutlierDetection::default().interval.into())]
    pub outlier_interval: humantime::Duration,

    /// An ejection lasts this, times the ejections in a row (at most 300s).
    /// [grpc: outlier_detection base_ejection_time]
    #[arg(long, env = "SEARCH_OUTLIER_BASE_EJECTION_TIME", value_name = "DURATION", global = true,
          default_value_t = OutlierDetection::default().base_ejection_time.into())]
    pub outlier_base_ejection_time: humantime::Duration,

    /// The most subchannels ejected at once, in percent (one may always be,
    /// never all). [grpc: outlier_detection max_ejection_percent]
    #[arg(long, env = "SEARCH_OUTLIER_MAX_EJECTION_PERCENT", value_name = "PERCENT", global = true,
          default_value_t = OutlierDetection::default().max_ejection_percent,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub outlier_max_ejection_percent: u32,

    /// Eject a subchannel whose attempts failed more than this percent in a
    /// sweep's interval (with at least 20 attempts). [grpc:
    /// failure_percentage_ejection threshold]
    #[arg(long, env = "SEARCH_OUTLIER_FAILURE_PERCENTAGE", value_name = "PERCENT", global = true,
          default_value_t = 85, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub outlier_failure_percentage: u32,

    /// Do not eject subchannels. [grpc: no outlier_detection policy]
    #[arg(long, env = "SEARCH_NO_OUTLIER_DETECTION", global = true, value_parser = BoolishValueParser::new())]
    pub no_outlier_detection: bool,

    /// When a Search with no answer yet is sent again to another server:
    /// `auto` (the 99th percentile of recent answers, at least 1ms; 50ms
    /// until a second of answers is known), a duration, or `off` (then
    /// --retry-* apply). [grpc: hedgingPolicy.hedgingDelay]
    #[arg(long, env = "SEARCH_HEDGING_DELAY", value_name = "auto|DURATION|off", global = true, default_value_t = HedgeDelay::Auto)]
    pub hedging_delay: HedgeDelay,

    /// Attempts of a hedged call at most, the first included.
    /// [grpc: hedgingPolicy.maxAttempts]
    #[arg(long, env = "SEARCH_HEDGING_MAX_ATTEMPTS", value_name = "N", global = true, default_value_t = Hedging::default().max_attempts,
          value_parser = clap::value_parser!(u32).range(1..=5))]
    pub hedging_max_attempts: u32,

    /// Show the channel's connectivity changes, each subchannel's (with the
    /// reason: a dial, keepalive, health, an ejection), hedges and retries
    /// on stderr.
    #[arg(long, short = 'v', env = "SEARCH_VERBOSE", global = true, value_parser = BoolishValueParser::new())]
    pub verbose: bool,

    /// Print each response message as one JSON line (proto3 JSON mapping)
    /// instead of text.
    #[arg(long, env = "SEARCH_JSON", global = true, value_parser = BoolishValueParser::new())]
    pub json: bool,

    /// The request as JSON instead of a query or file: the JSON itself,
    /// @FILE, or @- for standard input. Streaming calls take several
    /// messages, one after another.
    #[arg(long, short = 'd', value_name = "JSON|@FILE|@-", global = true)]
    pub data: Option<String>,

    /// OpenTelemetry traces: a span per call and per attempt, sent over OTLP.
    #[command(flatten)]
    pub traces: TraceArgs,

    /// The command; none is the unary Search of QUERY.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The query for the unary Search call (the default command).
    pub query: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::{ArgAction, CommandFactory};

    use super::*;

    /// The flags with no environment variable, as the README says: `-d`
    /// (the call's input, as QUERY and FILE are), `--help`, `--version`.
    const NO_ENVIRONMENT: [&str; 3] = ["data", "help", "version"];

    /// Every flag of `command` and of its subcommands, as `command sub --flag`.
    fn flags(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments().filter(|arg| !arg.is_positional()) {
            let flag = arg.get_long().unwrap_or(arg.get_id().as_str());
            out.push((format!("{path} --{flag}"), arg.clone()));
        }
        for sub in command.get_subcommands() {
            flags(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    fn every_flag() -> Vec<(String, clap::Arg)> {
        let mut command = Args::command();
        command.build();
        let mut out = Vec::new();
        flags(&command, "client", &mut out);
        out
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        let flags = every_flag();
        assert!(flags.len() > 40, "the walk found the flags: {}", flags.len());
        let missing: Vec<&str> = flags
            .iter()
            .filter(|(_, arg)| arg.get_env().is_none() && !NO_ENVIRONMENT.contains(&arg.get_id().as_str()))
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(missing, Vec::<&str>::new(), "flags without an environment variable");
        for (name, arg) in &flags {
            if let Some(env) = arg.get_env().and_then(|env| env.to_str()) {
                let prefix = if arg.get_help_heading() == Some("Traces") { "OTEL_" } else { "SEARCH_" };
                assert!(env.starts_with(prefix), "{name}: {env}");
            }
        }
    }

    #[test]
    fn boolean_flags_take_one_and_zero_from_the_environment() {
        let switches: Vec<(String, clap::Arg)> =
            every_flag().into_iter().filter(|(_, arg)| matches!(arg.get_action(), ArgAction::SetTrue)).collect();
        assert!(switches.iter().any(|(name, _)| name == "client --json"), "the walk found the switches");
        for (name, arg) in switches {
            let values: Vec<_> = arg.get_value_parser().possible_values().into_iter().flatten().collect();
            for value in ["1", "0", "true", "false"] {
                assert!(values.iter().any(|possible| possible.matches(value, false)), "{name} refuses {value}");
            }
        }
    }

    #[test]
    fn the_documents_name_every_environment_variable() {
        let docs = ["docs/client.md", "docs/tracing.md"]
            .map(|doc| std::fs::read_to_string(format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"))).expect(doc))
            .concat();
        for (name, arg) in every_flag() {
            if let Some(env) = arg.get_env().and_then(|env| env.to_str()) {
                assert!(
                    docs.contains(&format!("`{env}`")),
                    "{name}: {env} is in neither docs/client.md nor tracing.md"
                );
            }
        }
    }
}
