//! Serving one connection on hyper (HTTP/2, or HTTP/1.1 for the web
//! protocols), with its life bounded by the server, not by the peer:
//!
//! - at `--max-connection-age` (less up to 10% at random, so that clients
//!   that connected together do not all reconnect together) the connection
//!   gets a GOAWAY, and is closed `--max-connection-age-grace` later if
//!   calls still hold it;
//! - after `--max-connection-idle` with no call in flight it gets a GOAWAY
//!   and closes (grpc-go's `MaxConnectionIdle`);
//! - on a drain, every connection gets a GOAWAY; the drain's own cut ends
//!   what is left (see `server/mod.rs`).
//!
//! A GOAWAY names the last stream the server took, so a call that crossed
//! it on the wire is refused unprocessed and the client retries it
//! elsewhere. On HTTP/1.1 the connection closes after the request at hand,
//! and a request body the server stopped reading is read on for a while
//! (`linger.rs`), so that the client sees the answer, not a broken pipe.
//!
//! tonic's transport server (checked) bounds a connection's age and grace,
//! without the jitter, and not its idle time; it also brings its own accept
//! loop and TLS, where this server has `accept.rs`. hyper sends the GOAWAY
//! (`graceful_shutdown`); when to send it is decided here.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::time::{Instant, sleep_until};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::body::Body;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

use super::accept::Connection;
use super::linger::Lingering;
use crate::server::config::ServerConfig;

/// What every connection is served with: the HTTP settings, the service
/// stack (built for each connection, knowing its peer) and the bounds on
/// its life.
pub(in crate::server) struct Serving<M> {
    http: Builder<TokioExecutor>,
    make: M,
    max_age: Duration,
    age_grace: Duration,
    max_idle: Duration,
    /// Cancelled when the server drains.
    drain: CancellationToken,
    /// The connections' tasks, so that the drain can wait for them.
    tasks: TaskTracker,
}

/// The largest share of `--max-connection-age` taken off at random.
const AGE_JITTER: f64 = 0.1;

impl<M, S> Serving<M>
where
    M: Fn(Peer) -> S + Send + Sync + 'static,
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    /// Serving the stack `make` builds for each connection, with the
    /// settings of `config`, until `drain`.
    pub(in crate::server) fn new(config: &ServerConfig, make: M, drain: CancellationToken) -> Arc<Self> {
        let mut http = Builder::new(TokioExecutor::new());
        // hyper enforces the HTTP/1.1 header read timeout only with a timer.
        http.http1().timer(TokioTimer::new());
        http.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(config.max_concurrent_streams)
            .max_header_list_size(config.max_header_bytes)
            .max_send_buf_size(config.max_send_buffer)
            .keep_alive_interval(config.keepalive_interval)
            .keep_alive_timeout(config.keepalive_timeout);
        Arc::new(Self {
            http,
            make,
            max_age: config.max_connection_age,
            age_grace: config.max_connection_age_grace,
            max_idle: config.max_connection_idle,
            drain,
            tasks: TaskTracker::new(),
        })
    }

    /// Serves `connection` in a task of its own.
    pub(in crate::server) fn spawn(self: &Arc<Self>, connection: Connection) {
        let this = Arc::clone(self);
        self.tasks.spawn(async move { this.serve(connection).await });
    }

    /// Waits for every connection to close (after a drain).
    pub(in crate::server) async fn closed(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn serve(&self, connection: Connection) {
        // Formatted once here, not in every call's log line.
        let activity = Arc::new(Activity::new(connection.peer_addr().map(|addr| addr.to_string())));
        let service = PerConnection { inner: Mutex::new((self.make)(Peer { activity: Arc::clone(&activity) })) };
        let served = self.http.serve_connection(TokioIo::new(connection), service);
        tokio::pin!(served);
        let jitter = 1.0 - AGE_JITTER * fastrand::f64();
        let aged = sleep_until(Instant::now() + self.max_age.mul_f64(jitter));
        tokio::pin!(aged);
        let idle = activity.idle_for(self.max_idle);
        tokio::pin!(idle);
        // Once the GOAWAY is sent: how long the calls still running may hold
        // the connection.
        let closing = tokio::time::sleep(Duration::MAX);
        tokio::pin!(closing);
        let mut going_away = false;
        loop {
            // Why the GOAWAY, and whether this loop closes the connection a
            // grace later (the drain has a grace and a cut of its own).
            let (why, closes) = tokio::select! {
                served = &mut served => {
                    if let Err(err) = served {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                    return;
                }
                () = &mut closing, if going_away => {
                    tracing::debug!(grace = ?self.age_grace, "calls still running after the GOAWAY: closing the connection");
                    return;
                }
                () = &mut aged, if !going_away => ("max-connection-age", true),
                () = &mut idle, if !going_away => ("max-connection-idle", true),
                () = self.drain.cancelled(), if !going_away => ("drain", false),
            };
            tracing::debug!(why, "GOAWAY");
            going_away = true;
            served.as_mut().graceful_shutdown();
            if closes {
                closing.as_mut().reset(Instant::now() + self.age_grace);
            }
        }
    }
}

/// What a connection's service stack knows of it: the peer's address (for
/// the log) and the connection's activity (each call holds it busy).
#[derive(Debug, Clone)]
pub(in crate::server) struct Peer {
    activity: Arc<Activity>,
}

impl Peer {
    /// Marks the connection busy until the returned guard is dropped.
    pub(in crate::server) fn busy(&self) -> Busy {
        self.activity.calls.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(&self.activity))
    }
}

