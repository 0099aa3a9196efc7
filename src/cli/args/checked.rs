//! The checked command line ([`Invocation`]): what clap cannot check,
//! checked ([`Args::validate`]), the flags turned into the client's options.

use std::path::PathBuf;

use clap::CommandFactory;
use clap::error::ErrorKind;

use super::commands::{BenchArgs, Command, SoakArgs};
use super::flags::Args;
use super::values::HedgeDelay;
use crate::cli::bench::LoadCall;
use crate::cli::input::{Data, Source};
use crate::cli::output::Format;
use crate::client::{self, Backoff, ClientOptions, Hedging, HedgingDelay, Keepalive, OutlierDetection, Target};
use crate::tls::ClientTls;
use crate::traces::TraceConfig;

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
    /// Checks what clap cannot: that a call has exactly one input, and that
    /// the values make sense together.
    ///
    /// # Errors
    /// A usage error, printed by clap with exit code 2.
    pub fn validate(mut self) -> Result<Invocation, clap::Error> {
        if self.command.is_some() && self.query.is_some() {
            let message = "a QUERY goes after `search`, not before a command (`client search QUERY`)";
            return Err(usage(ErrorKind::ArgumentConflict, message));
        }
        let data = self.data.as_deref().map(Data::from_arg);
        let call = call(self.command.take(), self.query.take(), data)?;
        let format = if self.json { Format::Json } else { Format::Text };
        let options = self.options()?;
        let traces =
            self.traces.check("search-client").map_err(|err| usage(ErrorKind::ValueValidation, err.to_string()))?;
        Ok(Invocation { target: self.target, options, verbose: self.verbose, format, call, traces })
    }

    /// The client's options from the flags.
    fn options(&self) -> Result<ClientOptions, clap::Error> {
        if self.timeout.is_zero() {
            return Err(usage(ErrorKind::ValueValidation, "--timeout must be more than 0"));
        }
        if self.connect_timeout.is_zero() {
            return Err(usage(ErrorKind::ValueValidation, "--connect-timeout must be more than 0"));
        }
        let backoff =
            Backoff::new(self.retry_initial_backoff.into(), self.retry_max_backoff.into(), self.retry_multiplier)
                .map_err(|err| usage(ErrorKind::ValueValidation, format!("bad retry backoff: {err}")))?;
        let tls = ClientTls::load(self.ca.as_deref(), self.cert.as_deref(), self.key.as_deref())
            .map_err(|err| usage(ErrorKind::Io, err.to_string()))?;
        Ok(ClientOptions {
            timeout: self.timeout.into(),
            connect_timeout: self.connect_timeout.into(),
            wait_for_ready: self.wait_for_ready,
            backoff,
            max_attempts: self.retry_max_attempts,
            tls,
            compression: self.compress,
            lb: self.lb,
            keepalive: self.keepalive()?,
            health_check: (!self.no_health_check).then(|| self.health_check_service.clone()),
            outlier_detection: self.outlier_detection()?,
            hedging: self.hedging(),
            ..ClientOptions::default()
        })
    }

    /// `--keepalive-*`: `None` for `--keepalive-time off`.
    fn keepalive(&self) -> Result<Option<Keepalive>, clap::Error> {
        if self.keepalive_timeout.is_zero() {
            return Err(usage(ErrorKind::ValueValidation, "--keepalive-timeout must be more than 0"));
        }
        match self.keepalive_time.0 {
            Some(time) if time.is_zero() => {
                Err(usage(ErrorKind::ValueValidation, "--keepalive-time must be more than 0 (or off)"))
            }
            time => Ok(time.map(|time| Keepalive {
                time,
                timeout: self.keepalive_timeout.into(),
                without_calls: self.keepalive_without_calls,
            })),
        }
    }

    /// `--outlier-*`: `None` for `--no-outlier-detection`.
    fn outlier_detection(&self) -> Result<Option<OutlierDetection>, clap::Error> {
        if self.no_outlier_detection {
            return Ok(None);
        }
        let defaults = OutlierDetection::default();
        let config = OutlierDetection {
            interval: self.outlier_interval.into(),
            base_ejection_time: self.outlier_base_ejection_time.into(),
            max_ejection_percent: self.outlier_max_ejection_percent,
            failure_percentage: defaults
                .failure_percentage
                .map(|rule| client::FailurePercentageEjection { threshold: self.outlier_failure_percentage, ..rule }),
            ..defaults
        };
        config.check().map_err(|err| usage(ErrorKind::ValueValidation, format!("bad outlier detection: {err}")))?;
        Ok(Some(config))
    }

    /// `--hedging-*`: `None` for `--hedging-delay off`.
    fn hedging(&self) -> Option<Hedging> {
        let delay = match self.hedging_delay {
            HedgeDelay::Off => return None,
            HedgeDelay::Auto => HedgingDelay::Auto,
            HedgeDelay::Fixed(delay) => HedgingDelay::Fixed(delay),
        };
        Some(Hedging { max_attempts: self.hedging_max_attempts, delay })
    }
}

