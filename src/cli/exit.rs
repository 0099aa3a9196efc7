//! How a `client` run ends: what can fail ([`Error`]) and the exit code of
//! each (also listed in the README and `docs/client.md`).

use std::io;

use tonic::Code;

use super::input;
use super::{bench, soak};
use crate::client;

/// The call succeeded.
pub const OK: u8 = 0;
/// Anything else failed: writing the output, or the server broke the contract.
pub const FAILURE: u8 = 1;
/// Bad flags or arguments (clap prints the usage), a token that cannot be
/// read, or one that would go over plaintext to a target that is not
/// loopback.
pub const USAGE: u8 = 2;
/// The server could not be reached.
pub const UNREACHABLE: u8 = 3;
/// The input could not be read or parsed (a file, a non-UTF-8 line, bad JSON).
pub const INPUT: u8 = 4;
/// The call ended with gRPC status N: the exit code is 64 + N, as
/// grpcurl does (UNAVAILABLE, 14, exits 78).
pub const STATUS_BASE: u8 = 64;
/// The server refused the caller's credentials, or wanted some:
/// UNAUTHENTICATED (16). Never retried.
pub const UNAUTHENTICATED: u8 = STATUS_BASE + Code::Unauthenticated as u8;
/// The server's policy does not let the caller make the call:
/// PERMISSION_DENIED (7). Never retried.
pub const PERMISSION_DENIED: u8 = STATUS_BASE + Code::PermissionDenied as u8;

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
    /// The server refused the caller (UNAUTHENTICATED or PERMISSION_DENIED)
    /// or the request's headers (HTTP 431, UNKNOWN): its status on one
    /// line, then what to do.
    #[error("{status} ({advice})")]
    Refused {
        /// The status as the server gave it, on one line.
        status: String,
        /// Its code.
        code: Code,
        /// What to do about it.
        advice: &'static str,
    },
}

impl Error {
    /// The process exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Client(err) | Self::Load(bench::Error::Client(err)) | Self::Soak(soak::Error::Client(err)) => {
                match err {
                    client::Error::Connect { .. } => UNREACHABLE,
                    client::Error::TokenOverPlaintext { .. }
                    | client::Error::AuthorizationTwice
                    | client::Error::XdsBootstrap { .. } => USAGE,
                    err => err.code().map_or(FAILURE, |code| STATUS_BASE + code as u8),
                }
            }
            Self::Output(_)
            | Self::Load(bench::Error::Invalid(_))
            | Self::Soak(soak::Error::Invalid(_))
            | Self::SoakFailed { .. }
            | Self::Traces(_) => FAILURE,
            Self::Input(_) => INPUT,
            Self::Refused { code, .. } => STATUS_BASE + *code as u8,
        }
    }

    /// A call the server refused the caller, UNAUTHENTICATED or
    /// PERMISSION_DENIED, or its headers as too large (HTTP 431, which
    /// gRPC reads as UNKNOWN), as [`Error::Refused`] says it (`token`:
    /// whether the call carried one); any other error as it is.
    #[must_use]
    pub fn advised(self, token: bool) -> Self {
        let Self::Client(err) = &self else { return self };
        let advice = match (err.code(), token) {
            (Some(Code::Unauthenticated), true) => {
                "the server did not accept the token: give a valid, current one with --token-file or SEARCH_TOKEN"
            }
            (Some(Code::Unauthenticated), false) => {
                "the server wants a token: give one with --token-file or SEARCH_TOKEN"
            }
            (Some(Code::PermissionDenied), true) => {
                "the server's policy does not let this caller make this call: call as an identity it allows, or ask \
                 its operator to allow this one"
            }
            (Some(Code::PermissionDenied), false) => {
                "the server's policy does not let a caller without a token make this call: give one with \
                 --token-file or SEARCH_TOKEN"
            }
            (Some(Code::Unknown), _) if headers_too_large(err) => {
                "the server refused the request's headers as too large: send fewer or smaller -H headers, or raise \
                 the server's --max-header-bytes"
            }
            _ => return self,
        };
        // A peer's message on one line: what it cannot break is the line.
        let status: String = err.to_string().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        Self::Refused { status, code: err.code().unwrap_or(Code::Unknown), advice }
    }

    /// Whether the reader of the output went away (`client ... | head`):
    /// not a failure, the run just stops.
    #[must_use]
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Whether the server answered HTTP 431 (Request Header Fields Too
/// Large), as tonic reports an answer without a gRPC status.
fn headers_too_large(err: &client::Error) -> bool {
    matches!(err, client::Error::Rpc(status) if status.message().ends_with("HTTP status code 431"))
}

#[cfg(test)]
mod tests {
    use tonic::Status;

    use super::*;

    fn refused(status: Status, token: bool) -> (String, u8) {
        let err = Error::Client(client::Error::Rpc(status)).advised(token);
        (err.to_string(), err.exit_code())
    }

    #[test]
    fn a_refused_caller_gets_one_line_saying_what_to_do_and_its_own_exit_code() {
        let (line, code) = refused(Status::unauthenticated("token expired"), true);
        assert_eq!(
            line,
            "UNAUTHENTICATED: token expired (the server did not accept the token: give a valid, current one with \
             --token-file or SEARCH_TOKEN)"
        );
        assert_eq!((code, UNAUTHENTICATED), (80, 80));
        let (line, _) = refused(Status::unauthenticated("no token"), false);
        assert!(line.ends_with("(the server wants a token: give one with --token-file or SEARCH_TOKEN)"), "{line}");
        let (line, code) = refused(Status::permission_denied("denied by policy\nsecond line"), true);
        assert!(line.starts_with("PERMISSION_DENIED: denied by policy second line (the server's policy"), "{line}");
        assert_eq!((code, PERMISSION_DENIED), (71, 71));
        let (line, _) = refused(Status::permission_denied(""), false);
        assert!(line.contains("a caller without a token"), "{line}");
    }

    #[test]
    fn other_errors_are_left_as_they_are() {
        let (line, code) = refused(Status::unavailable("down"), true);
        assert_eq!((line.as_str(), code), ("UNAVAILABLE: down", 78));
        let (line, code) =
            refused(Status::unknown("grpc-status header missing, mapped from HTTP status code 400"), true);
        assert_eq!(
            (line.as_str(), code),
            ("UNKNOWN: grpc-status header missing, mapped from HTTP status code 400", 66)
        );
        let (line, code) =
            refused(Status::unknown("grpc-status header missing, mapped from HTTP status code 431"), false);
        assert!(line.ends_with("431 (the server refused the request's headers as too large: send fewer or smaller -H headers, or raise the server's --max-header-bytes)"), "{line}");
        assert_eq!(code, 66, "UNKNOWN's code still");
        let plaintext = Error::Client(client::Error::TokenOverPlaintext { target: "example.com:80".into() });
        assert_eq!(plaintext.advised(true).exit_code(), USAGE);
    }
}
