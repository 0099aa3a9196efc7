//! The attempt loop: every call, unary or streaming, runs here under its
//! deadline. Each turn sends what is due (the first attempt, a hedge, a
//! retry, or the call again where the server never had it), waits for the
//! first of an attempt's end, the next timer or the deadline, and asks
//! `rules.rs` what follows a failure. What each attempt's end means for the
//! subchannel (outlier detection's counts, a connection that answered, a
//! transport to renew) and for the client (its counts, the hedging delay,
//! the retry budget, `-v`'s events, the spans) is recorded here too.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep_until, timeout_at};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::caller::{Caller, send_context, with_timeout};
use super::failure::Failure;
use super::rules::{After, Counts, Failed, Kind, Rules};
use super::running::{Answer, Attempt, first};
use crate::client::Error;
use crate::client::channel::{CallRoute, ConnectivityState, Event, Subchannel};
use crate::traces::{AttemptSpan, CallSpan, StreamSpans};

/// The attempt that answered a call.
pub(in crate::client) struct Answered<T> {
    /// Its answer: a unary call's response; a streaming call's stream.
    pub(in crate::client) value: T,
    /// The call's deadline.
    pub(in crate::client) deadline: Instant,
    /// The subchannel it went to.
    pub(in crate::client) sub: Arc<Subchannel>,
    /// A streaming call's spans, to end with its stream (a unary call's
    /// ended with it).
    pub(in crate::client) spans: Option<StreamSpans>,
    /// A streaming call's answered attempt's span, until it joins `spans`.
    pub(super) attempt: Option<AttemptSpan>,
}

/// What goes out next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// An attempt: the first, a retry, or the call sent again.
    Attempt,
    /// A hedge beside the attempts running.
    Hedge,
}

/// One call under way: its rules, what it did so far, its attempts.
pub(super) struct Call<'a, R, M, A, Fut> {
    caller: &'a Caller,
    path: &'static str,
    kind: Kind,
    rules: Rules,
    counts: Counts,
    began: Instant,
    deadline: Instant,
    /// An attempt abandoned after running this long was slow (see
    /// [`Call::abandon`]).
    slow: Duration,
    running: Vec<(Attempt, Pin<Box<Fut>>)>,
    /// The subchannels the call went to: later attempts go elsewhere.
    tried: Vec<Arc<Subchannel>>,
    /// Where the call goes under xDS (its cluster, chosen once).
    route: CallRoute,
    next: Option<(Instant, Next)>,
    /// The message of the next attempt, taken when it was decided on.
    pending: Option<R>,
    /// Whether the next attempt sends again a call the server never took.
    resending: bool,
    /// How the previous attempt ended, for the deadline's message.
    last: Option<String>,
    message: M,
    attempt: A,
    span: Option<&'a CallSpan>,
}