/// The calls running on one connection, and since when it has had none.
#[derive(Debug)]
struct Activity {
    /// The peer's address, as the call log writes it.
    peer: Option<String>,
    /// When the connection was opened, the origin of `idle_since`.
    opened: Instant,
    calls: AtomicUsize,
    /// When the last call ended, in nanoseconds since `opened`.
    idle_since: AtomicU64,
}

impl Activity {
    fn new(peer: Option<String>) -> Self {
        Self { peer, opened: Instant::now(), calls: AtomicUsize::new(0), idle_since: AtomicU64::new(0) }
    }

    /// Resolves once the connection has had no call for `max`. Calls touch
    /// two atomics and no lock; this task looks at them when a deadline
    /// passes, moving the deadline on while the connection is busy.
    async fn idle_for(&self, max: Duration) {
        let mut deadline = self.opened + max;
        loop {
            sleep_until(deadline).await;
            if self.calls.load(Ordering::Acquire) > 0 {
                deadline = Instant::now() + max;
                continue;
            }
            let since = self.opened + Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
            // A call that started and ended while this slept moved the start
            // of the idle time on.
            if since + max <= Instant::now() {
                return;
            }
            deadline = since + max;
        }
    }
}

/// A call on a connection: while one is held, the connection is not idle.
#[derive(Debug)]
pub(in crate::server) struct Busy(Arc<Activity>);

impl Busy {
    /// The peer's address, when the connection has one (not a Unix socket's).
    pub(in crate::server) fn peer(&self) -> Option<&str> {
        self.0.peer.as_deref()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        // The idle time starts now; stored before the count drops, so the
        // idle task never sees no calls with an old start.
        let now = u64::try_from(activity.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        activity.idle_since.fetch_max(now, Ordering::AcqRel);
        activity.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The service of one connection, called in place: hyper calls it from the
/// connection's task, one request at a time, so the lock is never contended.
struct PerConnection<S> {
    inner: Mutex<S>,
}

impl<S> hyper::service::Service<Request<Incoming>> for PerConnection<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, Pin<Box<Oneshot<S, Request<Body>>>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let request = if request.version() < Version::HTTP_2 {
            // A body the server stops reading lingers (see linger.rs).
            request.map(|body| Body::new(Lingering::new(Body::new(body))))
        } else {
            request.map(Body::new)
        };
        // Poisoned only by a panic in a call: the stack itself is intact.
        let mut service = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // Ready at once (every service in the stack always is): called at
        // once; otherwise a clone waits to be ready.
        match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Either::Left(service.call(request)),
            _ => Either::Right(Box::pin(service.clone().oneshot(request))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_last_call_and_never_while_one_runs() {
        let activity = Arc::new(Activity::new(None));
        let peer = Peer { activity: Arc::clone(&activity) };
        let max = Duration::from_secs(10);
        let start = Instant::now();
        // A call from 5 s to 25 s: idle from 25 s, so done at 35 s.
        let call = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let busy = peer.busy();
            tokio::time::sleep(Duration::from_secs(20)).await;
            drop(busy);
        });
        activity.idle_for(max).await;
        assert_eq!(start.elapsed(), Duration::from_secs(35));
        call.await.expect("the call ran");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_with_no_call_is_idle_from_its_start() {
        let activity = Activity::new(None);
        let start = Instant::now();
        activity.idle_for(Duration::from_secs(7)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(7));
    }
}
