//! How a failed attempt is read: whether the call was ever sent (a dial or
//! TLS failure), whether the connection ever worked, whether the deadline
//! ended it; and the one-line error each becomes.

use tonic::{Code, Status};

use super::caller::Caller;
use super::rules::Failed;
use crate::client::Error;
use crate::client::channel::{ConnectFailed, Subchannel};

/// How an attempt failed, from where its status came from.
pub(in crate::client) enum Failure {
    /// The call was never sent: the dial or the TLS handshake failed.
    NotSent(String),
    /// The call was never processed because its connection is going away:
    /// the connection was closing when the call was handed to it, the
    /// server refused the stream, or it came past a GOAWAY's last stream.
    /// New calls need a new connection.
    GoingAway(String),
    /// The connection closed before the server ever answered on it (a TLS
    /// alert, a plaintext client at a TLS server): it never worked.
    Unanswered(String),
    /// tonic's own timer, set from our `grpc-timeout`, ended the call: the
    /// deadline passed (tonic reports it as `CANCELLED: Timeout expired`).
    Deadline,
    /// The server (or a lost connection, mid-call) ended the call.
    Status,
}

/// The errors behind `err`, innermost last; an `io::Error`'s payload too,
/// which its `source()` skips.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |err| {
        match err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        }
    })
}

impl Failure {
    /// Whether the server never had the call, so that sending it again is
    /// safe whatever the method.
    fn not_sent(&self) -> bool {
        matches!(self, Self::NotSent(_) | Self::GoingAway(_))
    }

    /// The failure as the rules read it, its status code `code`.
    pub(super) fn read(&self, code: Code) -> Failed {
        Failed {
            not_sent: self.not_sent(),
            unanswered: matches!(self, Self::Unanswered(_)),
            deadline: matches!(self, Self::Deadline),
            code,
        }
    }
}

impl Caller {
    /// Where the status of a failed attempt on `sub` came from.
    pub(in crate::client) fn failure(&self, status: &Status, sub: &Subchannel) -> Failure {
        if status.code() == Code::Cancelled && status.message() == tonic::TimeoutExpired(()).to_string() {
            return Failure::Deadline;
        }
        let Some(source) = std::error::Error::source(status) else {
            return Failure::Status;
        };
        for cause in causes(source) {
            if let Some(dial) = cause.downcast_ref::<ConnectFailed>() {
                return Failure::NotSent(dial.to_string());
            }
            if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
                return Failure::NotSent(format!("TLS handshake failed: {tls}"));
            }
            // hyper dropped the call before sending it: its connection was
            // closing (a GOAWAY) when the call was handed to it, or its TLS
            // session ended first, saying why (an alert: see secure.rs).
            if cause.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_canceled) {
                if let Some(refused) = sub.connectivity.refused().filter(|_| !sub.connectivity.answered()) {
                    return Failure::NotSent(refusal(&refused));
                }
                // A plaintext connection closed before the server answered
                // anything on it may be a TLS server's.
                let hint = if self.channel.target().is_tls() || sub.connectivity.answered() {
                    ""
                } else {
                    " (is the server using TLS? try https://)"
                };
                return Failure::GoingAway(format!("the connection closed before the call was sent{hint}"));
            }
            if let Some(h2) = cause.downcast_ref::<h2::Error>() {
                // HTTP/2 says a refused stream was not processed at all (a
                // server going away refuses the streams past its GOAWAY).
                if h2.reason() == Some(h2::Reason::REFUSED_STREAM) {
                    return Failure::GoingAway("the server refused the call unprocessed (it is going away)".into());
                }
                // A graceful GOAWAY (NO_ERROR) fails only the streams past
                // the last one it names, or opened after it: streams the
                // server never processed (RFC 9113, 6.8). A stream it did
                // take ends otherwise (its answer, or a broken pipe when
                // the connection closes under it).
                if h2.is_go_away() && h2.is_remote() && h2.reason() == Some(h2::Reason::NO_ERROR) {
                    return Failure::GoingAway("the server was going away and did not take the call".into());
                }
            }
        }
        if sub.connectivity.answered() {
            return Failure::Status;
        }
        let root = causes(source).last().map(ToString::to_string).unwrap_or_default();
        Failure::Unanswered(if root.contains("CertificateRequired") {
            refusal(&root)
        } else if self.channel.target().is_tls() {
            format!("the connection closed before the server answered: {root}")
        } else {
            format!("the connection closed before the server answered: {root} (is the server using TLS? try https://)")
        })
    }

    /// A call that ran out of time after `attempts` attempts, the last
    /// failed one ending as `last` says.
    pub(in crate::client) fn deadline_exceeded(&self, attempts: u32, last: Option<String>) -> Error {
        Error::DeadlineExceeded { timeout: self.settings.timeout, attempts, last }
    }

    /// The error of a call that ended with `status` on `sub` after
    /// `attempts` attempts, the earlier ones ending as `last` said.
    pub(in crate::client) fn failed(
        &self,
        status: Status,
        sub: &Subchannel,
        attempts: u32,
        last: Option<String>,
    ) -> Error {
        let failure = self.failure(&status, sub);
        self.error(failure, status, attempts, last)
    }

    /// The error a call ends with when its last attempt failed as `failure`
    /// with `status`, after `attempts` attempts.
    pub(in crate::client) fn error(
        &self,
        failure: Failure,
        status: Status,
        attempts: u32,
        last: Option<String>,
    ) -> Error {
        match failure {
            Failure::NotSent(cause) | Failure::GoingAway(cause) | Failure::Unanswered(cause) => {
                Error::Connect { target: self.channel.target().to_string(), cause }
            }
            Failure::Deadline => self.deadline_exceeded(attempts, last),
            Failure::Status => Error::Rpc(status),
        }
    }
}

/// What a TLS session that ended before the server answered says: a
/// server that requires a client certificate, or the alert as it came.
fn refusal(why: &str) -> String {
    if why.contains("CertificateRequired") {
        format!("the server refused the TLS session: {why} (it requires a client certificate)")
    } else {
        format!("the server ended the TLS session: {why}")
    }
}
