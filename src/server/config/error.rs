//! Why the server's flags do not make a configuration ([`ConfigError`]).

use crate::tls;
use crate::traces::TraceConfigError;

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
    /// The adaptive limit's floor over its ceiling.
    #[error("--adaptive-min-calls ({min}) is more than --adaptive-max-calls ({max})")]
    AdaptiveBounds {
        /// The floor.
        min: u32,
        /// The ceiling.
        max: u32,
    },
}
