//! The ADS stream (gRFC A27, state of the world, v3): one per client, to
//! `xds_servers[0]`; every subscription sent on each new stream, each
//! response ACKed or NACKed, the does-not-exist timers run while a stream
//! is up; a failed stream redialed with [`Backoff`], the cache serving
//! what it holds meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::bootstrap::{Bootstrap, ChannelCreds};
use super::cache::Cache;
use super::protocol::TypeState;
use super::resource::{ResourceType, decode};
use super::wire::discovery_request;
use crate::client::Backoff;
use crate::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use crate::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

/// What the client's handle tells the stream's task.
#[derive(Debug)]
pub(super) enum Command {
    /// The names of a type changed (a new watch): send them.
    Subscribe(ResourceType),
    /// A watcher of a resource went; drop it if it was the last.
    Unwatched(ResourceType, String),
}

/// The stream's settings.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) backoff: Backoff,
    pub(super) connect_timeout: Duration,
}

/// The task's state across streams.
pub(super) struct Ads {
    pub(super) bootstrap: Arc<Bootstrap>,
    pub(super) settings: Settings,
    pub(super) cache: Arc<Mutex<Cache>>,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    /// Each type's last ACKed version and nonce (the version survives a
    /// new stream; the nonce does not).
    states: HashMap<ResourceType, TypeState>,
}

/// How a stream ended.
enum Ended {
    /// The stream failed or closed; `heard` when a response came first.
    Stream { heard: bool, why: String },
    /// The client's handle is gone.
    Closed,
}

