//! Calling a Search server: targets, the channel (TLS, connectivity state),
//! a deadline on every call, retries of what the contract marks safe, and
//! one method per RPC.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until, timeout_at};
use tokio_stream::Stream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status, Streaming};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::connectivity::{ConnectFailed, Connectivity, ConnectivityState, TrackingConnector};
pub use crate::error::{Error, code_name, describe_status};
use crate::pb::v1::search_service_client::SearchServiceClient;
use crate::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};
use crate::retry::{self, Backoff, RetryBudget, RetryThrottle};
use crate::server::{LEGACY_SEARCH_PATH, SEARCH_PATH};
pub use crate::target::{InvalidTarget, Target};
use crate::tls::ClientTls;

/// The deadline of a call unless told otherwise, as the Google API clients use.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one dial may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of a safe call, the first included (grpc's default retry policy).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// How a client calls: deadline, connecting, retries, TLS.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Each call's overall deadline, retries included; sent as `grpc-timeout`.
    pub timeout: Duration,
    /// How long one dial may take.
    pub connect_timeout: Duration,
    /// Wait for the server to come up (within the deadline) instead of
    /// failing at once when it cannot be reached, for every call.
    pub wait_for_ready: bool,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// Attempts of a call the contract marks safe, the first included.
    pub max_attempts: u32,
    /// The retry budget shared by the client's calls.
    pub retry_budget: RetryThrottle,
    /// TLS for `https://` targets (the system roots unless a CA is given).
    pub tls: ClientTls,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            wait_for_ready: false,
            backoff: Backoff::DEFAULT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_budget: RetryThrottle::default(),
            tls: ClientTls::default(),
        }
    }
}

/// A Search client: one method per RPC of `search.v1.SearchService`.
///
/// The channel connects on the first call and reconnects after a lost
/// connection. Cloning is cheap; clones share the connection, its
/// connectivity state and the retry budget.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    inner: SearchServiceClient<Channel>,
    health: HealthClient<Channel>,
    target: Target,
    options: Arc<ClientOptions>,
    connectivity: Connectivity,
    budget: Arc<RetryBudget>,
}

/// How an attempt failed, from where its status came from.
enum Failure {
    /// The call was never sent: the dial or the TLS handshake failed.
    NotSent(String),
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

impl Client {
    /// Where the status of a failed attempt came from.
    fn failure(&self, status: &Status) -> Failure {
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
        }
        if self.connectivity.answered() {
            return Failure::Status;
        }
        let root = causes(source).last().map(ToString::to_string).unwrap_or_default();
        Failure::Unanswered(if root.contains("CertificateRequired") {
            format!("the server refused the TLS session: {root} (it requires a client certificate)")
        } else if self.target.is_tls() {
            format!("the connection closed before the server answered: {root}")
        } else {
            format!("the connection closed before the server answered: {root} (is the server using TLS? try https://)")
        })
    }

    /// A client for `target`. Nothing is dialed until the first call.
    ///
    /// # Errors
    /// [`Error::Connect`] when the TLS settings are refused (a bad CA or
    /// client certificate).
    pub fn new(target: &Target, options: ClientOptions) -> Result<Self, Error> {
        let mut endpoint = Endpoint::from(target.uri().clone()).tcp_nodelay(true);
        if target.is_tls() {
            endpoint = endpoint.tls_config(options.tls.config(target.host())).map_err(|err| Error::Connect {
                target: target.to_string(),
                cause: format!("invalid TLS settings: {}", root_cause(&err)),
            })?;
        }
        let connectivity = Connectivity::default();
        let channel =
            endpoint.connect_with_connector_lazy(TrackingConnector::new(connectivity.clone(), options.connect_timeout));
        Ok(Self {
            channel: channel.clone(),
            inner: SearchServiceClient::new(channel.clone()),
            health: HealthClient::new(channel),
            target: target.clone(),
            budget: Arc::new(RetryBudget::new(options.retry_budget)),
            options: Arc::new(options),
            connectivity,
        })
    }

