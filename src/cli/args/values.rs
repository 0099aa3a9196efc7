//! The values of two flags that take a duration or a word: `--keepalive-time`
//! ([`Toggle`]) and `--hedging-delay` ([`HedgeDelay`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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
