//! Admission control: the adaptive concurrency flags, checked into the
//! per-call layer's settings.

use clap::Args;
use clap::builder::BoolishValueParser;

use super::defaults::{ADAPTIVE_INITIAL_CALLS, ADAPTIVE_MAX_CALLS, ADAPTIVE_MIN_CALLS};
use super::error::ConfigError;

/// The bounds of the adaptive limit of calls in flight, and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// The least the limit comes down to.
    pub floor: usize,
    /// The most it grows to.
    pub ceiling: usize,
    /// Where it starts, before any latency was measured (held between the
    /// floor and the ceiling).
    pub initial: usize,
}

/// The admission control flags, flattened into the server's.
#[derive(Debug, Clone, Args)]
pub struct AdmissionArgs {
    /// Limit the calls in flight by their latency (a gradient controller,
    /// beside --max-concurrent-calls): calls past the limit are refused at
    /// once with UNAVAILABLE, which clients may retry on another server
    /// (docs/server.md, "Admission control").
    #[arg(long, env = "SEARCH_ADAPTIVE_CONCURRENCY", value_parser = BoolishValueParser::new())]
    pub adaptive_concurrency: bool,

    /// The least the adaptive limit comes down to, and the calls in flight
    /// at which it measures its baseline latency under a lasting overload.
    #[arg(long, env = "SEARCH_ADAPTIVE_MIN_CALLS", value_name = "N", default_value_t = ADAPTIVE_MIN_CALLS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub adaptive_min_calls: u32,

    /// The most the adaptive limit grows to.
    #[arg(long, env = "SEARCH_ADAPTIVE_MAX_CALLS", value_name = "N", default_value_t = ADAPTIVE_MAX_CALLS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub adaptive_max_calls: u32,

    /// Where the adaptive limit starts, before it has measured any latency
    /// (held between --adaptive-min-calls and --adaptive-max-calls); it
    /// doubles each window in which it shed calls at good latency.
    #[arg(long, env = "SEARCH_ADAPTIVE_INITIAL_CALLS", value_name = "N", default_value_t = ADAPTIVE_INITIAL_CALLS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub adaptive_initial_calls: u32,
}

impl AdmissionArgs {
    /// The adaptive limit's bounds, when `--adaptive-concurrency`.
    ///
    /// # Errors
    /// [`ConfigError::AdaptiveBounds`] when the floor is over the ceiling.
    pub fn settings(&self) -> Result<Option<AdmissionSettings>, ConfigError> {
        let (min, max) = (self.adaptive_min_calls, self.adaptive_max_calls);
        if min > max {
            return Err(ConfigError::AdaptiveBounds { min, max });
        }
        let initial = self.adaptive_initial_calls.clamp(min, max);
        let settings = AdmissionSettings { floor: min as usize, ceiling: max as usize, initial: initial as usize };
        Ok(self.adaptive_concurrency.then_some(settings))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::server::config::ServerArgs;

    fn settings(args: &[&str]) -> Result<Option<AdmissionSettings>, ConfigError> {
        let args = ServerArgs::try_parse_from(["server"].iter().chain(args)).expect("the flags parse");
        args.admission.settings()
    }

    #[test]
    fn off_unless_asked_with_bounds_checked() {
        assert_eq!(settings(&[]).ok(), Some(None));
        let on = settings(&["--adaptive-concurrency"]).expect("valid");
        let defaults = AdmissionSettings {
            floor: ADAPTIVE_MIN_CALLS as usize,
            ceiling: ADAPTIVE_MAX_CALLS as usize,
            initial: ADAPTIVE_INITIAL_CALLS as usize,
        };
        assert_eq!(on, Some(defaults));
        // The start is held between the bounds.
        let bounds = settings(&["--adaptive-concurrency", "--adaptive-min-calls", "4", "--adaptive-max-calls", "8"]);
        assert_eq!(bounds.ok(), Some(Some(AdmissionSettings { floor: 4, ceiling: 8, initial: 8 })));
        let start = settings(&["--adaptive-concurrency", "--adaptive-initial-calls", "2", "--adaptive-min-calls", "4"]);
        assert_eq!(start.ok().flatten().map(|s| s.initial), Some(4));
        let crossed = settings(&["--adaptive-min-calls", "65", "--adaptive-max-calls", "64"]).expect_err("crossed");
        assert_eq!(crossed.to_string(), "--adaptive-min-calls (65) is more than --adaptive-max-calls (64)");
    }
}
