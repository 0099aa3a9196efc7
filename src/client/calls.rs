//! One method per RPC of `search.v1.SearchService`, and the two ways a call
//! runs: unary, under its deadline, hedged or retried as the contract and
//! the options allow; streaming, under its deadline, never retried.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, timeout_at};
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::failure::Failure;
use super::replay::Replay;
use super::responses::Responses;
use super::{Client, ConnectivityState, Error, Event, Subchannel, retry};
use crate::pb::v1::search_service_client::SearchServiceClient;
use crate::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};
use crate::rpc::{CLASSIFY_PATH, COUNT_PATH, LEGACY_SEARCH_PATH, SCAN_PATH, SEARCH_PATH};
use crate::traces::{AttemptSpan, CallSpan, StreamSpans, TRACEPARENT, TRACESTATE};

/// One attempt of a unary call, while it runs.
struct Attempt {
    /// 1 for the first; hedges and retries count on.
    number: u32,
    sub: Arc<Subchannel>,
    /// The subchannel's transport it went on.
    transport: u64,
    started: Instant,
    /// Its span, when tracing is on: ended when the attempt is dropped.
    span: Option<AttemptSpan>,
}

/// The attempts of one call running at once (a few: hedges at most).
struct Running<Fut> {
    attempts: Vec<(Attempt, Pin<Box<Fut>>)>,
}

impl<Fut: Future> Running<Fut> {
    fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }

    /// The next attempt to end, and how.
    fn next(&mut self) -> impl Future<Output = (Attempt, Fut::Output)> + '_ {
        std::future::poll_fn(move |cx| {
            for i in 0..self.attempts.len() {
                if let Poll::Ready(ended) = self.attempts[i].1.as_mut().poll(cx) {
                    let (attempt, _) = self.attempts.swap_remove(i);
                    return Poll::Ready((attempt, ended));
                }
            }
            Poll::Pending
        })
    }

    /// The attempts still running, which are cancelled when this is
    /// dropped (each sends RST_STREAM CANCEL): those that had run for at
    /// least `slow` count as failures of their subchannel (see outlier.rs).
    fn abandon(self, slow: Duration) {
        for (attempt, _) in &self.attempts {
            if attempt.started.elapsed() >= slow {
                attempt.sub.outlier.failure();
            }
        }
    }
}

/// What goes out next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// An attempt: the first, a retry, or one sent again because the last
    /// never reached a server.
    Attempt,
    /// A hedge beside the attempts running.
    Hedge,
}

impl Client {
    /// Runs a unary call under its deadline. A method the contract marks
    /// side-effect free is hedged when hedging is on (gRFC A6): after the
    /// hedging delay without an answer, another attempt goes to a different
    /// READY subchannel (while the retry budget holds), the first answer
    /// wins and the others are cancelled. An attempt of a method marked
    /// safe that fails UNAVAILABLE, or could not connect, is retried within
    /// the retry policy's attempts and the budget: at once when hedging and
    /// another READY subchannel can take it, else after a backoff
    /// (`max_attempts` 1, no retries, leaves only the hedges). Never past
    /// the deadline; with `wait_for_ready`, a call that could not be sent
    /// waits for the server.
    ///
    /// A call that never reached a server (its subchannel could not connect,
    /// or the server refused the stream unprocessed) is sent again at once
    /// on another subchannel whatever the method and the attempts left, as
    /// grpc's transparent retries do: at most once per subchannel.
    async fn unary<M: Clone, T, F, Fut>(&self, method: &str, message: &M, attempt: F) -> Result<T, Error>
    where
        F: FnMut(Channel, Request<M>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let Some(span) = CallSpan::start(method) else {
            return self.attempts(method, message, attempt, None).await;
        };
        let result = self.attempts(method, message, attempt, Some(&span)).await;
        span.end(result.as_ref().map_or_else(Error::code, |_| Some(Code::Ok)));
        result
    }

