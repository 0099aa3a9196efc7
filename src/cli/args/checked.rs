//! The checked command line ([`Invocation`]): what clap cannot check,
//! checked ([`Args::validate`]), the flags turned into the client's options.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::CommandFactory;
use clap::error::ErrorKind;

use super::commands::{BenchArgs, Command, SoakArgs};
use super::flags::Args;
use super::values::HedgeDelay;
use crate::cli::bench::LoadCall;
use crate::cli::input::{Data, Source};
use crate::cli::output::Format;
use crate::client::{
    self, Backoff, BearerToken, ClientOptions, Hedging, HedgingDelay, Keepalive, Metadata, OutlierDetection, Target,
    Throttling, WeightSettings,
};
use crate::tls::ClientTls;
use crate::traces::TraceConfig;

/// The environment variable that holds a bearer token (no flag does: a
/// command line is visible to every user of the machine).
const TOKEN_VARIABLE: &str = "SEARCH_TOKEN";

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
    /// The xDS client's resources.
    XdsStatus,
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
        if matches!(self.command, Some(Command::XdsStatus)) && self.target.xds_name().is_none() {
            return Err(usage(ErrorKind::ValueValidation, "xds-status needs an xds:///NAME target"));
        }
        let data = self.data.as_deref().map(Data::from_arg);
        let call = call(self.command.take(), self.query.take(), data)?;
        let format = if self.json { Format::Json } else { Format::Text };
        let mut options = self.options()?;
        options.token = self.token(std::env::var_os(TOKEN_VARIABLE))?;
        options.metadata = self.metadata(options.token.is_some())?;
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
            weights: self.weights()?,
            hedging: self.hedging(),
            throttling: self.throttling()?,
            ..ClientOptions::default()
        })
    }

    /// The bearer token of `--token-file`, or `from_env` (SEARCH_TOKEN's
    /// value; empty is none), read now: refused over plaintext to a target
    /// that is not loopback unless `--allow-token-over-plaintext`.
    fn token(&self, from_env: Option<OsString>) -> Result<Option<BearerToken>, clap::Error> {
        let token = match (&self.token_file, from_env.filter(|value| !value.is_empty())) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                let message =
                    format!("--token-file and {TOKEN_VARIABLE} cannot be used together: give the token one way");
                return Err(usage(ErrorKind::ArgumentConflict, message));
            }
            (Some(file), None) => BearerToken::from_file(file).map_err(|err| usage(ErrorKind::Io, err))?,
            (None, Some(value)) => {
                let value = value.to_str().unwrap_or("\u{fffd}");
                let invalid = |err| usage(ErrorKind::ValueValidation, format!("{TOKEN_VARIABLE}: {err}"));
                BearerToken::new(value).map_err(invalid)?
            }
        };
        let target = &self.target;
        if !target.is_tls() && !target.is_loopback() && !self.allow_token_over_plaintext {
            let message = format!(
                "the token is not sent over plaintext to {target}, which is not loopback: call an https:// target, \
                 or pass --allow-token-over-plaintext if the whole network path is trusted"
            );
            return Err(usage(ErrorKind::ArgumentConflict, message));
        }
        Ok(Some(token.allowing_plaintext(self.allow_token_over_plaintext)))
    }

    /// `-H`, checked; an `authorization` header only without a token.
    fn metadata(&self, token: bool) -> Result<Metadata, clap::Error> {
        let headers = self.headers.iter().map(String::as_str).filter(|header| !header.trim().is_empty());
        let metadata =
            Metadata::parse(headers).map_err(|err| usage(ErrorKind::ValueValidation, format!("-H: {err}")))?;
        if token && metadata.contains("authorization") {
            let message = format!(
                "-H authorization and a token (--token-file or {TOKEN_VARIABLE}) cannot be used together: give the \
                 credentials one way"
            );
            return Err(usage(ErrorKind::ArgumentConflict, message));
        }
        Ok(metadata)
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

    /// `--throttle-*`: `None` without `--throttle-ratio`.
    fn throttling(&self) -> Result<Option<Throttling>, clap::Error> {
        let Some(ratio) = self.throttle_ratio else { return Ok(None) };
        if !(ratio.is_finite() && ratio >= 1.0) {
            return Err(usage(ErrorKind::ValueValidation, "--throttle-ratio must be 1 or more"));
        }
        if self.throttle_window.is_zero() {
            return Err(usage(ErrorKind::ValueValidation, "--throttle-window must be more than 0"));
        }
        Ok(Some(Throttling { ratio, window: self.throttle_window.into() }))
    }

    /// `--wrr-*`: weighted round robin's settings.
    fn weights(&self) -> Result<WeightSettings, clap::Error> {
        let penalty = self.wrr_error_utilization_penalty;
        if !(penalty.is_finite() && penalty >= 0.0) {
            return Err(usage(ErrorKind::ValueValidation, "--wrr-error-utilization-penalty must be 0 or more"));
        }
        let oob = self.wrr_oob_reporting_period.0;
        if oob.is_some_and(|period| period.is_zero()) {
            return Err(usage(ErrorKind::ValueValidation, "--wrr-oob-reporting-period must be more than 0 (or off)"));
        }
        let defaults = WeightSettings::default();
        Ok(WeightSettings {
            blackout_period: self.wrr_blackout_period.into(),
            weight_expiration_period: self.wrr_weight_expiration_period.into(),
            weight_update_period: self.wrr_weight_update_period.into(),
            error_utilization_penalty: penalty,
            enable_oob_load_report: oob.is_some(),
            oob_reporting_period: oob.unwrap_or(defaults.oob_reporting_period),
        })
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
        Some(Command::XdsStatus) if data.is_some() => return Err(conflict("xds-status")),
        Some(Command::XdsStatus) => Call::XdsStatus,
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The token `args` give with SEARCH_TOKEN set to `env`, or the error.
    fn token(args: &[&str], env: Option<&str>) -> Result<Option<BearerToken>, String> {
        let args = Args::try_parse_from(["client"].iter().chain(args)).map_err(|err| err.to_string())?;
        args.token(env.map(OsString::from)).map_err(|err| err.to_string())
    }

    #[test]
    fn a_token_goes_over_tls_or_to_loopback_and_over_plaintext_only_when_allowed() {
        for target in ["https://example.com:443", "localhost:8100", "127.0.0.1:1", "[::1]:1", "unix:/tmp/s"] {
            let token = token(&["-t", target, "q"], Some("t0k3n")).expect(target).expect("a token");
            assert!(!token.plaintext_allowed(), "{target}");
        }
        let refused = token(&["-t", "example.com:80", "q"], Some("t0k3n")).expect_err("plaintext");
        assert!(
            refused.contains(
                "the token is not sent over plaintext to example.com:80, which is not loopback: call an https:// \
                 target, or pass --allow-token-over-plaintext"
            ),
            "{refused}"
        );
        assert!(!refused.contains("t0k3n"), "{refused}");
        let allowed = token(&["-t", "example.com:80", "--allow-token-over-plaintext", "q"], Some("t0k3n"));
        assert!(allowed.expect("allowed").expect("a token").plaintext_allowed());
        assert!(token(&["-t", "example.com:80", "q"], None).expect("no token").is_none(), "nothing to refuse");
        assert!(token(&["-t", "example.com:80", "q"], Some("")).expect("empty").is_none(), "empty is none");
    }

    #[test]
    fn a_token_comes_one_way_and_a_bad_one_is_named_not_quoted() {
        let dir = tempfile::tempdir().expect("a directory");
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").expect("write");
        let path = file.to_str().expect("UTF-8");
        let from_file = token(&["--token-file", path, "q"], None).expect("read").expect("a token");
        assert!(format!("{from_file:?}").contains(path));
        let both = token(&["--token-file", path, "q"], Some("t0k3n")).expect_err("both");
        assert!(both.contains("--token-file and SEARCH_TOKEN cannot be used together"), "{both}");
        let missing = token(&["--token-file", "/nonexistent/token", "q"], None).expect_err("missing");
        assert!(missing.contains("cannot read the token file /nonexistent/token"), "{missing}");
        let bad = token(&["q"], Some("two words")).expect_err("bad");
        assert!(bad.contains("SEARCH_TOKEN: the token has a character a bearer token cannot hold at byte 3"), "{bad}");
        assert!(!bad.contains("words"), "{bad}");
    }
}
