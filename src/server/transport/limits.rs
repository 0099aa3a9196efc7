//! The connection limit (`--max-connections`): the connections open and
//! those refused, shared by the accept tasks, and each connection's place
//! among the open ones, given back when its socket closes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How often the refused connections are logged, at most.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(1);

/// The connections open and those refused, shared by the accept tasks.
#[derive(Debug)]
pub(in crate::server) struct Limits {
    max: usize,
    open: AtomicUsize,
    refused: AtomicU64,
    logged: Mutex<Option<Instant>>,
}

impl Limits {
    /// At most `max` connections at once.
    pub(in crate::server) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, open: AtomicUsize::new(0), refused: AtomicU64::new(0), logged: Mutex::new(None) })
    }

    /// Connections open now.
    pub(in crate::server) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused since the server started.
    pub(in crate::server) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A place for a new connection, or none at the limit (counted).
    pub(super) fn admit(self: &Arc<Self>) -> Option<Slot> {
        if self.open.fetch_add(1, Ordering::AcqRel) < self.max {
            return Some(Slot(Arc::clone(self)));
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        // One line a second however many are refused: a flood of
        // connections must not become a flood of log lines.
        if let Ok(mut logged) = self.logged.lock() {
            let now = Instant::now();
            if logged.is_none_or(|at| now.duration_since(at) >= REFUSED_LOG_EVERY) {
                *logged = Some(now);
                tracing::warn!(limit = self.max, refused, "refusing connections over --max-connections");
            }
        }
        None
    }
}

/// A connection's place among the open ones, given back when it closes.
#[derive(Debug)]
pub(super) struct Slot(Arc<Limits>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}
