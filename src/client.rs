//! Calling a Search server: parsing a target, connecting, one method per RPC.

use std::fmt;
use std::str::FromStr;

use http::Uri;
use http::uri::Authority;
use tokio_stream::Stream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, Streaming};

use crate::pb::v1::search_service_client::SearchServiceClient;
use crate::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};

/// What can go wrong when calling the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be made to the target.
    #[error("cannot connect to {target}: {cause}")]
    Connect {
        /// The target as the user wrote it.
        target: String,
        /// The innermost cause, for a one-line message ("Connection refused").
        cause: String,
        /// The whole error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The call ended with a status other than OK.
    #[error("{}", describe_status(.0))]
    Rpc(#[from] Status),
    /// The server broke the contract (answered out of order, or too little).
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// A server address: `HOST:PORT`, `[IPv6]:PORT` or `http://HOST:PORT`.
///
/// The article's Python client rejects a scheme (grpc resolves
/// `http://localhost:8100` as a DNS name and fails); this client takes both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the user wrote, for messages.
    original: String,
    /// The `http://HOST:PORT/` URI tonic connects to.
    uri: Uri,
}

/// Why a target string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target {target:?}: {reason} (expected HOST:PORT, [IPv6]:PORT or http://HOST:PORT)")]
pub struct InvalidTarget {
    target: String,
    reason: &'static str,
}

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(target: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidTarget { target: target.to_owned(), reason };
        let rest = match target.split_once("://") {
            None => target,
            Some(("http", rest)) => rest,
            Some(("https", _)) => return Err(invalid("TLS (https://) is not supported yet")),
            Some(_) => return Err(invalid("the only scheme supported is http://")),
        };
        // `http://host:port/` is still an address; anything longer is a path.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(invalid("a target has no path"));
        }
        if rest.contains('@') {
            return Err(invalid("a target has no user name"));
        }
        // The port follows the last ':' that is not inside an IPv6 literal.
        let port = match rest.rsplit_once(':') {
            Some((_, port)) if !port.contains(']') => port,
            _ => return Err(invalid("the port is missing")),
        };
        match port.parse::<u16>() {
            Ok(0) => return Err(invalid("port 0 cannot be connected to")),
            Ok(_) => {}
            Err(_) => return Err(invalid("the port is not a number from 1 to 65535")),
        }
        let authority: Authority = rest.parse().map_err(|_| invalid("not a host and port"))?;
        if authority.host().is_empty() {
            return Err(invalid("the host is missing"));
        }
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|_| invalid("not a host and port"))?;
        Ok(Self { original: target.to_owned(), uri })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Target {
    /// The `http://HOST:PORT/` URI tonic connects to.
    #[must_use]
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
}

/// A connected Search client: one method per RPC of `search.v1.SearchService`.
///
/// Cloning is cheap and shares the connection (HTTP/2 multiplexes calls).
#[derive(Debug, Clone)]
pub struct Client {
    inner: SearchServiceClient<Channel>,
}

impl Client {
    /// Connects to `target` now, so that an unreachable server is reported
    /// before any input is read.
    ///
    /// # Errors
    /// [`Error::Connect`] when the name does not resolve or the server does
    /// not accept the connection.
    pub async fn connect(target: &Target) -> Result<Self, Error> {
        let channel = Endpoint::from(target.uri().clone())
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|source| Error::Connect { target: target.to_string(), cause: root_cause(&source), source })?;
        Ok(Self::from_channel(channel))
    }

    /// A client over a channel built elsewhere.
    #[must_use]
    pub fn from_channel(channel: Channel) -> Self {
        Self { inner: SearchServiceClient::new(channel) }
    }

    /// Unary `Search`: does the query contain "banana"?
    ///
    /// # Errors
    /// [`Error::Rpc`] with the status the call ended with.
    pub async fn search(&mut self, request: SearchRequest) -> Result<SearchResponse, Error> {
        Ok(self.inner.search(request).await?.into_inner())
    }

    /// Bidirectional `Classify`: one response per request, in order, read as
    /// they arrive while `requests` is still being sent.
    ///
    /// # Errors
    /// [`Error::Rpc`] when the call fails before its responses start.
    pub async fn classify(
        &mut self,
        requests: impl Stream<Item = ClassifyRequest> + Send + 'static,
    ) -> Result<Streaming<ClassifyResponse>, Error> {
        Ok(self.inner.classify(requests).await?.into_inner())
    }

    /// Client-streaming `Count`: sends every request, then gets one summary.
    ///
    /// # Errors
    /// [`Error::Rpc`] with the status the call ended with.
    pub async fn count(
        &mut self,
        requests: impl Stream<Item = CountRequest> + Send + 'static,
    ) -> Result<CountResponse, Error> {
        Ok(self.inner.count(requests).await?.into_inner())
    }

    /// Server-streaming `Scan`: the occurrences in one text, streamed as found.
    ///
    /// # Errors
    /// [`Error::Rpc`] when the call fails before its responses start.
    pub async fn scan(&mut self, request: ScanRequest) -> Result<Streaming<ScanResponse>, Error> {
        Ok(self.inner.scan(request).await?.into_inner())
    }
}