/// A usage error, as clap prints its own.
fn usage(kind: ErrorKind, message: impl std::fmt::Display) -> clap::Error {
    Args::command().error(kind, message)
}

/// The call a command (or none: Search) names, with its one input.
fn call(command: Option<Command>, text: Option<String>, data: Option<Data>) -> Result<Call, clap::Error> {
    let conflict =
        |what: &str| usage(ErrorKind::ArgumentConflict, format!("{what} and --data cannot be used together"));
    let streaming = |file: Option<PathBuf>| match (file, data.clone()) {
        (Some(_), Some(_)) => Err(conflict("FILE")),
        (None, Some(data)) => Ok(Input::Json(data)),
        (file, None) => Ok(Input::Plain(Source::from_arg(file))),
    };
    Ok(match command {
        None => Call::Search(query(text, data.clone())?),
        Some(Command::Search { query: q }) => Call::Search(query(q, data.clone())?),
        Some(Command::Classify { file }) => Call::Classify(streaming(file)?),
        Some(Command::Count { file }) => Call::Count(streaming(file)?),
        Some(Command::Scan { file }) => Call::Scan(streaming(file)?),
        Some(Command::Bench(_)) if data.is_some() => return Err(conflict("bench")),
        Some(Command::Soak(_)) if data.is_some() => return Err(conflict("soak")),
        Some(Command::Bench(bench)) => Call::Bench(bench_checked(bench)?),
        Some(Command::Soak(soak)) => {
            if soak.duration.is_zero() {
                return Err(usage(ErrorKind::ValueValidation, "--duration must be more than 0"));
            }
            Call::Soak(soak)
        }
    })
}

/// `client bench`'s flags, checked together.
fn bench_checked(bench: BenchArgs) -> Result<BenchArgs, clap::Error> {
    match bench.rate {
        Some(rate) if !(rate > 0.0 && rate.is_finite()) => {
            Err(usage(ErrorKind::ValueValidation, "--rate must be more than 0"))
        }
        Some(_) if bench.call == LoadCall::Classify => {
            Err(usage(ErrorKind::ArgumentConflict, "--rate (the open model) drives unary search calls only"))
        }
        _ => Ok(bench),
    }
}

/// The one input of a Search: QUERY or `-d`.
fn query(text: Option<String>, data: Option<Data>) -> Result<Query, clap::Error> {
    match (text, data) {
        (Some(text), None) => Ok(Query::Text(text)),
        (None, Some(data)) => Ok(Query::Json(data)),
        (Some(_), Some(_)) => Err(usage(ErrorKind::ArgumentConflict, "QUERY and --data cannot be used together")),
        (None, None) => Err(usage(
            ErrorKind::MissingRequiredArgument,
            "a QUERY to search is required (or --data, or a command: classify, count, scan)",
        )),
    }
}
