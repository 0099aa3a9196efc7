//! What keeps the channel current while it is in use: each subchannel's
//! state recomputed when its connection, health or ejection changes (and
//! the channel's aggregate with it), background dials, re-resolution, and
//! outlier detection's sweep.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::balancer::Balancer;
use super::connectivity::ConnectivityState;
use super::dial::Address;
use super::ejection::{self, Counted, Verdict};
use super::events::Event;
use super::health::{self, Health};
use super::outlier::OutlierDetection;
use super::picker::LoadBalancing;
use super::resolver::{self, MIN_RERESOLVE, RERESOLVE_EVERY};
use super::subchannel::Subchannel;
use crate::client::Error;

/// How long pick_first waits for an address to be READY before it dials
/// the next beside it (gRFC A61).
const HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);

impl Balancer {
    /// Starts what a subchannel runs once the channel is in use: its health
    /// watch, and under round robin its connection (every address is used).
    pub(super) fn start(self: &Arc<Self>, sub: &Arc<Subchannel>) {
        if let (Some(service), Ok(runtime)) = (self.health_service(), tokio::runtime::Handle::try_current()) {
            let stop = CancellationToken::new();
            let watched = HealthOf { sub: Arc::downgrade(sub), balancer: Arc::downgrade(self) };
            let (token, backoff) = (self.settings.token.clone(), self.settings.backoff);
            runtime.spawn(health::watch(watched, service.to_owned(), token, backoff, stop.clone()));
            *sub.watching.lock().unwrap_or_else(PoisonError::into_inner) = Some(stop.drop_guard());
        }
        self.follow_load_reports(sub);
        if self.policy().spreads() {
            self.connect_in_background(Arc::clone(sub), false);
        }
    }

    /// A subchannel's connection changed state.
    pub(super) fn connection_changed(
        self: &Arc<Self>,
        sub: &Arc<Subchannel>,
        from: ConnectivityState,
        to: ConnectivityState,
        why: Option<&str>,
    ) {
        if to == ConnectivityState::Ready && self.health_service().is_some() {
            // A new connection's health is not known until it is asked.
            sub.health.set(Health::Unknown);
        }
        self.refresh(sub, why);
        let lost = from == ConnectivityState::Ready && to == ConnectivityState::Idle;
        if lost || to == ConnectivityState::TransientFailure {
            self.lost.notify_one();
        }
        if to == ConnectivityState::TransientFailure {
            self.connect_in_background(Arc::clone(sub), true);
        } else if lost && self.policy().spreads() {
            // Round robin keeps every address connected.
            self.connect_in_background(Arc::clone(sub), false);
        }
    }

    /// Recomputes `sub`'s state from its connection, health and ejection,
    /// and reports a change (with `why`) to the watchers and the channel.
    pub(super) fn refresh(&self, sub: &Arc<Subchannel>, why: Option<&str>) {
        let changed = sub.update_state(|from, to| {
            if to == ConnectivityState::TransientFailure {
                sub.set_last_failure(why);
            }
            if to == ConnectivityState::Ready {
                sub.weight.restart();
            }
            let address = sub.address.to_string();
            tracing::debug!(%address, %from, %to, why, "subchannel");
            self.stats.state_changed();
            self.emit(&Event::Subchannel { address, from, to, why: why.map(str::to_owned) });
        });
        if changed {
            self.reweigh();
            self.changes.send_modify(|n| *n += 1);
            self.aggregate();
        }
    }

    /// The channel's state from its subchannels' (grpc's aggregation).
    pub(super) fn aggregate(&self) {
        let states: Vec<ConnectivityState> = self.current().iter().map(|sub| sub.state()).collect();
        let any = |state| states.contains(&state);
        let state = if any(ConnectivityState::Ready) {
            ConnectivityState::Ready
        } else if any(ConnectivityState::Connecting) {
            ConnectivityState::Connecting
        } else if any(ConnectivityState::Idle) || states.is_empty() {
            ConnectivityState::Idle
        } else {
            ConnectivityState::TransientFailure
        };
        self.channel.set(state);
    }