/// The innermost error of a chain: for a refused connection, the OS error
/// ("Connection refused (os error 111)") rather than "transport error".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A status on one line, as grpcurl names codes: `UNAVAILABLE: message`.
#[must_use]
pub fn describe_status(status: &Status) -> String {
    let name = code_name(status.code());
    if status.message().is_empty() { name.to_owned() } else { format!("{name}: {}", status.message()) }
}

/// The canonical name of a gRPC status code, as in the gRPC spec.
#[must_use]
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_of(target: &str) -> Result<String, InvalidTarget> {
        target.parse::<Target>().map(|t| t.uri().to_string())
    }

    #[test]
    fn accepts_the_documented_forms_alike() {
        assert_eq!(uri_of("localhost:8100").as_deref(), Ok("http://localhost:8100/"));
        assert_eq!(uri_of("127.0.0.1:8100").as_deref(), Ok("http://127.0.0.1:8100/"));
        assert_eq!(uri_of("[::1]:8100").as_deref(), Ok("http://[::1]:8100/"));
        assert_eq!(uri_of("http://localhost:8100").as_deref(), Ok("http://localhost:8100/"));
        assert_eq!(uri_of("http://localhost:8100/").as_deref(), Ok("http://localhost:8100/"));
    }

    #[test]
    fn rejects_what_is_not_an_address_with_the_reason() {
        let reason = |target: &str| target.parse::<Target>().expect_err(target).reason;
        assert_eq!(reason("localhost"), "the port is missing");
        assert_eq!(reason("localhost:0"), "port 0 cannot be connected to");
        assert_eq!(reason("[::1]"), "the port is missing");
        assert_eq!(reason("localhost:99999"), "the port is not a number from 1 to 65535");
        assert_eq!(reason("localhost:http"), "the port is not a number from 1 to 65535");
        assert_eq!(reason("local host:8100"), "not a host and port");
        assert_eq!(reason(":8100"), "the host is missing");
        assert_eq!(reason("http://localhost:8100/search"), "a target has no path");
        assert_eq!(reason("https://localhost:8100"), "TLS (https://) is not supported yet");
        assert_eq!(reason("dns:///localhost:8100"), "the only scheme supported is http://");
        assert_eq!(reason("user@localhost:8100"), "a target has no user name");
        assert_eq!(reason(""), "the port is missing");
    }

    #[test]
    fn the_message_names_the_target_and_the_forms() {
        let err = "localhost".parse::<Target>().expect_err("no port");
        assert_eq!(
            err.to_string(),
            "invalid target \"localhost\": the port is missing (expected HOST:PORT, [IPv6]:PORT or http://HOST:PORT)"
        );
    }

    #[test]
    fn statuses_read_like_grpcurl() {
        assert_eq!(describe_status(&Status::unavailable("gone")), "UNAVAILABLE: gone");
        assert_eq!(describe_status(&Status::new(tonic::Code::DeadlineExceeded, "")), "DEADLINE_EXCEEDED");
    }
}
