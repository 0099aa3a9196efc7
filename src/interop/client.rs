//! Where the interop client connects, as grpc's interop clients are told
//! (`--server_host`, `--server_port`, `--server_host_override`, `--use_tls`
//! with a CA), and the two ways it calls: tonic's channel, with the
//! project's TLS settings ([`ClientTls`]), and a bare HTTP/2 connection
//! for what tonic hides (`raw.rs`).
//!
//! The project's [`Client`](crate::client::Client) has one method per RPC
//! of the Search contract, so the cases use tonic's generated
//! `TestServiceClient` on a channel of their own.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::tls::ClientTls;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The interop server the cases run against, and how to reach it.
#[derive(Debug, Clone)]
pub struct InteropTarget {
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The name to check its certificate against and to send as the
    /// `:authority`, when not `host`.
    pub host_override: Option<String>,
    /// TLS, when the connection is encrypted: the CA to trust (the system
    /// roots without one).
    pub tls: Option<ClientTls>,
}

/// A case that did not pass: why, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

impl Failed {
    /// A failure saying `what` was expected and what came.
    pub(super) fn expected(what: impl std::fmt::Display, got: impl std::fmt::Debug) -> Self {
        Self(format!("expected {what}, got {got:?}"))
    }
}

impl From<Status> for Failed {
    fn from(status: Status) -> Self {
        Self(format!("the call failed: {}", crate::client::describe_status(&status)))
    }
}

impl InteropTarget {
    /// The name the server is known by: for its certificate and `:authority`.
    pub(super) fn authority_host(&self) -> &str {
        self.host_override.as_deref().unwrap_or(&self.host)
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// A tonic channel to the server, connected.
    ///
    /// # Errors
    /// When the server cannot be reached or the TLS settings are refused.
    pub async fn channel(&self) -> Result<Channel, Failed> {
        let cannot = |err: &dyn std::fmt::Display| Failed(format!("cannot connect to {}: {err}", self.describe()));
        let mut endpoint = Endpoint::from_shared(format!("{}://{}:{}", self.scheme(), self.host, self.port))
            .map_err(|err| cannot(&err))?
            .connect_timeout(CONNECT_TIMEOUT);
        if self.host_override.is_some() {
            let origin = format!("{}://{}:{}", self.scheme(), self.authority_host(), self.port);
            endpoint = endpoint.origin(origin.parse().map_err(|err| cannot(&err))?);
        }
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.config(self.authority_host())).map_err(|err| cannot(&err))?;
        }
        endpoint.connect().await.map_err(|err| cannot(&chain(&err)))
    }

    /// `host:port`, as the cases say it.
    pub(super) fn describe(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// An error and its causes, in one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line = format!("{line}: {cause}");
        source = cause.source();
    }
    line
}

/// `status` with tonic's own deadline named for what it is: tonic reports a
/// `grpc-timeout` it enforced itself as `CANCELLED: Timeout expired`.
pub(super) fn deadline_named(status: Status) -> Status {
    if status.code() == Code::Cancelled && status.message() == tonic::TimeoutExpired(()).to_string() {
        return Status::deadline_exceeded("the deadline passed (tonic's own timer)");
    }
    status
}
