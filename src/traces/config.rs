//! The trace flags both binaries share, each with its OpenTelemetry
//! environment variable, and their checked form ([`TraceConfig`]).

use clap::Args;
use opentelemetry_sdk::trace::Sampler;

/// How spans go to the collector (OTLP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (`grpc`), usually port 4317.
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`), usually 4318.
    HttpProtobuf,
}

/// The trace flags, flattened into the server's and the client's.
#[derive(Debug, Clone, Default, Args)]
pub struct TraceArgs {
    /// Send traces to this OTLP collector (e.g. http://localhost:4317);
    /// tracing is off unless this or --otlp-traces-endpoint is set. Over
    /// http/protobuf, `/v1/traces` is added to it.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL", help_heading = "Traces", global = true)]
    pub otlp_endpoint: Option<String>,

    /// The collector's URL for traces, used as it is; wins over --otlp-endpoint.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        value_name = "URL",
        help_heading = "Traces",
        global = true
    )]
    pub otlp_traces_endpoint: Option<String>,

    /// How spans are sent: grpc or http/protobuf.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_name = "PROTOCOL",
        default_value = "grpc",
        help_heading = "Traces",
        global = true
    )]
    pub otlp_protocol: String,

    /// The service name on every span [default: search-server or search-client].
    #[arg(long, env = "OTEL_SERVICE_NAME", value_name = "NAME", help_heading = "Traces", global = true)]
    pub service_name: Option<String>,

    /// Which traces are recorded: always_on, always_off, traceidratio,
    /// parentbased_always_on, parentbased_always_off, parentbased_traceidratio.
    #[arg(
        long,
        env = "OTEL_TRACES_SAMPLER",
        value_name = "SAMPLER",
        default_value = "parentbased_always_on",
        help_heading = "Traces",
        global = true
    )]
    pub traces_sampler: String,

    /// The ratio of the traceidratio samplers, 0 to 1 [default: 1].
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", value_name = "RATIO", help_heading = "Traces", global = true)]
    pub traces_sampler_arg: Option<String>,
}

/// Checked trace flags: where spans go, how, and which are recorded.
#[derive(Debug, Clone)]
pub struct TraceConfig {
    /// The collector's URL, path included for HTTP.
    pub endpoint: String,
    /// How spans are sent.
    pub protocol: Protocol,
    /// The service name on every span.
    pub service_name: String,
    /// Which traces are recorded.
    pub sampler: Sampler,
}

/// A trace flag that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraceConfigError {
    /// An unknown sampler.
    #[error(
        "--traces-sampler (OTEL_TRACES_SAMPLER) {0:?} is not one of always_on, always_off, traceidratio, \
         parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
    )]
    Sampler(String),
    /// A ratio that is not a number from 0 to 1.
    #[error("--traces-sampler-arg (OTEL_TRACES_SAMPLER_ARG) {0:?} is not a ratio from 0 to 1")]
    Ratio(String),
    /// An unknown protocol.
    #[error("--otlp-protocol (OTEL_EXPORTER_OTLP_PROTOCOL) {0:?} is not one of grpc, http/protobuf")]
    Protocol(String),
    /// An endpoint that is not an http or https URL.
    #[error("--otlp-endpoint {0:?} is not a URL such as http://localhost:4317")]
    Endpoint(String),
}

impl TraceArgs {
    /// The checked flags, `None` when no endpoint is set (tracing off);
    /// `default_service` names the program when `OTEL_SERVICE_NAME` does not.
    ///
    /// # Errors
    /// A flag that does not parse, even with tracing off, so that a typo
    /// shows before it matters.
    pub fn check(&self, default_service: &str) -> Result<Option<TraceConfig>, TraceConfigError> {
        let sampler = parse_sampler(&self.traces_sampler, self.traces_sampler_arg.as_deref())?;
        let protocol = match self.otlp_protocol.trim() {
            "grpc" => Protocol::Grpc,
            "http/protobuf" => Protocol::HttpProtobuf,
            other => return Err(TraceConfigError::Protocol(other.to_owned())),
        };
        let endpoint = match (nonempty(&self.otlp_traces_endpoint), nonempty(&self.otlp_endpoint)) {
            (Some(traces), _) => traces.to_owned(),
            (None, Some(base)) if protocol == Protocol::HttpProtobuf => {
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
            (None, Some(base)) => base.to_owned(),
            (None, None) => return Ok(None),
        };
        let valid = endpoint
            .parse::<http::Uri>()
            .ok()
            .is_some_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some());
        if !valid {
            return Err(TraceConfigError::Endpoint(endpoint));
        }
        let service_name = nonempty(&self.service_name).unwrap_or(default_service).to_owned();
        Ok(Some(TraceConfig { endpoint, protocol, service_name, sampler }))
    }
}

/// The value of a flag, unless it is empty (an environment variable set to
/// nothing counts as unset).
fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

/// The sampler `OTEL_TRACES_SAMPLER` names, with its ratio from
/// `OTEL_TRACES_SAMPLER_ARG` (1 when unset, as the specification says).
///
/// # Errors
/// An unknown name, or a ratio that is not a number from 0 to 1.
pub fn parse_sampler(name: &str, arg: Option<&str>) -> Result<Sampler, TraceConfigError> {
    let ratio = || -> Result<f64, TraceConfigError> {
        let Some(arg) = arg.map(str::trim).filter(|arg| !arg.is_empty()) else {
            return Ok(1.0);
        };
        arg.parse::<f64>()
            .ok()
            .filter(|ratio| (0.0..=1.0).contains(ratio))
            .ok_or_else(|| TraceConfigError::Ratio(arg.to_owned()))
    };
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(match name.trim() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_always_on" => parent_based(Sampler::AlwaysOn),
        "parentbased_always_off" => parent_based(Sampler::AlwaysOff),
        "parentbased_traceidratio" => parent_based(Sampler::TraceIdRatioBased(ratio()?)),
        other => return Err(TraceConfigError::Sampler(other.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> TraceArgs {
        TraceArgs {
            otlp_protocol: "grpc".into(),
            traces_sampler: "parentbased_always_on".into(),
            ..TraceArgs::default()
        }
    }

    #[test]
    fn samplers_parse_by_their_specified_names() {
        let name = |sampler: Sampler| format!("{sampler:?}");
        assert_eq!(name(parse_sampler("always_on", None).expect("ok")), name(Sampler::AlwaysOn));
        assert_eq!(name(parse_sampler(" always_off ", Some("0.3")).expect("ok")), name(Sampler::AlwaysOff));
        assert_eq!(name(parse_sampler("traceidratio", None).expect("ok")), name(Sampler::TraceIdRatioBased(1.0)));
        assert_eq!(
            name(parse_sampler("parentbased_traceidratio", Some("0.25")).expect("ok")),
            name(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.25))))
        );
        assert_eq!(
            name(parse_sampler("parentbased_always_off", None).expect("ok")),
            name(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
        );
    }

    #[test]
    fn bad_samplers_and_ratios_are_named() {
        for bad in ["", "AlwaysOn", "always-on", "parentbased", "jaeger_remote", "traceidratio\0"] {
            let err = parse_sampler(bad, None).expect_err(bad);
            assert_eq!(err, TraceConfigError::Sampler(bad.trim().to_owned()));
            assert!(err.to_string().contains("parentbased_traceidratio"), "{err}");
        }
        for bad in ["-0.1", "1.5", "NaN", "half", "1e400", "0x1"] {
            let err = parse_sampler("traceidratio", Some(bad)).expect_err(bad);
            assert_eq!(err, TraceConfigError::Ratio(bad.to_owned()));
        }
        // A ratio is read only where a sampler takes one.
        assert!(parse_sampler("always_on", Some("nonsense")).is_ok());
    }

    #[test]
    fn tracing_is_on_with_an_endpoint() {
        assert!(args().check("search-server").expect("checked").is_none());
        let on = TraceArgs { otlp_endpoint: Some("http://127.0.0.1:4317".into()), ..args() };
        let config = on.check("search-server").expect("checked").expect("on");
        assert_eq!((config.endpoint.as_str(), config.protocol), ("http://127.0.0.1:4317", Protocol::Grpc));
        assert_eq!(config.service_name, "search-server");
        let http = TraceArgs { otlp_protocol: "http/protobuf".into(), service_name: Some("edge".into()), ..on };
        let config = http.check("search-server").expect("checked").expect("on");
        assert_eq!(config.endpoint, "http://127.0.0.1:4317/v1/traces");
        assert_eq!(config.service_name, "edge");
        let traces = TraceArgs { otlp_traces_endpoint: Some("http://collector:4318/custom".into()), ..http };
        assert_eq!(traces.check("x").expect("checked").expect("on").endpoint, "http://collector:4318/custom");
    }

    #[test]
    fn bad_protocols_and_endpoints_are_named() {
        let bad = TraceArgs { otlp_protocol: "http/json".into(), ..args() };
        assert_eq!(bad.check("x").expect_err("refused"), TraceConfigError::Protocol("http/json".into()));
        for endpoint in ["localhost:4317", "ftp://host:1", "http://", "not a url"] {
            let bad = TraceArgs { otlp_endpoint: Some(endpoint.into()), ..args() };
            assert_eq!(bad.check("x").expect_err(endpoint), TraceConfigError::Endpoint(endpoint.into()));
        }
        let bad = TraceArgs { traces_sampler: "sometimes".into(), ..args() };
        assert!(bad.check("x").expect_err("refused").to_string().starts_with("--traces-sampler"));
    }
}
