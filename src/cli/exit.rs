//! How a `client` run ends: what can fail ([`Error`]) and the exit code of
//! each (also listed in the README and `docs/client.md`).

use std::io;

use super::input;
use super::{bench, soak};
use crate::client;

/// The call succeeded.
pub const OK: u8 = 0;
/// Anything else failed: writing the output, or the server broke the contract.
pub const FAILURE: u8 = 1;
/// Bad flags or arguments (clap prints the usage).
pub const USAGE: u8 = 2;
/// The server could not be reached.
pub const UNREACHABLE: u8 = 3;
/// The input could not be read or parsed (a file, a non-UTF-8 line, bad JSON).
pub const INPUT: u8 = 4;
/// The call ended with gRPC status N: the exit code is 64 + N, as
/// grpcurl does (UNAVAILABLE, 14, exits 78).
pub const STATUS_BASE: u8 = 64;

/// Why a run failed; [`Error::exit_code`] maps each to its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting or calling failed.
    #[error(transparent)]
    Client(#[from] client::Error),
    /// The input could not be read or parsed.
    #[error(transparent)]
    Input(#[from] input::Error),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    /// A load test could not run.
    #[error(transparent)]
    Load(#[from] bench::Error),
    /// A soak could not run.
    #[error(transparent)]
    Soak(#[from] soak::Error),
    /// A soak ran, and calls ended with codes their traffic does not allow,
    /// or never ended.
    #[error("soak failed: {unexpected} calls ended with an unexpected code, {lost} never ended")]
    SoakFailed {
        /// Calls with an unexpected end.
        unexpected: u64,
        /// Calls that never ended.
        lost: u64,
    },
    /// Tracing was asked for and could not start.
    #[error(transparent)]
    Traces(#[from] crate::traces::InstallError),
}

impl Error {
    /// The process exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Client(err) | Self::Load(bench::Error::Client(err)) | Self::Soak(soak::Error::Client(err)) => {
                match err {
                    client::Error::Connect { .. } => UNREACHABLE,
                    err => err.code().map_or(FAILURE, |code| STATUS_BASE + code as u8),
                }
            }
            Self::Output(_)
            | Self::Load(bench::Error::Invalid(_))
            | Self::Soak(soak::Error::Invalid(_))
            | Self::SoakFailed { .. }
            | Self::Traces(_) => FAILURE,
            Self::Input(_) => INPUT,
        }
    }

    /// Whether the reader of the output went away (`client ... | head`):
    /// not a failure, the run just stops.
    #[must_use]
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}
