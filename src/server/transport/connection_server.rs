//! Serving each connection on hyper (HTTP/2, or HTTP/1.1 for the web
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

use super::activity::{Activity, ConnectionActivity};
use super::connection::Connection;
use super::linger::Lingering;
use crate::server::config::ServerConfig;

/// The server of every accepted connection: each is served on hyper in a
/// task of its own, with the HTTP settings, the service stack built for it
/// (knowing its connection) and the bounds on its life.
pub(in crate::server) struct ConnectionServer<M> {
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

/// Streams the client reset before the server took them that h2 lets wait
/// to be taken at once (its default: 20, past which it closes the
/// connection). An overloaded server reads late, and then finds, in one
/// read, thousands of calls that their clients cancelled at their deadline
/// while they waited: overload, not an attack, and closing the connection
/// would fail every call on it. Such a stream costs the server its header
/// block and a few hundred bytes until the read ends, never a handler. The
/// reset budget (`resets.rs`) judges those resets by their share of all
/// the streams the client opened (from 500 on, as Envoy's premature-reset
/// rule does), so a flood is closed long before this bound, which only
/// caps what one read can make h2 hold (a few MiB).
const PENDING_ACCEPT_RESETS: usize = 16 << 10;

/// The largest share of `--max-connection-age` taken off at random.
const AGE_JITTER: f64 = 0.1;

impl<M, S> ConnectionServer<M>
where
    M: Fn(ConnectionActivity) -> S + Send + Sync + 'static,
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    /// Serving the stack `make` builds for each connection, with the
    /// settings of `config`, until `drain`.
    pub(in crate::server) fn new(config: &ServerConfig, make: M, drain: CancellationToken) -> Arc<Self> {
        let mut http = Builder::new(TokioExecutor::new());
        // hyper enforces the HTTP/1.1 header read timeout only with a timer.
        // A request head (request line and headers, as sent) must fit the
        // read buffer; past it, 431 and the connection closes. hyper-util's
        // builder offers no limit of the head alone, and the buffer none
        // under 8 KiB.
        http.http1().timer(TokioTimer::new()).max_buf_size(http1_max_buf_size(config.max_header_bytes));
        http.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(config.max_concurrent_streams)
            .max_pending_accept_reset_streams(PENDING_ACCEPT_RESETS)
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
        self.tasks.spawn(async move { this.serve_connection(connection).await });
    }

    /// Waits for every connection to close (after a drain).
    pub(in crate::server) async fn closed(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn serve_connection(&self, mut connection: Connection) {
        // Formatted once here, not in every call's log line.
        let activity = Arc::new(Activity::new(connection.peer_addr().map(|addr| addr.to_string()), connection.peer()));
        let service = PerConnection { inner: Mutex::new((self.make)(ConnectionActivity::new(Arc::clone(&activity)))) };
        // A drain's GOAWAY waits for the connection's first word: before it,
        // hyper would close the connection unread, losing a call its client
        // has already sent (as on a connection taken from the listen queue
        // as the drain began).
        let said = connection.first_word_said();
        let drained = async {
            self.drain.cancelled().await;
            said.await;
        };
        tokio::pin!(drained);
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
                () = &mut drained, if !going_away => ("drain", false),
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

/// hyper's smallest HTTP/1.1 read buffer.
const HTTP1_MIN_BUF: usize = 8 << 10;

/// The HTTP/1.1 read buffer that holds a request head of `max_header_bytes`
/// and no more (at least hyper's smallest).
fn http1_max_buf_size(max_header_bytes: u32) -> usize {
    usize::try_from(max_header_bytes).unwrap_or(usize::MAX).max(HTTP1_MIN_BUF)
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