impl Ads {
    pub(super) fn new(
        bootstrap: Arc<Bootstrap>,
        settings: Settings,
        cache: Arc<Mutex<Cache>>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        Self { bootstrap, settings, cache, commands, states: HashMap::new() }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs until the client's handle goes: dial, stream, back off, again.
    pub(super) async fn run(mut self) {
        let mut failures = 0u32;
        loop {
            let ended = match connect(&self.bootstrap, &self.settings).await {
                Ok(channel) => self.stream(channel).await,
                Err(why) => Ended::Stream { heard: false, why },
            };
            let Ended::Stream { heard, why } = ended else { return };
            self.cache().disarm_timers();
            failures = if heard { 1 } else { failures.saturating_add(1) };
            for state in self.states.values_mut() {
                state.nonce.clear();
            }
            let wait = self.settings.backoff.delay(failures);
            tracing::warn!(server = %self.bootstrap.server.uri, %why, ?wait, "xDS stream failed; redialing");
            if !self.idle_until(Instant::now() + wait).await {
                return;
            }
        }
    }

    /// Takes commands until `until`; `false` when the handle is gone.
    async fn idle_until(&mut self, until: Instant) -> bool {
        loop {
            tokio::select! {
                () = sleep_until(until) => return true,
                command = self.commands.recv() => match command {
                    None => return false,
                    Some(Command::Unwatched(kind, name)) => {
                        self.cache().unwatch_if_unwatched(kind, &name);
                    }
                    // Sent with every subscription on the next stream.
                    Some(Command::Subscribe(_)) => {}
                },
            }
        }
    }

    async fn stream(&mut self, channel: Channel) -> Ended {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut first = true;
        for kind in ResourceType::ALL {
            if !self.cache().names(kind).is_empty() {
                self.send(&tx, kind, &mut first);
            }
        }
        let mut client = AggregatedDiscoveryServiceClient::new(channel);
        // The call returns with the server's headers, which a server may
        // hold back until it has a response to send: take commands (new
        // subscriptions) meanwhile, or a stream opened with none would wait
        // for ever.
        let call = client.stream_aggregated_resources(UnboundedReceiverStream::new(rx));
        tokio::pin!(call);
        let mut inbound = loop {
            tokio::select! {
                response = &mut call => match response {
                    Ok(response) => break response.into_inner(),
                    Err(status) => return Ended::Stream { heard: false, why: crate::client::describe_status(&status) },
                },
                command = self.commands.recv() => {
                    if let Some(ended) = self.command(&tx, command, &mut first) {
                        return ended;
                    }
                }
            }
        };
        let mut heard = false;
        loop {
            let deadline = self.cache().next_deadline();
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(response)) => {
                        heard = true;
                        self.respond(&tx, response);
                    }
                    Ok(None) => return Ended::Stream { heard, why: "the server ended the stream".to_owned() },
                    Err(status) => return Ended::Stream { heard, why: crate::client::describe_status(&status) },
                },
                command = self.commands.recv() => {
                    if let Some(ended) = self.command(&tx, command, &mut first) {
                        return ended;
                    }
                }
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    for (kind, name) in self.cache().expire(Instant::now()) {
                        tracing::warn!(%kind, %name, "xDS resource does not exist (nothing heard within the timer)");
                    }
                }
            }
        }
    }

    /// Takes a command on a stream: a subscription changed is sent;
    /// `Closed` when the handle is gone.
    fn command(
        &mut self,
        tx: &mpsc::UnboundedSender<DiscoveryRequest>,
        command: Option<Command>,
        first: &mut bool,
    ) -> Option<Ended> {
        let Some(command) = command else { return Some(Ended::Closed) };
        match command {
            Command::Subscribe(kind) => self.send(tx, kind, first),
            Command::Unwatched(kind, name) => {
                if self.cache().unwatch_if_unwatched(kind, &name) {
                    self.send(tx, kind, first);
                }
            }
        }
        None
    }

    /// Sends `kind`'s subscriptions and starts their timers.
    fn send(&mut self, tx: &mpsc::UnboundedSender<DiscoveryRequest>, kind: ResourceType, first: &mut bool) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let request = self.states.entry(kind).or_default().subscribe(kind, &cache.names(kind));
        let node = first.then_some(&self.bootstrap.node);
        *first = false;
        // The receiver goes only with the stream, which then ends the task's loop.
        let _ = tx.send(discovery_request(request, node));
        cache.arm_timers(kind, Instant::now());
    }

    /// Takes a response: validates it, updates the cache, ACKs or NACKs.
    fn respond(&mut self, tx: &mpsc::UnboundedSender<DiscoveryRequest>, response: DiscoveryResponse) {
        let Some(kind) = ResourceType::from_type_url(&response.type_url) else {
            tracing::warn!(type_url = %response.type_url, "xDS response of a type this client never asked for");
            return;
        };
        let decoded = response.resources.iter().map(|any| decode(kind, any)).collect();
        let ignore_deletion = self.bootstrap.server.ignore_resource_deletion;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let names = cache.names(kind);
        let state = self.states.entry(kind).or_default();
        let (request, outcome) =
            state.respond(kind, &names, &response.version_info, &response.nonce, decoded, ignore_deletion);
        if let Some(error) = &request.error {
            tracing::warn!(%kind, version = %response.version_info, %error, "xDS update NACKed");
        }
        cache.apply(kind, &response.version_info, outcome);
        let _ = tx.send(discovery_request(request, None));
    }
}

/// A channel to the management server.
async fn connect(bootstrap: &Bootstrap, settings: &Settings) -> Result<Channel, String> {
    let uri = bootstrap.server.uri.trim_start_matches("dns:///");
    let authority = uri.trim_start_matches("dns:");
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host).trim_matches(['[', ']']);
    let (scheme, tls) = match &bootstrap.server.creds {
        ChannelCreds::Insecure => ("http", None),
        ChannelCreds::Tls { ca, identity } => {
            let (cert, key) = identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())).unzip();
            let files = crate::tls::ClientTls::load(ca.as_deref(), cert, key).map_err(|e| e.to_string())?;
            ("https", Some(files.config(host)))
        }
    };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{authority}"))
        .map_err(|e| format!("server_uri {:?}: {e}", bootstrap.server.uri))?
        .connect_timeout(settings.connect_timeout);
    let endpoint = match tls {
        Some(tls) => endpoint.tls_config(tls).map_err(|e| format!("TLS: {e}"))?,
        None => endpoint,
    };
    endpoint.connect().await.map_err(|e| format!("cannot connect to {}: {}", bootstrap.server.uri, innermost(&e)))
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
