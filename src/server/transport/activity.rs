//! What a connection's service stack knows of its connection
//! ([`ConnectionActivity`]): the peer's address, for the calls' log lines,
//! and the calls running on it, each holding it busy ([`Busy`]), from which
//! the connection's idle time is told (`--max-connection-idle`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::peer::Peer;

/// What a connection's service stack knows of it: the peer's address (for
/// the log) and the connection's activity (each call holds it busy).
#[derive(Debug, Clone)]
pub(in crate::server) struct ConnectionActivity {
    activity: Arc<Activity>,
}

impl ConnectionActivity {
    /// The stack's view of the connection whose activity is `activity`.
    pub(super) fn new(activity: Arc<Activity>) -> Self {
        Self { activity }
    }

    /// What the TLS session says of the peer.
    pub(in crate::server) fn peer(&self) -> &Peer {
        &self.activity.identity
    }

    /// A plaintext connection without a socket, for the fuzz targets'
    /// stack (`server/fuzzing/`).
    #[cfg(any(fuzzing, test))]
    pub(in crate::server) fn detached() -> Self {
        Self::new(Arc::new(Activity::new(None, Peer::Plaintext)))
    }

    /// Marks the connection busy until the returned guard is dropped.
    pub(in crate::server) fn busy(&self) -> Busy {
        self.activity.calls.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(&self.activity))
    }
}

/// The calls running on one connection, and since when it has had none.
#[derive(Debug)]
pub(super) struct Activity {
    /// The peer's address, as the call log writes it.
    peer: Option<String>,
    /// What the TLS session says of the peer.
    identity: Peer,
    /// When the connection was opened, the origin of `idle_since`.
    opened: Instant,
    calls: AtomicUsize,
    /// When the last call ended, in nanoseconds since `opened`.
    idle_since: AtomicU64,
}

impl Activity {
    pub(super) fn new(peer: Option<String>, identity: Peer) -> Self {
        Self { peer, identity, opened: Instant::now(), calls: AtomicUsize::new(0), idle_since: AtomicU64::new(0) }
    }

    /// Resolves once the connection has had no call for `max`. Calls touch
    /// two atomics and no lock; this task looks at them when a deadline
    /// passes, moving the deadline on while the connection is busy.
    pub(super) async fn idle_for(&self, max: Duration) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_last_call_and_never_while_one_runs() {
        let activity = Arc::new(Activity::new(None, Peer::Plaintext));
        let connection = ConnectionActivity::new(Arc::clone(&activity));
        let max = Duration::from_secs(10);
        let start = Instant::now();
        // A call from 5 s to 25 s: idle from 25 s, so done at 35 s.
        let call = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let busy = connection.busy();
            tokio::time::sleep(Duration::from_secs(20)).await;
            drop(busy);
        });
        activity.idle_for(max).await;
        assert_eq!(start.elapsed(), Duration::from_secs(35));
        call.await.expect("the call ran");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_with_no_call_is_idle_from_its_start() {
        let activity = Activity::new(None, Peer::Plaintext);
        let start = Instant::now();
        activity.idle_for(Duration::from_secs(7)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(7));
    }
}
