//! One method per RPC of `search.v1.SearchService`, and the two ways a call
//! runs: unary, under its deadline with retries of what is safe to retry;
//! streaming, under its deadline, never retried.

use std::future::Future;
use std::sync::Arc;

use tokio::time::{Instant, timeout_at};
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::failure::Failure;
use super::responses::Responses;
use super::{Client, ConnectivityState, Error, Subchannel, retry};
use crate::pb::v1::search_service_client::SearchServiceClient;
use crate::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};
use crate::rpc::{LEGACY_SEARCH_PATH, SEARCH_PATH};

impl Client {
    /// Runs a unary call under its deadline, retrying while it is safe:
    /// the method is marked side-effect free in the contract, the attempt
    /// ended UNAVAILABLE or could not be sent, attempts and the retry budget
    /// remain, and the backoff ends before the deadline. With
    /// `wait_for_ready`, a call that could not be sent waits for the server.
    ///
    /// A call that never reached a server (its subchannel could not connect,
    /// or the server refused the stream unprocessed) is retried at once on
    /// another subchannel whatever the method and the attempts left, as
    /// grpc's transparent retries do: at most once per subchannel.
    async fn unary<M: Clone, T, F, Fut>(&self, method: &str, message: &M, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(Channel, Request<M>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + self.options.timeout;
        let safe = retry::is_safe(method);
        let mut attempts = 0;
        let mut transparent = 0;
        // How the previous attempt ended, for the deadline's message.
        let mut last = None;
        self.stats.call();
        loop {
            if self.connectivity.state() == ConnectivityState::Shutdown {
                return Err(Error::Shutdown);
            }
            attempts += 1;
            // Each attempt picks again: a retry goes to another subchannel
            // when the last one failed.
            let sub = match timeout_at(deadline, self.balancer.pick()).await {
                Err(_) => return Err(self.deadline_exceeded(attempts, last)),
                Ok(Err(err)) if !self.options.wait_for_ready => return Err(err),
                Ok(Err(err)) => {
                    let delay = self.options.backoff.delay(attempts);
                    if Instant::now() + delay >= deadline {
                        return Err(self.deadline_exceeded(attempts, Some(err.to_string())));
                    }
                    last = Some(err.to_string());
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Ok(Ok(sub)) => sub,
            };
            self.stats.attempt();
            let started = Instant::now();
            let request = with_timeout(message.clone(), deadline);
            let ended = timeout_at(deadline, attempt(sub.channel.clone(), request)).await;
            self.stats.attempt_took(started.elapsed());
            let status = match ended {
                Err(_) => return Err(self.deadline_exceeded(attempts, last)),
                Ok(Ok(value)) => {
                    sub.connectivity.mark_answered();
                    self.budget.succeeded();
                    return Ok(value);
                }
                Ok(Err(status)) => status,
            };
            let failure = self.failure(&status, &sub);
            if matches!(failure, Failure::Status) && std::error::Error::source(&status).is_none() {
                sub.connectivity.mark_answered();
            }
            let not_sent = matches!(failure, Failure::NotSent(_));
            if not_sent && transparent < self.balancer.len() && Instant::now() < deadline {
                transparent += 1;
                attempts -= 1;
                let error = self.failed(status, &sub, attempts + 1, None).to_string();
                tracing::debug!(method, error, "retrying on another subchannel (the call was not sent)");
                last = Some(error);
                continue;
            }
            let transient = not_sent || matches!(failure, Failure::Unanswered(_)) || status.code() == Code::Unavailable;
            let retry = if not_sent && self.options.wait_for_ready {
                true
            } else {
                safe && transient && self.budget.failed() && attempts < self.options.max_attempts
            };
            if !retry {
                return Err(self.failed(status, &sub, attempts, last));
            }
            let error = self.failed(status, &sub, attempts, last.take()).to_string();
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
    ) -> Result<(T, Instant, Arc<Subchannel>), Error>
    where
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        if self.connectivity.state() == ConnectivityState::Shutdown {
            return Err(Error::Shutdown);
        }
        let deadline = Instant::now() + self.options.timeout;
        self.ready(deadline).await?;
        self.stats.call();
        self.stats.attempt();
        let sub = timeout_at(deadline, self.balancer.pick()).await.map_err(|_| self.deadline_exceeded(1, None))??;
        let client = self.grpc(sub.channel.clone());
        match timeout_at(deadline, call(client, with_timeout(message, deadline))).await {
            Err(_) => Err(self.deadline_exceeded(1, None)),
            Ok(Ok(response)) => {
                sub.connectivity.mark_answered();
                Ok((response.into_inner(), deadline, sub))
            }
            Ok(Err(status)) => Err(self.failed(status, &sub, 1, None)),
        }
    }

    /// Unary `Search`: does the query contain "banana"? Retried as the
    /// contract marks it side-effect free.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn search(&self, request: SearchRequest) -> Result<SearchResponse, Error> {
        self.unary(SEARCH_PATH, &request, |channel, request| {
            let mut client = self.grpc(channel);
            async move { client.search(request).await.map(tonic::Response::into_inner) }
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
        self.unary(LEGACY_SEARCH_PATH, &request, |channel, request| {
            let mut grpc = tonic::client::Grpc::new(channel);
            for encoding in super::ACCEPTED {
                grpc = grpc.accept_compressed(encoding);
            }
            if let Some(compression) = self.options.compression {
                grpc = grpc.send_compressed(compression.encoding());
            }
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
        let (stream, deadline, sub) =
            self.streaming(requests, |mut client, request| async move { client.classify(request).await }).await?;
        Ok(Responses::new(stream, deadline, self.clone(), sub))
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
        let (response, _, _) =
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
        let (stream, deadline, sub) =
            self.streaming(request, |mut client, request| async move { client.scan(request).await }).await?;
        Ok(Responses::new(stream, deadline, self.clone(), sub))
    }
}

/// `message` as a request carrying what is left before `deadline` as its
/// `grpc-timeout`.
pub(super) fn with_timeout<M>(message: M, deadline: Instant) -> Request<M> {
    let mut request = Request::new(message);
    request.set_timeout(deadline.saturating_duration_since(Instant::now()));
    request
}