    /// The attempts of [`Client::unary`], each under `span` when traced.
    async fn attempts<M: Clone, T, F, Fut>(
        &self,
        method: &str,
        message: &M,
        mut attempt: F,
        span: Option<&CallSpan>,
    ) -> Result<T, Error>
    where
        F: FnMut(Channel, Request<M>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let began = Instant::now();
        let deadline = began + self.options.timeout;
        let hedging = self.options.hedging.filter(|_| retry::is_side_effect_free(method));
        // Hedges (on a timer) and retries (after a failure) have limits of
        // their own: hedging's attempts, and the retry policy's.
        let hedge_limit = hedging.map_or(1, |hedging| hedging.max_attempts.max(1));
        let retry_limit = if retry::is_safe(method) { self.options.max_attempts } else { 1 };
        // An attempt that lost to a hedge after this long was slow; without
        // hedging every abandoned attempt was.
        let slow = if hedging.is_some() { self.hedge_delay.get() } else { Duration::ZERO };
        let mut running = Running { attempts: Vec::new() };
        // The subchannels this call went to: later attempts go elsewhere.
        let mut tried: Vec<Arc<Subchannel>> = Vec::new();
        let mut sent = 0u32;
        let mut retried = 0u32;
        let mut transparent = 0;
        // Whether the next attempt sends again a call the server never took.
        let mut resending = false;
        let mut next = Some((began, Next::Attempt));
        // How the previous attempt ended, for the deadline's message.
        let mut last: Option<String> = None;
        self.stats.call();
        loop {
            if self.connectivity.state() == ConnectivityState::Shutdown {
                return Err(Error::Shutdown);
            }
            if let Some((at, kind)) = next.filter(|(at, _)| *at <= Instant::now()) {
                next = None;
                let sub = match kind {
                    Next::Hedge if sent >= hedge_limit || !self.budget.allows() => None,
                    // No other READY subchannel now: look again after a delay.
                    Next::Hedge => self.balancer.pick_hedge(&tried).or_else(|| {
                        next = Some((Instant::now() + self.hedge_delay.get(), Next::Hedge));
                        None
                    }),
                    Next::Attempt => match timeout_at(deadline, self.balancer.pick_avoiding(&tried)).await {
                        Err(_) => return Err(self.deadline_exceeded(sent.max(1), last)),
                        Ok(Ok(sub)) => Some(sub),
                        // Attempts still running may yet answer.
                        Ok(Err(_)) if !running.is_empty() => None,
                        Ok(Err(err)) if !self.options.wait_for_ready => return Err(err),
                        Ok(Err(err)) => {
                            let delay = self.options.backoff.delay(sent.max(1));
                            if Instant::now() + delay >= deadline {
                                return Err(self.deadline_exceeded(sent.max(1), Some(err.to_string())));
                            }
                            last = Some(err.to_string());
                            next = Some((Instant::now() + delay, Next::Attempt));
                            None
                        }
                    },
                };
                if let Some(sub) = sub {
                    sent += 1;
                    self.stats.attempt();
                    if kind == Next::Hedge {
                        self.stats.hedge();
                        if self.balancer.watched() {
                            let (method, address) = (method.to_owned(), sub.address.to_string());
                            self.balancer.emit(&Event::Hedge { method, attempt: sent, address, after: at - began });
                        }
                    }
                    let mut request = with_timeout(message.clone(), deadline);
                    let span = span.map(|span| {
                        let previous = tried.len() as u32;
                        let attempt = span.attempt(previous, &sub.address.to_string(), resending, kind == Next::Hedge);
                        send_context(&mut request, &attempt);
                        attempt
                    });
                    resending = false;
                    let (transport, channel) = sub.channel();
                    let call = Box::pin(attempt(channel, request));
                    tried.push(Arc::clone(&sub));
                    let started = Instant::now();
                    running.attempts.push((Attempt { number: sent, sub, transport, started, span }, call));
                    if hedging.is_some() && sent < hedge_limit {
                        next = Some((Instant::now() + self.hedge_delay.get(), Next::Hedge));
                    }
                }
            }
            let wake = next.map(|(at, _)| at);
            let (mut done, ended) = tokio::select! {
                biased;
                ended = running.next(), if !running.is_empty() => ended,
                () = tokio::time::sleep_until(wake.unwrap_or(deadline)), if wake.is_some() => continue,
                () = tokio::time::sleep_until(deadline) => {
                    running.abandon(slow);
                    return Err(self.deadline_exceeded(sent.max(1), last));
                }
            };
            let took = done.started.elapsed();
            self.stats.attempt_took(took);
            if let Some(span) = done.span.as_mut() {
                span.ended(Some(ended.as_ref().map_or_else(Status::code, |_| Code::Ok)));
            }
            let status = match ended {
                Ok(value) => {
                    done.sub.connectivity.mark_answered();
                    done.sub.outlier.success();
                    self.budget.succeeded();
                    self.hedge_delay.answered(took);
                    if done.number > 1 && hedging.is_some() {
                        self.stats.hedge_won();
                    }
                    running.abandon(slow);
                    return Ok(value);
                }
                Err(status) => status,
            };
            let failure = self.failure(&status, &done.sub);
            if matches!(failure, Failure::Deadline) {
                done.sub.outlier.failure();
                running.abandon(slow);
                return Err(self.deadline_exceeded(sent, last));
            }
            if matches!(failure, Failure::GoingAway(_)) {
                done.sub.renew(done.transport);
            }
            let not_sent = failure.not_sent();
            if not_sent && transparent < self.balancer.len() && Instant::now() < deadline {
                // Not an attempt of the call's: the server never had it.
                transparent += 1;
                sent -= 1;
                let error = self.failed(status, &done.sub, sent + 1, None);
                self.resent(method, &done.sub, &error);
                last = Some(error.to_string());
                next = Some((Instant::now(), Next::Attempt));
                resending = true;
                continue;
            }
            if !not_sent {
                done.sub.outlier.failure();
            }
            if matches!(failure, Failure::Status) && std::error::Error::source(&status).is_none() {
                done.sub.connectivity.mark_answered();
            }
            let transient = not_sent || matches!(failure, Failure::Unanswered(_)) || status.code() == Code::Unavailable;
            // Attempts after a failure are retries, under hedging too:
            // `max_attempts` of the retry policy bounds them (1: none).
            let again = if not_sent && self.options.wait_for_ready {
                true
            } else {
                transient && retried + 1 < retry_limit && self.budget.failed()
            };
            let error = self.failed(status, &done.sub, sent, last.take());
            if again {
                let error = error.to_string();
                // Hedging sends the next attempt at once when another
                // subchannel can take it (gRFC A6); a retry, or one with
                // nowhere else to go, backs off first.
                let elsewhere = hedging.is_some() && self.balancer.has_ready(&tried);
                let delay = if elsewhere { Duration::ZERO } else { self.options.backoff.delay(retried + 1) };
                if Instant::now() + delay >= deadline && running.is_empty() {
                    return Err(self.deadline_exceeded(sent, Some(error)));
                }
                tracing::debug!(method, attempts = sent, ?delay, error, "retrying");
                retried += 1;
                last = Some(error);
                next = Some((Instant::now() + delay, Next::Attempt));
                continue;
            }
            if transient && !running.is_empty() {
                // Another attempt may still answer.
                last = Some(error.to_string());
                continue;
            }
            running.abandon(slow);
            return Err(error);
        }
    }