    /// Dials `sub` in the background (after a growing backoff when
    /// `backing_off`), until it is READY or no longer a subchannel here.
    pub(super) fn connect_in_background(self: &Arc<Self>, sub: Arc<Subchannel>, backing_off: bool) {
        if sub.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            sub.reconnecting.store(false, Ordering::Release);
            return;
        };
        let balancer = Arc::downgrade(self);
        let (backoff, timeout) = (self.settings.backoff, self.settings.connect_timeout);
        runtime.spawn(async move {
            let mut failures = u32::from(backing_off);
            loop {
                if failures > 0 {
                    tokio::time::sleep(backoff.delay(failures)).await;
                }
                let Some(this) = balancer.upgrade() else { break };
                let others = this.current();
                // pick_first needs one connection: another READY one ends the
                // dialing again of an address that failed.
                let served = failures > 0
                    && this.policy() == LoadBalancing::PickFirst
                    && others.iter().any(|s| !Arc::ptr_eq(s, &sub) && s.state() == ConnectivityState::Ready);
                drop(this);
                let listed = others.iter().any(|s| Arc::ptr_eq(s, &sub));
                if !listed
                    || served
                    || sub.connectivity.state() == ConnectivityState::Ready
                    || sub.connect(timeout).await
                {
                    break;
                }
                failures += 1;
            }
            sub.reconnecting.store(false, Ordering::Release);
        });
    }

    /// Makes sure a subchannel, one not in `tried` first, is on its way to
    /// READY for the calls waiting for one. Round robin dials every address
    /// from its first call and again whenever one is lost; pick_first dials
    /// the addresses in order (gRFC A61's Happy Eyeballs): the next when the
    /// one before failed, or after 250 ms without being READY, the first
    /// READY taking the calls.
    pub(super) fn connect_for_picks(self: &Arc<Self>, tried: &[Arc<Subchannel>]) {
        if self.policy().spreads() {
            // Round robin dials a lost connection again at once; one left
            // IDLE (its dial ended as the connection went) is dialed here.
            for sub in self.current().iter().filter(|sub| sub.connectivity.state() == ConnectivityState::Idle) {
                self.connect_in_background(Arc::clone(sub), false);
            }
            return;
        }
        if self.connecting_first.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.connecting_first.store(false, Ordering::Release);
            return;
        };
        // The addresses in order, those the call has not been to first.
        let (mut subchannels, again): (Vec<Arc<Subchannel>>, Vec<Arc<Subchannel>>) =
            self.current().iter().cloned().partition(|sub| !tried.iter().any(|t| Arc::ptr_eq(t, sub)));
        subchannels.extend(again);
        let balancer = Arc::downgrade(self);
        let mut changes = self.changes.subscribe();
        runtime.spawn(async move {
            let ready = |sub: &Arc<Subchannel>| sub.state() == ConnectivityState::Ready;
            for (n, sub) in subchannels.iter().enumerate() {
                // Done once one dialed here, or the next in order, is READY.
                let done = subchannels[..=n].iter().any(ready);
                let Some(this) = balancer.upgrade().filter(|_| !done) else { break };
                this.connect_in_background(Arc::clone(sub), false);
                drop(this);
                let next = Instant::now() + HAPPY_EYEBALLS_DELAY;
                while !sub.failed() && !ready(sub) {
                    tokio::select! {
                        changed = changes.changed() => if changed.is_err() { break },
                        () = tokio::time::sleep_until(next) => break,
                    }
                }
            }
            if let Some(this) = balancer.upgrade() {
                this.connecting_first.store(false, Ordering::Release);
            }
        });
    }

    /// The addresses the target stands for now: a name's, resolved again;
    /// given addresses, as they are.
    pub(super) async fn resolve(&self) -> Result<Vec<Address>, Error> {
        match resolver::resolve(&self.target, self.settings.connect_timeout).await {
            Some(resolved) => resolved,
            None => Ok(self.current().iter().map(|sub| sub.address.clone()).collect()),
        }
    }

    /// Makes the subchannels those of `addresses`, in their order, keeping
    /// the ones whose address stays.
    pub(super) fn update(self: &Arc<Self>, addresses: Vec<Address>) {
        // Under xDS the cluster's policy spreads calls (round robin).
        let spread = if self.xds.is_some() { usize::MAX } else { addresses.len() };
        let _ = self.policy.set(self.settings.lb.for_addresses(spread));
        let old = self.current();
        let mut added = Vec::new();
        let subchannels: Vec<Arc<Subchannel>> = addresses
            .into_iter()
            .map(|address| {
                old.iter().find(|sub| sub.address == address).cloned().unwrap_or_else(|| {
                    let sub = self.subchannel(address);
                    added.push(Arc::clone(&sub));
                    sub
                })
            })
            .collect();
        if old.len() != subchannels.len() || !added.is_empty() {
            tracing::debug!(target = %self.target, addresses = subchannels.len(), "subchannels");
        }
        *self.subchannels.write().unwrap_or_else(PoisonError::into_inner) = Arc::from(subchannels);
        self.changes.send_modify(|n| *n += 1);
        self.aggregate();
        if self.started.load(Ordering::Acquire) {
            for sub in &added {
                self.start(sub);
            }
        }
    }

    /// Starts the task that resolves the name again (DNS names only, once).
    pub(super) fn start_resolving(self: &Arc<Self>) {
        if resolver::fixed(&self.target).is_some() || self.resolving.swap(true, Ordering::AcqRel) {
            return;
        }
        // The task holds the channel weakly: a client dropped closes its
        // connections at once, and the task ends at its next wake.
        let balancer = Arc::downgrade(self);
        let lost = Arc::clone(&self.lost);
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                let _ = tokio::time::timeout(RERESOLVE_EVERY, lost.notified()).await;
                tokio::time::sleep_until(last + MIN_RERESOLVE).await;
                last = Instant::now();
                let Some(balancer) = balancer.upgrade() else { return };
                if balancer.channel.state() == ConnectivityState::Shutdown {
                    return;
                }
                match balancer.resolve().await {
                    Ok(addresses) => balancer.update(addresses),
                    Err(err) => tracing::debug!(error = %err, "re-resolving failed; keeping the addresses"),
                }
            }
        });
    }

    /// Starts outlier detection's sweep, every interval, while the channel
    /// lives (once; only when it is on). Under xDS each cluster has its own
    /// (`xds_policy.rs`).
    pub(super) fn start_sweeping(self: &Arc<Self>) {
        let Some(config) = self.settings.outlier_detection.filter(|_| self.xds.is_none()) else { return };
        let _ = self.sweeping(config, None);
    }

    /// A sweep every interval while the channel lives, over the endpoints
    /// of xDS cluster `cluster`, else over every subchannel.
    pub(super) fn sweeping(
        self: &Arc<Self>,
        config: OutlierDetection,
        cluster: Option<String>,
    ) -> Option<JoinHandle<()>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let balancer = Arc::downgrade(self);
        Some(runtime.spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + config.interval, config.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let now = ticks.tick().await;
                let Some(balancer) = balancer.upgrade() else { return };
                if balancer.channel.state() == ConnectivityState::Shutdown {
                    return;
                }
                let subchannels = match &cluster {
                    Some(name) => balancer.in_cluster(name),
                    None => balancer.current(),
                };
                balancer.sweep(&config, now, &subchannels);
            }
        }))
    }

    /// One sweep of outlier detection over `subchannels`.
    fn sweep(&self, config: &OutlierDetection, now: Instant, subchannels: &[Arc<Subchannel>]) {
        let mut counted: Vec<Counted> = subchannels
            .iter()
            .map(|sub| {
                let (successes, failures) = sub.outlier.take();
                Counted { successes, failures, ejection: sub.outlier.ejection() }
            })
            .collect();
        let verdicts = ejection::sweep(config, now, &mut counted, || fastrand::u32(0..100));
        for (sub, counted) in subchannels.iter().zip(&counted) {
            sub.outlier.set_ejection(counted.ejection);
        }
        for verdict in verdicts {
            match verdict {
                Verdict::Eject { index, time, why } => {
                    self.stats.ejected();
                    let why = format!("ejected for {}: {why}", humantime::format_duration(time));
                    self.refresh(&subchannels[index], Some(&why));
                }
                Verdict::Return { index } => self.refresh(&subchannels[index], Some("its ejection is over")),
            }
        }
    }
}

