//! Client-side health checking, as gRFC A17 specifies it: on each
//! connection a subchannel makes, it calls `grpc.health.v1.Health/Watch`
//! for the service it calls, and takes calls only while the answer is
//! SERVING. Until the first answer the subchannel is CONNECTING (calls
//! queued for a new connection would otherwise all rush to a server that may
//! be about to say NOT_SERVING); any other answer makes it
//! TRANSIENT_FAILURE; a server without the health service (UNIMPLEMENTED)
//! is taken as healthy, as grpc does, and not asked again on that
//! connection; a watch that fails otherwise is called again with backoff,
//! at once after a watch that had answered. One difference from A17: a
//! watch that hears anything but SERVING is ended and made again after a
//! backoff (see [`Ended::Unhealthy`]).
//!
//! tonic-health provides the server and the generated client, not this
//! watcher: it is written here.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Code, Request, Streaming};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::connectivity::ConnectivityState;
use crate::client::backoff::Backoff;
use crate::client::error::describe_status;
use crate::client::token::BearerToken;

/// What the health service last said of a subchannel's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Health {
    /// Health checking is off.
    Unchecked = 0,
    /// Asked, no answer yet on this connection.
    Unknown = 1,
    /// SERVING.
    Serving = 2,
    /// NOT_SERVING, SERVICE_UNKNOWN or UNKNOWN.
    NotServing = 3,
    /// The server has no health service: healthy, as grpc takes it.
    Unimplemented = 4,
    /// The watch failed; asked again after a backoff.
    Failed = 5,
}

impl Health {
    /// Whether a READY connection with this health takes calls; `None`
    /// while the first answer is awaited.
    pub(super) fn takes_calls(self) -> Option<bool> {
        match self {
            Self::Unchecked | Self::Serving | Self::Unimplemented => Some(true),
            Self::Unknown => None,
            Self::NotServing | Self::Failed => Some(false),
        }
    }
}

/// A [`Health`] that calls and the watcher share.
#[derive(Debug)]
pub(super) struct HealthCell(AtomicU8);

impl HealthCell {
    pub(super) fn new(health: Health) -> Self {
        Self(AtomicU8::new(health as u8))
    }

    pub(super) fn get(&self) -> Health {
        match self.0.load(Ordering::Acquire) {
            1 => Health::Unknown,
            2 => Health::Serving,
            3 => Health::NotServing,
            4 => Health::Unimplemented,
            5 => Health::Failed,
            _ => Health::Unchecked,
        }
    }

    pub(super) fn set(&self, health: Health) {
        self.0.store(health as u8, Ordering::Release);
    }
}

/// What the watch needs of its subchannel: a receiver of its connection's
/// state and the transport to call on, while the subchannel lives.
pub(super) trait Watched: Send + Sync + 'static {
    /// The connection's state and the transport now; `None` once the
    /// subchannel is gone.
    fn connection(&self) -> Option<(watch::Receiver<ConnectivityState>, Channel)>;
    /// The health service said `health`, because of `why`.
    fn report(&self, health: Health, why: &str);
}