    /// Starts a streaming call: waits for readiness if asked, sends the
    /// deadline, and maps a call that could not be sent to [`Error::Connect`].
    /// A call the server never took (it was not sent, refused unprocessed,
    /// or past a GOAWAY's last stream) is sent again at once, elsewhere when
    /// another subchannel can take it, with every request message sent so
    /// far (`request` gives them again; `None` once the call is committed):
    /// grpc's transparent retry, once per subchannel. Once the server answers
    /// the call is the server's, and never sent again.
    async fn streaming<R, T, Fut>(
        &self,
        method: &str,
        request: impl FnMut() -> Option<R>,
        call: impl Fn(SearchServiceClient<Channel>, Request<R>) -> Fut,
    ) -> Result<(T, Instant, Arc<Subchannel>, Option<StreamSpans>), Error>
    where
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let Some(span) = CallSpan::start(method) else {
            let (answer, deadline, sub, _) = self.stream_attempts(method, request, call, None).await?;
            return Ok((answer, deadline, sub, None));
        };
        match self.stream_attempts(method, request, call, Some(&span)).await {
            Ok((answer, deadline, sub, attempt)) => {
                Ok((answer, deadline, sub, attempt.map(|attempt| StreamSpans { call: span, attempt })))
            }
            Err(err) => {
                span.end(err.code());
                Err(err)
            }
        }
    }

    /// The attempts of [`Client::streaming`], each under `span` when
    /// traced; the answered one's span is returned, to end with the call.
    async fn stream_attempts<R, T, Fut>(
        &self,
        method: &str,
        mut request: impl FnMut() -> Option<R>,
        call: impl Fn(SearchServiceClient<Channel>, Request<R>) -> Fut,
        span: Option<&CallSpan>,
    ) -> Result<(T, Instant, Arc<Subchannel>, Option<AttemptSpan>), Error>
    where
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        if self.connectivity.state() == ConnectivityState::Shutdown {
            return Err(Error::Shutdown);
        }
        let deadline = Instant::now() + self.options.timeout;
        self.ready(deadline).await?;
        self.stats.call();
        let mut tried: Vec<Arc<Subchannel>> = Vec::new();
        let mut next = request();
        // Each attempt has its messages: the first's always, a later one's
        // only while the call is not committed (checked before it starts).
        while let Some(message) = next.take() {
            self.stats.attempt();
            let sub = timeout_at(deadline, self.balancer.pick_avoiding(&tried))
                .await
                .map_err(|_| self.deadline_exceeded(1, None))??;
            let (transport, channel) = sub.channel();
            let mut sending = with_timeout(message, deadline);
            let mut attempt = span.map(|span| {
                let attempt = span.attempt(tried.len() as u32, &sub.address.to_string(), !tried.is_empty(), false);
                send_context(&mut sending, &attempt);
                attempt
            });
            let status = match timeout_at(deadline, call(self.grpc(channel), sending)).await {
                Err(_) => {
                    sub.outlier.failure();
                    return Err(self.deadline_exceeded(1, None));
                }
                Ok(Ok(response)) => {
                    sub.connectivity.mark_answered();
                    return Ok((response.into_inner(), deadline, sub, attempt));
                }
                Ok(Err(status)) => status,
            };
            if let Some(attempt) = attempt.as_mut() {
                attempt.ended(Some(status.code()));
            }
            let failure = self.failure(&status, &sub);
            if matches!(failure, Failure::GoingAway(_)) {
                sub.renew(transport);
            }
            let not_sent = failure.not_sent();
            let error = self.failed(status, &sub, 1, None);
            if !not_sent {
                sub.outlier.failure();
            }
            let again = not_sent && tried.len() < self.balancer.len() && Instant::now() < deadline;
            // The messages again, unless the call outgrew its retry buffer.
            next = if again { request() } else { None };
            if next.is_none() {
                return Err(error);
            }
            self.resent(method, &sub, &error);
            tried.push(sub);
        }
        Err(Error::Protocol("a streaming call had no request to send".into()))
    }

    /// A call that `sub`'s server never took goes out again: counted, and
    /// shown by `-v`.
    fn resent(&self, method: &str, sub: &Subchannel, error: &Error) {
        self.stats.resent();
        tracing::debug!(method, error = %error, "sending again (the server never took the call)");
        if self.balancer.watched() {
            let (method, address, why) = (method.to_owned(), sub.address.to_string(), error.to_string());
            self.balancer.emit(&Event::Resent { method, address, why });
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
        let replay = self.replay(requests);
        let call = |mut client: SearchServiceClient<Channel>, request| async move { client.classify(request).await };
        let (stream, deadline, sub, spans) = self.streaming(CLASSIFY_PATH, || replay.attempt(), call).await?;
        // Answered: the server has the call, which is never sent again.
        replay.commit();
        Ok(Responses::new(stream, deadline, self.clone(), sub, spans))
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
        let replay = self.replay(requests);
        let call = |mut client: SearchServiceClient<Channel>, request| async move { client.count(request).await };
        let (response, _, sub, spans) = self.streaming(COUNT_PATH, || replay.attempt(), call).await?;
        sub.outlier.success();
        if let Some(spans) = spans {
            spans.end(Some(Code::Ok));
        }
        Ok(response)
    }

    /// Server-streaming `Scan`: the occurrences in one text, streamed as
    /// found. Never retried.
    ///
    /// # Errors
    /// See [`Error`]; the responses end at the deadline with
    /// [`Error::DeadlineExceeded`].
    pub async fn scan(&self, request: ScanRequest) -> Result<Responses<ScanResponse>, Error> {
        let call = |mut client: SearchServiceClient<Channel>, request| async move { client.scan(request).await };
        let (stream, deadline, sub, spans) = self.streaming(SCAN_PATH, || Some(request.clone()), call).await?;
        Ok(Responses::new(stream, deadline, self.clone(), sub, spans))
    }

    /// The retry buffer of a streaming call sending `requests`.
    fn replay<S>(&self, requests: S) -> Replay<S>
    where
        S: Stream + Send + 'static,
        S::Item: prost::Message + Clone,
    {
        Replay::new(requests, self.options.retry_buffer, Arc::clone(&self.retry_bytes))
    }
}

/// Sends the trace context of `attempt` with `request`: `traceparent`
/// naming the attempt's span, and `tracestate` when the trace has one.
fn send_context<M>(request: &mut Request<M>, attempt: &AttemptSpan) {
    let Some((parent, state)) = attempt.headers() else { return };
    let metadata = request.metadata_mut();
    if let Ok(value) = parent.parse() {
        metadata.insert(TRACEPARENT, value);
    }
    if let Some(value) = state.and_then(|state| state.parse().ok()) {
        metadata.insert(TRACESTATE, value);
    }
}

/// `message` as a request carrying what is left before `deadline` as its
/// `grpc-timeout`.
pub(super) fn with_timeout<M>(message: M, deadline: Instant) -> Request<M> {
    let mut request = Request::new(message);
    request.set_timeout(deadline.saturating_duration_since(Instant::now()));
    request
}
