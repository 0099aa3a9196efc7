//! Serving until the shutdown future resolves, then the drain: health turns
//! NOT_SERVING for every service, the listening sockets close (the
//! connections already queued on them are served), every connection gets
//! its GOAWAY, and calls still running after the grace (`--grace`) are cut
//! with UNAVAILABLE; connections still open a moment later are abandoned.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::Service;

use super::calls::{CallPolicy, Search};
use super::transport::{Connection, ConnectionActivity, ConnectionServer};
use crate::pb::v1::search_service_server::SearchServiceServer;

/// How long connections get to close after the calls were cut.
const CLOSE_MARGIN: Duration = Duration::from_secs(1);

/// Health as it starts: SERVING for Search and for each of the `added`
/// services (the server as a whole is SERVING from the reporter's start).
pub(super) async fn health_serving(health: &HealthReporter, added: &[&'static str]) {
    health.set_serving::<SearchServiceServer<Search>>().await;
    for name in added {
        health.set_service_status(*name, ServingStatus::Serving).await;
    }
}

/// Waits for `shutdown`, then turns health NOT_SERVING (the server, Search
/// and the `added` services) and tells `started`, which starts the grace.
pub(super) async fn announce(
    shutdown: impl Future<Output = ()>,
    health: HealthReporter,
    added: Vec<&'static str>,
    grace: Duration,
    started: oneshot::Sender<()>,
) {
    shutdown.await;
    tracing::info!(grace = %humantime::format_duration(grace), "draining: NOT_SERVING, no new connections");
    health.set_service_status("", ServingStatus::NotServing).await;
    health.set_not_serving::<SearchServiceServer<Search>>().await;
    for name in added {
        health.set_service_status(name, ServingStatus::NotServing).await;
    }
    let _ = started.send(());
}

/// Serves each connection of `incoming` on `connections` until `drain`
/// resolves (or the listeners end); then `draining`: the listening sockets
/// close, once the connections queued on them are taken (served like any
/// other), every connection gets its GOAWAY, and this waits for them all.
pub(super) async fn serve_until<M, S>(
    mut incoming: mpsc::Receiver<Connection>,
    connections: Arc<ConnectionServer<M>>,
    drain: impl Future<Output = ()>,
    draining: CancellationToken,
) where
    M: Fn(ConnectionActivity) -> S + Send + Sync + 'static,
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    tokio::pin!(drain);
    loop {
        tokio::select! {
            () = &mut drain => break,
            connection = incoming.recv() => match connection {
                Some(connection) => connections.spawn(connection),
                None => break,
            },
        }
    }
    draining.cancel();
    // What the listening sockets still had queued, and the TLS handshakes
    // under way: until the last accepting task ends.
    while let Some(connection) = incoming.recv().await {
        connections.spawn(connection);
    }
    connections.closed().await;
}

/// The cut: once the drain has `started`, calls still running after the
/// `grace` end with UNAVAILABLE (`cut`); resolves a moment later, when the
/// connections still open are to be abandoned. Never, without a drain.
pub(super) async fn cut_after_grace(
    started: oneshot::Receiver<()>,
    grace: Duration,
    policy: Arc<CallPolicy>,
    cut: CancellationToken,
) {
    if started.await.is_err() {
        return std::future::pending().await;
    }
    tokio::time::sleep(grace).await;
    let calls = policy.in_flight();
    if calls > 0 {
        tracing::warn!(calls, "grace period over: cutting the calls still in flight");
    }
    cut.cancel();
    tokio::time::sleep(CLOSE_MARGIN).await;
}