/// Watches `service`'s health on the subchannel's every connection until
/// `stop` is cancelled (the subchannel is gone); each watch carries `token`,
/// as grpc's health watches carry the channel's call credentials (a server
/// whose policy governs health must let the caller watch it).
pub(super) async fn watch(
    sub: impl Watched,
    service: String,
    token: Option<BearerToken>,
    backoff: Backoff,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let Some((mut transport, _)) = sub.connection() else { return };
        // A connection first: the watch is made on it, never to dial.
        tokio::select! {
            () = stop.cancelled() => return,
            ready = transport.wait_for(|state| *state == ConnectivityState::Ready) => if ready.is_err() { return },
        }
        // The transport of the connection now READY.
        let Some((_, channel)) = sub.connection() else { return };
        let mut request = Request::new(HealthCheckRequest { service: service.clone() });
        if let Some(token) = &token {
            token.authorize(&mut request);
        }
        let mut health = HealthClient::new(channel);
        let watched = tokio::select! {
            () = stop.cancelled() => return,
            () = lost(&mut transport) => continue,
            watched = health.watch(request) => watched,
        };
        let ended = match watched {
            Ok(response) => {
                let Some(ended) =
                    follow(&sub, response.into_inner(), &service, &mut transport, &stop, &mut failures).await
                else {
                    return;
                };
                ended
            }
            Err(status) if status.code() == Code::Unimplemented => {
                sub.report(Health::Unimplemented, "the server has no health service: taken as healthy");
                // Not asked again on this connection.
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = lost(&mut transport) => continue,
                }
            }
            Err(status) => Ended::Failed(format!("the health watch failed: {}", describe_status(&status))),
        };
        match ended {
            Ended::Lost => continue,
            // The connection went: its state says so, not the health.
            Ended::Failed(_) if *transport.borrow() != ConnectivityState::Ready => continue,
            Ended::Failed(why) => sub.report(Health::Failed, &why),
            Ended::Unhealthy => {}
        }
        failures += 1;
        tokio::select! {
            () = stop.cancelled() => return,
            () = lost(&mut transport) => {}
            () = tokio::time::sleep(backoff.delay(failures)) => {}
        }
    }
}

/// Reports each answer of a watch until it ends, and how; `None` when
/// `stop` was cancelled. SERVING resets `failures`: a watch that fails next
/// is made again at once.
async fn follow(
    sub: &impl Watched,
    mut answers: Streaming<HealthCheckResponse>,
    service: &str,
    transport: &mut watch::Receiver<ConnectivityState>,
    stop: &CancellationToken,
    failures: &mut u32,
) -> Option<Ended> {
    loop {
        let answer = tokio::select! {
            () = stop.cancelled() => return None,
            () = lost(transport) => return Some(Ended::Lost),
            answer = answers.message() => answer,
        };
        let status = match answer {
            Ok(Some(HealthCheckResponse { status })) => status,
            Ok(None) => return Some(Ended::Failed("the health watch ended".to_owned())),
            Err(status) => {
                return Some(Ended::Failed(format!("the health watch failed: {}", describe_status(&status))));
            }
        };
        let (health, why) = match ServingStatus::try_from(status) {
            Ok(ServingStatus::Serving) => (Health::Serving, "SERVING".to_owned()),
            Ok(other) => (Health::NotServing, other.as_str_name().to_owned()),
            Err(_) => (Health::NotServing, format!("an unknown status {status}")),
        };
        sub.report(health, &format!("health: {why} for {}", shown(service)));
        if health != Health::Serving {
            return Some(Ended::Unhealthy);
        }
        *failures = 0;
    }
}

/// How a watch ended.
enum Ended {
    /// The connection is no longer READY.
    Lost,
    /// The server said the service does not serve: the watch is ended and
    /// made again after a backoff, rather than held open (gRFC A17 holds it).
    /// A server that is draining says so just before its GOAWAY, which this
    /// client cannot see through tonic, where grpc's cancel their watch on
    /// it: a watch held open would keep the draining server's connection,
    /// and its drain, waiting for the whole grace period.
    Unhealthy,
    /// The watch failed, or ended with no reason.
    Failed(String),
}

/// Resolves when the connection the watch was made on is gone: the state
/// changed at all since it was last seen. A connection replaced after a
/// GOAWAY goes READY, CONNECTING and READY again within a dial, which may
/// all happen before this task runs; the receiver then holds READY again,
/// but counts the changes. Waiting for a state other than READY would miss
/// them, leaving the watch on the old connection while the new one waits,
/// CONNECTING, for its first health answer.
async fn lost(transport: &mut watch::Receiver<ConnectivityState>) {
    if transport.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The service's name as a person reads it: the empty name is the server's.
fn shown(service: &str) -> &str {
    if service.is_empty() { "the server" } else { service }
}