    /// A client with the default options, connected now, so that an
    /// unreachable server is reported before anything else happens.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached.
    pub async fn connect(target: &Target) -> Result<Self, Error> {
        Self::connect_with(target, ClientOptions::default()).await
    }

    /// [`Client::connect`] with `options`.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached.
    pub async fn connect_with(target: &Target, options: ClientOptions) -> Result<Self, Error> {
        let client = Self::new(target, options)?;
        let deadline = Instant::now() + client.options.timeout;
        // One check: waiting for the server when asked to, else at once.
        if client.options.wait_for_ready {
            client.ready(deadline).await?
        } else {
            client.probe(deadline).await?
        }
        Ok(client)
    }

    /// The channel's connectivity state; with `try_to_connect`, an IDLE
    /// channel starts connecting (as grpc.aio's `get_state(True)`).
    #[must_use]
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        let state = self.connectivity.state();
        if try_to_connect && state == ConnectivityState::Idle {
            let client = self.clone();
            tokio::spawn(async move {
                let _ = client.probe(Instant::now() + client.options.connect_timeout).await;
            });
        }
        state
    }

    /// Waits until the state is no longer `last` and returns the new one
    /// (as grpc.aio's `wait_for_state_change`).
    pub async fn wait_for_state_change(&self, last: ConnectivityState) -> ConnectivityState {
        self.connectivity.wait_for_state_change(last).await
    }

    /// The connectivity handle, to watch the state from elsewhere.
    #[must_use]
    pub fn connectivity(&self) -> &Connectivity {
        &self.connectivity
    }

    /// Shuts the client down: SHUTDOWN, and every later call fails.
    pub fn shutdown(&self) {
        self.connectivity.shutdown();
    }

    /// Makes sure a connection is up: one side-effect-free health check
    /// (any answer, even UNIMPLEMENTED, proves the connection).
    async fn probe(&self, deadline: Instant) -> Result<(), Error> {
        let request = with_timeout(HealthCheckRequest { service: String::new() }, deadline);
        match timeout_at(deadline, self.health.clone().check(request)).await {
            Err(_) => Err(self.deadline_exceeded(1, None)),
            Ok(Ok(_)) => {
                self.connectivity.mark_answered();
                Ok(())
            }
            Ok(Err(status)) => match self.failure(&status) {
                Failure::NotSent(cause) | Failure::Unanswered(cause) => {
                    Err(Error::Connect { target: self.target.to_string(), cause })
                }
                Failure::Deadline => Err(self.deadline_exceeded(1, None)),
                Failure::Status => {
                    self.connectivity.mark_answered();
                    Ok(())
                }
            },
        }
    }

    /// With `wait_for_ready`, waits (backing off) until the server can be
    /// reached, or fails with DEADLINE_EXCEEDED at the deadline.
    async fn ready(&self, deadline: Instant) -> Result<(), Error> {
        if !self.options.wait_for_ready || self.connectivity.state() == ConnectivityState::Ready {
            return Ok(());
        }
        let mut attempt = 0;
        let mut last = None;
        loop {
            attempt += 1;
            match self.probe(deadline).await {
                Err(Error::Connect { cause, .. }) => {
                    last = Some(format!("cannot connect: {cause}"));
                    let delay = self.options.backoff.delay(attempt);
                    if Instant::now() + delay >= deadline {
                        return Err(self.deadline_exceeded(attempt, last));
                    }
                    tokio::time::sleep(delay).await;
                }
                // The deadline passed during a dial: say why we were waiting.
                Err(Error::DeadlineExceeded { .. }) if last.is_some() => {
                    return Err(self.deadline_exceeded(attempt, last));
                }
                other => return other,
            }
        }
    }

    fn deadline_exceeded(&self, attempts: u32, last: Option<String>) -> Error {
        Error::DeadlineExceeded { timeout: self.options.timeout, attempts, last }
    }

    /// The error of a call that ended with `status` after `attempts`
    /// attempts, the earlier ones ending as `last` said.
    fn failed(&self, status: Status, attempts: u32, last: Option<String>) -> Error {
        match self.failure(&status) {
            Failure::NotSent(cause) | Failure::Unanswered(cause) => {
                Error::Connect { target: self.target.to_string(), cause }
            }
            Failure::Deadline => self.deadline_exceeded(attempts, last),
            Failure::Status => Error::Rpc(status),
        }
    }

    /// Runs a unary call under its deadline, retrying while it is safe:
    /// the method is marked side-effect free in the contract, the attempt
    /// ended UNAVAILABLE or could not be sent, attempts and the retry budget
    /// remain, and the backoff ends before the deadline. With
    /// `wait_for_ready`, a call that could not be sent waits for the server.
    async fn unary<M: Clone, T, F, Fut>(&self, method: &str, message: &M, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(SearchServiceClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + self.options.timeout;
        let safe = retry::is_safe(method);
        let mut attempts = 0;
        // How the previous attempt ended, for the deadline's message.
        let mut last = None;
        loop {
            if self.connectivity.state() == ConnectivityState::Shutdown {
                return Err(Error::Shutdown);
            }
            attempts += 1;
            let request = with_timeout(message.clone(), deadline);
            let status = match timeout_at(deadline, attempt(self.inner.clone(), request)).await {
                Err(_) => return Err(self.deadline_exceeded(attempts, last)),
                Ok(Ok(value)) => {
                    self.connectivity.mark_answered();
                    self.budget.succeeded();
                    return Ok(value);
                }
                Ok(Err(status)) => status,
            };
            let failure = self.failure(&status);
            if matches!(failure, Failure::Status) && std::error::Error::source(&status).is_none() {
                self.connectivity.mark_answered();
            }
            let not_sent = matches!(failure, Failure::NotSent(_));
            let transient = not_sent || matches!(failure, Failure::Unanswered(_)) || status.code() == Code::Unavailable;
            let retry = if not_sent && self.options.wait_for_ready {
                true
            } else {
                safe && transient && self.budget.failed() && attempts < self.options.max_attempts
            };
            if !retry {
                return Err(self.failed(status, attempts, last));
            }
            let error = self.failed(status, attempts, last.take()).to_string();
            let delay = self.options.backoff.delay(attempts);
            if Instant::now() + delay >= deadline {
                return Err(self.deadline_exceeded(attempts, Some(error)));
            }
            tracing::debug!(method, attempts, ?delay, error, "retrying");
            last = Some(error);
            tokio::time::sleep(delay).await;
        }
    }

    /// Starts a streaming call: waits for readiness if asked, sends the
    /// deadline, and maps a call that could not be sent to [`Error::Connect`].
    async fn streaming<M, T, Fut>(
        &self,
        message: M,
        call: impl FnOnce(SearchServiceClient<Channel>, Request<M>) -> Fut,
    ) -> Result<(T, Instant), Error>
    where
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        if self.connectivity.state() == ConnectivityState::Shutdown {
            return Err(Error::Shutdown);
        }
        let deadline = Instant::now() + self.options.timeout;
        self.ready(deadline).await?;
        match timeout_at(deadline, call(self.inner.clone(), with_timeout(message, deadline))).await {
            Err(_) => Err(self.deadline_exceeded(1, None)),
            Ok(Ok(response)) => {
                self.connectivity.mark_answered();
                Ok((response.into_inner(), deadline))
            }
            Ok(Err(status)) => Err(self.failed(status, 1, None)),
        }
    }

    /// Unary `Search`: does the query contain "banana"? Retried as the
    /// contract marks it side-effect free.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn search(&self, request: SearchRequest) -> Result<SearchResponse, Error> {
        self.unary(SEARCH_PATH, &request, |mut client, request| async move {
            client.search(request).await.map(tonic::Response::into_inner)
        })
        .await
    }

    /// The article's unary `/Search/search` (wire-compatible with `Search`),
    /// to call the article's own Python server. The path is not in the
    /// contract, so the call is never retried.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn search_legacy(&self, request: SearchRequest) -> Result<SearchResponse, Error> {
        self.unary(LEGACY_SEARCH_PATH, &request, |_, request| {
            let mut grpc = tonic::client::Grpc::new(self.channel.clone());
            async move {
                grpc.ready().await.map_err(|err| Status::from_error(err.into()))?;
                let path = http::uri::PathAndQuery::from_static(LEGACY_SEARCH_PATH);
                grpc.unary(request, path, tonic_prost::ProstCodec::default()).await.map(tonic::Response::into_inner)
            }
        })
        .await
    }

    /// Bidirectional `Classify`: one response per request, in order, read as
    /// they arrive while `requests` is still being sent. Never retried.
    ///
    /// # Errors
    /// See [`Error`]; the responses end at the deadline with
    /// [`Error::DeadlineExceeded`].
    pub async fn classify(
        &self,
        requests: impl Stream<Item = ClassifyRequest> + Send + 'static,
    ) -> Result<Responses<ClassifyResponse>, Error> {
        let (stream, deadline) =
            self.streaming(requests, |mut client, request| async move { client.classify(request).await }).await?;
        Ok(Responses::new(stream, deadline, self.clone()))
    }

    /// Client-streaming `Count`: sends every request, then gets one summary.
    /// Never retried.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn count(
        &self,
        requests: impl Stream<Item = CountRequest> + Send + 'static,
    ) -> Result<CountResponse, Error> {
        let (response, _) =
            self.streaming(requests, |mut client, request| async move { client.count(request).await }).await?;
        Ok(response)
    }

    /// Server-streaming `Scan`: the occurrences in one text, streamed as
    /// found. Never retried.
    ///
    /// # Errors
    /// See [`Error`]; the responses end at the deadline with
    /// [`Error::DeadlineExceeded`].
    pub async fn scan(&self, request: ScanRequest) -> Result<Responses<ScanResponse>, Error> {
        let (stream, deadline) =
            self.streaming(request, |mut client, request| async move { client.scan(request).await }).await?;
        Ok(Responses::new(stream, deadline, self.clone()))
    }
}

