//! What a call can end with on the client side, written as one line the
//! way grpcurl writes a status.

use std::fmt;
use std::time::Duration;

use tonic::{Code, Status};

use crate::rpc::code_name;

/// What can go wrong when calling the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be made to the target (refused, no such host,
    /// timed out, TLS handshake failed): the call was never sent.
    #[error("cannot connect to {target}: {cause}")]
    Connect {
        /// The target as the user wrote it.
        target: String,
        /// The innermost cause, for a one-line message ("Connection refused").
        cause: String,
    },
    /// The call's deadline passed before it completed.
    #[error("DEADLINE_EXCEEDED: no answer within the {}{}", DisplayDeadline(*.timeout), DisplayAttempts(*.attempts, .last.as_deref()))]
    DeadlineExceeded {
        /// The deadline the call had.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
        /// How the last failed attempt ended, when one did.
        last: Option<String>,
    },
    /// The call ended with a status other than OK.
    #[error("{}", describe_status(.0))]
    Rpc(#[from] Status),
    /// The server broke the contract (answered out of order, or too little).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The client was shut down.
    #[error("the client was shut down")]
    Shutdown,
    /// The client throttled itself: the servers refused or left unanswered
    /// so many of its recent attempts that this one was not sent (see
    /// [`Throttling`](crate::client::Throttling)). UNAVAILABLE, as a
    /// server's refusal would be.
    #[error(
        "UNAVAILABLE: not sent: the client is throttling itself, refusing {:.0}% of its attempts while the servers \
         take fewer than 1 in {ratio} of them",
        refusing * 100.0
    )]
    Throttled {
        /// The share of attempts refused when this one was.
        refusing: f64,
        /// The throttle's ratio (attempts sent per attempt taken).
        ratio: f64,
    },
    /// A bearer token would have gone over plaintext to a target that is
    /// not loopback, and the token does not allow it: nothing was sent.
    #[error(
        "a token is not sent over plaintext to {target}, which is not loopback: call an https:// target, \
         or allow the token over plaintext"
    )]
    TokenOverPlaintext {
        /// The target as the user wrote it.
        target: String,
    },
    /// A bearer token and an `authorization` header in the metadata: one
    /// would hide the other, so nothing was sent.
    #[error("a token and an authorization header cannot both be sent: give the credentials one way")]
    AuthorizationTwice,
    /// An `xds:///` target without a usable bootstrap
    /// (`GRPC_XDS_BOOTSTRAP` or `GRPC_XDS_BOOTSTRAP_CONFIG`): nothing was sent.
    #[error("{target} needs grpc's xDS bootstrap: {cause}")]
    XdsBootstrap {
        /// The target as the user wrote it.
        target: String,
        /// Why there is none (not set, unreadable, or invalid).
        cause: String,
    },
}

struct DisplayDeadline(Duration);

impl fmt::Display for DisplayDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} deadline", humantime::format_duration(self.0))
    }
}

struct DisplayAttempts<'a>(u32, Option<&'a str>);

impl fmt::Display for DisplayAttempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisplayAttempts(attempts, Some(last)) => write!(f, " ({attempts} attempts; last: {last})"),
            DisplayAttempts(_, None) => Ok(()),
        }
    }
}

impl Error {
    /// The gRPC status code the call ended with, if it got that far.
    #[must_use]
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Rpc(status) => Some(status.code()),
            Self::DeadlineExceeded { .. } => Some(Code::DeadlineExceeded),
            Self::Throttled { .. } => Some(Code::Unavailable),
            Self::Connect { .. }
            | Self::Protocol(_)
            | Self::Shutdown
            | Self::TokenOverPlaintext { .. }
            | Self::AuthorizationTwice
            | Self::XdsBootstrap { .. } => None,
        }
    }
}

/// A status on one line, as grpcurl names codes: `UNAVAILABLE: message`.
#[must_use]
pub fn describe_status(status: &Status) -> String {
    let name = code_name(status.code());
    if status.message().is_empty() { name.to_owned() } else { format!("{name}: {}", status.message()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_errors_say_how_long_they_waited() {
        let once = Error::DeadlineExceeded { timeout: Duration::from_millis(1500), attempts: 1, last: None };
        assert_eq!(once.to_string(), "DEADLINE_EXCEEDED: no answer within the 1s 500ms deadline");
        let retried = Error::DeadlineExceeded {
            timeout: Duration::from_secs(2),
            attempts: 3,
            last: Some("UNAVAILABLE: down".into()),
        };
        assert_eq!(
            retried.to_string(),
            "DEADLINE_EXCEEDED: no answer within the 2s deadline (3 attempts; last: UNAVAILABLE: down)"
        );
        assert_eq!(retried.code(), Some(Code::DeadlineExceeded));
    }

    #[test]
    fn statuses_read_like_grpcurl() {
        assert_eq!(describe_status(&Status::unavailable("gone")), "UNAVAILABLE: gone");
        assert_eq!(describe_status(&Status::new(tonic::Code::DeadlineExceeded, "")), "DEADLINE_EXCEEDED");
    }
}