/// A subchannel as its health watch sees it: its connection, and where the
/// answers go (the subchannel's health, then its state).
struct HealthOf {
    sub: Weak<Subchannel>,
    balancer: Weak<Balancer>,
}

impl health::Watched for HealthOf {
    fn connection(&self) -> Option<(watch::Receiver<ConnectivityState>, Channel)> {
        let sub = self.sub.upgrade()?;
        Some((sub.connectivity.subscribe(), sub.channel().1))
    }

    fn report(&self, health: Health, why: &str) {
        if let (Some(sub), Some(balancer)) = (self.sub.upgrade(), self.balancer.upgrade()) {
            sub.health.set(health);
            balancer.refresh(&sub, Some(why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Backoff;
    use crate::client::channel::weights::WeightSettings;
    use crate::client::channel::{ChannelSettings, Connectivity, Target};
    use crate::tls::ClientTls;

    #[tokio::test]
    async fn new_addresses_get_subchannels_and_kept_ones_keep_theirs() {
        let target: Target = "ipv4:127.0.0.1:1001,127.0.0.1:1002".parse().expect("a target");
        let settings = ChannelSettings {
            connect_timeout: Duration::from_secs(1),
            backoff: Backoff::DEFAULT,
            tls: ClientTls::default(),
            lb: LoadBalancing::PickFirst,
            keepalive: None,
            health_check: None,
            outlier_detection: None,
            weights: WeightSettings::default(),
            token: None,
            xds_bootstrap: None,
        };
        let balancer = Balancer::new(&target, settings, Connectivity::default(), Arc::default()).expect("a channel");
        let before = balancer.current();
        let address = |port| Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        balancer.update(vec![address(1002), address(1003)]);
        let after = balancer.current();
        let ports: Vec<String> = after.iter().map(|sub| sub.address.to_string()).collect();
        assert_eq!(ports, ["127.0.0.1:1002", "127.0.0.1:1003"]);
        assert!(Arc::ptr_eq(&before[1], &after[0]), "a kept address keeps its subchannel (and connection)");
        assert!(!before.iter().any(|old| Arc::ptr_eq(old, &after[1])), "a new address gets a new one");
    }
}