/// `message` as a request carrying what is left before `deadline` as its
/// `grpc-timeout`.
fn with_timeout<M>(message: M, deadline: Instant) -> Request<M> {
    let mut request = Request::new(message);
    request.set_timeout(deadline.saturating_duration_since(Instant::now()));
    request
}

/// The responses of a streaming call, ended by the call's deadline on this
/// side too (the server ends it there as well, from `grpc-timeout`).
pub struct Responses<T> {
    inner: Streaming<T>,
    deadline: Pin<Box<Sleep>>,
    client: Client,
    done: bool,
}

impl<T> fmt::Debug for Responses<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responses").field("done", &self.done).finish_non_exhaustive()
    }
}

impl<T> Responses<T> {
    fn new(inner: Streaming<T>, deadline: Instant, client: Client) -> Self {
        Self { inner, deadline: Box::pin(sleep_until(deadline)), client, done: false }
    }

    /// The next response, `None` at the end of the stream.
    ///
    /// # Errors
    /// The status the call ended with, or [`Error::DeadlineExceeded`].
    pub async fn message(&mut self) -> Result<Option<T>, Error> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await.transpose()
    }
}

impl<T> Stream for Responses<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.done = true;
            return Poll::Ready(Some(Err(this.client.deadline_exceeded(1, None))));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Err(status))) => {
                this.done = true;
                Poll::Ready(Some(Err(this.client.failed(status, 1, None))))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            other => other.map(|item| item.map(|result| result.map_err(Error::Rpc))),
        }
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