impl<'a, R, T, M, A, Fut> Call<'a, R, M, A, Fut>
where
    M: FnMut() -> Option<R>,
    A: FnMut(Channel, Request<R>) -> Fut,
    T: Answer,
    Fut: Future<Output = Result<T, Status>>,
{
    pub(super) fn new(
        caller: &'a Caller,
        path: &'static str,
        kind: Kind,
        message: M,
        attempt: A,
        span: Option<&'a CallSpan>,
    ) -> Self {
        let settings = caller.settings();
        let rules = Rules::new(path, kind, settings.hedging, settings.max_attempts, settings.wait_for_ready);
        let began = Instant::now();
        Self {
            caller,
            path,
            kind,
            // Without hedging, every abandoned attempt was slow.
            slow: if rules.hedged() { caller.hedge_delay.get() } else { Duration::ZERO },
            rules,
            counts: Counts::default(),
            began,
            deadline: began + settings.timeout,
            running: Vec::new(),
            tried: Vec::new(),
            route: CallRoute::call(path, &settings.metadata.headers()),
            next: Some((began, Next::Attempt)),
            pending: None,
            resending: false,
            last: None,
            message,
            attempt,
            span,
        }
    }

    /// The loop: send what is due, wait for what comes first, follow it.
    pub(super) async fn run(mut self) -> Result<Answered<T>, Error> {
        // A call may end without waiting on anything (dropped by xDS, the
        // throttle): a loop of such calls still gives the runtime's other
        // tasks their turn (tokio's cooperative budget).
        tokio::task::coop::consume_budget().await;
        self.caller.stats.call();
        loop {
            if self.caller.channel.state() == ConnectivityState::Shutdown {
                return Err(Error::Shutdown);
            }
            if let Some((at, next)) = self.next.filter(|(at, _)| *at <= Instant::now()) {
                self.next = None;
                self.send(at, next).await?;
            }
            let (wake, deadline) = (self.next.map(|(at, _)| at), self.deadline);
            let (done, ended) = tokio::select! {
                biased;
                ended = first(&mut self.running), if !self.running.is_empty() => ended,
                () = sleep_until(wake.unwrap_or(deadline)), if wake.is_some() => continue,
                () = sleep_until(deadline) => {
                    self.caller.throttle_ended(false, self.running.len());
                    self.abandon();
                    let last = self.last.take();
                    return Err(self.out_of_time(self.counts.sent.max(1), last));
                }
            };
            if let Some(end) = self.ended(done, ended) {
                return end;
            }
        }
    }

    /// Sends the attempt or hedge due since `at`, if a subchannel can take it.
    async fn send(&mut self, at: Instant, next: Next) -> Result<(), Error> {
        let Some(sub) = self.pick(next).await? else { return Ok(()) };
        self.deadline = self.route.capped(self.began, self.deadline);
        self.rules.follow(self.route.retry_policy());
        if !self.caller.throttle_admits(!self.running.is_empty())? {
            return Ok(());
        }
        let message = match next {
            Next::Attempt => self.pending.take().or_else(|| (self.message)()),
            Next::Hedge => (self.message)(),
        };
        let Some(message) = message else {
            return Err(Error::Protocol("a streaming call had no request to send".into()));
        };
        self.counts.sent += 1;
        self.caller.stats.attempt();
        if next == Next::Hedge {
            self.caller.stats.hedge();
            if self.caller.channel.watched() {
                let (method, address) = (self.path.to_owned(), sub.address.to_string());
                let after = at - self.began;
                self.caller.channel.emit(&Event::Hedge { method, attempt: self.counts.sent, address, after });
            }
        }
        let mut request = with_timeout(message, self.deadline);
        if let Some(token) = &self.caller.settings().token {
            token.authorize(&mut request);
        }
        self.caller.settings().metadata.apply(&mut request);
        let span = self.span.map(|span| {
            let previous = self.tried.len() as u32;
            let attempt = span.attempt(previous, &sub.address.to_string(), self.resending, next == Next::Hedge);
            send_context(&mut request, &attempt);
            attempt
        });
        self.resending = false;
        let (transport, channel) = sub.channel();
        let call = Box::pin((self.attempt)(channel, request));
        self.tried.push(Arc::clone(&sub));
        let attempt = Attempt { number: self.counts.sent, sub, transport, started: Instant::now(), span };
        self.running.push((attempt, call));
        if self.rules.hedge_follows(self.counts) {
            self.next = Some((Instant::now() + self.caller.hedge_delay.get(), Next::Hedge));
        }
        Ok(())
    }

    /// The subchannel for what is due: a hedge goes only to a READY one the
    /// call has not been to (looked for again after the hedging delay); an
    /// attempt to the policy's pick. `None`: nothing goes out now.
    async fn pick(&mut self, next: Next) -> Result<Option<Arc<Subchannel>>, Error> {
        let channel = &self.caller.channel;
        if next == Next::Hedge {
            if !self.rules.may_hedge(self.counts, || self.caller.budget.allows()) {
                return Ok(None);
            }
            let sub = channel.pick_hedge(&self.tried, &self.route);
            if sub.is_none() {
                self.next = Some((Instant::now() + self.caller.hedge_delay.get(), Next::Hedge));
            }
            return Ok(sub);
        }
        let wait_for_ready = self.caller.settings().wait_for_ready;
        match timeout_at(self.deadline, channel.pick_avoiding(&self.tried, wait_for_ready, &mut self.route)).await {
            Err(_) => {
                let last = self.last.take().or_else(|| Some(channel.why_not_ready()));
                Err(self.out_of_time(self.counts.sent.max(1), last))
            }
            Ok(Ok(sub)) => Ok(Some(sub)),
            // Attempts still running may yet answer.
            Ok(Err(_)) if !self.running.is_empty() => Ok(None),
            // The channel's verdict on the call itself (no such xDS
            // resource, no route, a circuit breaker), which no later
            // attempt would change, unlike a server that could not be reached.
            Ok(Err(err @ Error::Rpc(_))) => Err(err),
            Ok(Err(err)) => self.unsent(err).map(|()| None),
        }
    }

    /// No subchannel could take the call (every one has failed, or the name
    /// did not resolve): an attempt never sent, after which the rules say
    /// whether another follows, after a backoff (not at once: no subchannel
    /// would take it now).
    fn unsent(&mut self, err: Error) -> Result<(), Error> {
        self.counts.sent += 1;
        self.caller.stats.attempt();
        let failed = Failed { not_sent: true, deadline: false, code: Code::Unavailable };
        let (in_time, budget) = (Instant::now() < self.deadline, &self.caller.budget);
        if self.rules.after(&mut self.counts, failed, 0, in_time, false, || budget.failed()) != After::Retry {
            return Err(err);
        }
        let delay = self.rules.backoff(self.caller.settings().backoff).delay(self.counts.retried + 1);
        let error = err.to_string();
        if Instant::now() + delay >= self.deadline {
            return Err(self.out_of_time(self.counts.sent, Some(error)));
        }
        tracing::debug!(method = self.path, attempts = self.counts.sent, ?delay, %error, "retrying");
        self.counts.retried += 1;
        self.last = Some(error);
        self.next = Some((Instant::now() + delay, Next::Attempt));
        Ok(())
    }

    /// An attempt ended: the call's end, if this is it.
    fn ended(&mut self, mut done: Attempt, ended: Result<T, Status>) -> Option<Result<Answered<T>, Error>> {
        let took = done.started.elapsed();
        if self.kind == Kind::Unary {
            self.caller.stats.attempt_took(took);
        }
        let status = match ended {
            Ok(value) => {
                self.caller.throttle_ended(true, 1);
                self.caller.channel.load_reported(&done.sub, value.metadata());
                return Some(Ok(self.answered(done, value, took)));
            }
            Err(status) => status,
        };
        self.caller.channel.load_reported(&done.sub, status.metadata());
        if let Some(span) = done.span.as_mut() {
            span.ended(Some(status.code()));
        }
        let failure = self.caller.failure(&status, &done.sub);
        if matches!(failure, Failure::GoingAway(_)) {
            done.sub.renew(done.transport);
        }
        let failed = failure.read(status.code());
        if !failed.not_sent {
            self.caller.throttle_ended(failed.taken(), 1);
            done.sub.outlier.failure();
        }
        if matches!(failure, Failure::Status) && std::error::Error::source(&status).is_none() {
            done.sub.connectivity.mark_answered();
        }
        let (subchannels, in_time) = (self.caller.channel.len(), Instant::now() < self.deadline);
        let running = !self.running.is_empty();
        let budget = &self.caller.budget;
        match self.rules.after(&mut self.counts, failed, subchannels, in_time, running, || budget.failed()) {
            After::Deadline => {
                let last = self.last.take();
                let error = self.out_of_time(self.counts.sent, last);
                self.end(Err(error))
            }
            After::SendAgain => {
                let error = self.error(failure, status, self.counts.sent + 1, None);
                let Some(message) = (self.message)() else { return self.end(Err(error)) };
                self.caller.resent(self.path, &done.sub, &error);
                self.again(Instant::now(), message, &error, true);
                None
            }
            After::Retry => {
                let last = self.last.take();
                let error = self.error(failure, status, self.counts.sent, last);
                let (channel, backoff) = (&self.caller.channel, self.rules.backoff(self.caller.settings().backoff));
                let has_ready = || channel.has_ready(&self.tried, &self.route);
                let delay = self.rules.retry_delay(self.counts, has_ready, |n| backoff.delay(n));
                if Instant::now() + delay >= self.deadline && self.running.is_empty() {
                    return Some(Err(self.out_of_time(self.counts.sent, Some(error.to_string()))));
                }
                let Some(message) = (self.message)() else { return self.end(Err(error)) };
                tracing::debug!(method = self.path, attempts = self.counts.sent, ?delay, %error, "retrying");
                self.counts.retried += 1;
                self.again(Instant::now() + delay, message, &error, false);
                None
            }
            After::Wait => {
                let last = self.last.take();
                let error = self.error(failure, status, self.counts.sent, last);
                self.last = Some(error.to_string());
                None
            }
            After::Fail => {
                let last = self.last.take();
                let error = self.error(failure, status, self.counts.sent, last);
                self.end(Err(error))
            }
        }
    }

    /// The call ran out of time after `attempts` attempts: the error names
    /// its timeout (its xDS route's cap, when that was shorter).
    fn out_of_time(&self, attempts: u32, last: Option<String>) -> Error {
        Error::DeadlineExceeded { timeout: self.deadline - self.began, attempts, last }
    }

    /// The error the call ends with when an attempt failed as `failure`.
    fn error(&self, failure: Failure, status: Status, attempts: u32, last: Option<String>) -> Error {
        match failure {
            Failure::Deadline => self.out_of_time(attempts, last),
            failure => self.caller.error(failure, status, attempts, last),
        }
    }

    /// The call goes out again at `at` with `message` (a streaming call's
    /// messages so far, again), after an attempt that failed with `error`;
    /// `resending`: because the server never had it.
    fn again(&mut self, at: Instant, message: R, error: &Error, resending: bool) {
        self.pending = Some(message);
        self.resending = resending;
        self.last = Some(error.to_string());
        self.next = Some((at, Next::Attempt));
    }

    /// An attempt answered: the call's answer.
    fn answered(&mut self, mut done: Attempt, value: T, took: Duration) -> Answered<T> {
        done.sub.connectivity.mark_answered();
        if self.kind == Kind::Unary {
            done.sub.outlier.success();
            self.caller.budget.succeeded();
            self.caller.hedge_delay.answered(took);
            if done.number > 1 && self.rules.hedged() {
                self.caller.stats.hedge_won();
            }
            if let Some(span) = done.span.as_mut() {
                span.ended(Some(Code::Ok));
            }
        }
        self.abandon();
        let attempt = if self.kind == Kind::Streaming { done.span.take() } else { None };
        Answered { value, deadline: self.deadline, sub: done.sub, spans: None, attempt }
    }

    /// The call ends with `end`; the attempts still running are abandoned.
    fn end(&mut self, end: Result<Answered<T>, Error>) -> Option<Result<Answered<T>, Error>> {
        self.abandon();
        Some(end)
    }

    /// Cancels the attempts still running (each sends RST_STREAM CANCEL):
    /// those that had run for at least `slow` count as failures of their
    /// subchannel (see `channel/ejection.rs`).
    fn abandon(&mut self) {
        for (attempt, _) in self.running.drain(..) {
            if attempt.started.elapsed() >= self.slow {
                attempt.sub.outlier.failure();
            }
        }
    }
}
