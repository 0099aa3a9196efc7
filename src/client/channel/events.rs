//! What the channel did, as it happened: subchannel transitions with their
//! causes, calls sent again, hedges; and who is told (`client -v`).

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::connectivity::ConnectivityState;

/// What the channel did, as it happened: what `client -v` prints.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A subchannel changed state.
    Subchannel {
        /// Its address.
        address: String,
        /// The state it left.
        from: ConnectivityState,
        /// The state it is in.
        to: ConnectivityState,
        /// Why, when it is more than its connection coming or going: a
        /// dial's error, an unanswered keepalive ping, the health service's
        /// answer, an ejection and its figures.
        why: Option<String>,
    },
    /// A call the server never took went out again (grpc's transparent
    /// retry).
    Resent {
        /// The method.
        method: String,
        /// The subchannel whose server did not take it.
        address: String,
        /// How that attempt ended.
        why: String,
    },
    /// A hedged attempt went out.
    Hedge {
        /// The method.
        method: String,
        /// Its attempt number (2 for the first hedge).
        attempt: u32,
        /// The subchannel it went to.
        address: String,
        /// How long after the call began.
        after: Duration,
    },
    /// A subchannel's weight under weighted round robin changed (by more
    /// than a tenth, or to or from unknown).
    Weight {
        /// Its address.
        address: String,
        /// Its weight now; 0 while unknown (in its blackout, expired, or
        /// never reported), when it takes the mean weight's share.
        weight: f64,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Subchannel { address, from, to, why: None } => write!(f, "subchannel {address} {from} -> {to}"),
            Self::Subchannel { address, from, to, why: Some(why) } => {
                write!(f, "subchannel {address} {from} -> {to} ({why})")
            }
            Self::Resent { method, address, why } => {
                write!(f, "sent again: {method}, which {address} did not take ({why})")
            }
            Self::Hedge { method, attempt, address, after } => {
                write!(f, "hedge: attempt {attempt} of {method} to {address}, {after:.1?} after the first")
            }
            Self::Weight { address, weight } if *weight > 0.0 => write!(f, "subchannel {address} weight {weight:.1}"),
            Self::Weight { address, .. } => write!(f, "subchannel {address} weight unknown"),
        }
    }
}

/// Called with each event of the channel, as it happens.
pub type SubchannelWatcher = Box<dyn Fn(&Event) + Send + Sync>;

/// The watchers of a channel's events.
#[derive(Default)]
pub(super) struct Watchers(Mutex<Vec<SubchannelWatcher>>);

impl Watchers {
    /// Calls `watcher` at every event from now on.
    pub(super) fn add(&self, watcher: SubchannelWatcher) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(watcher);
    }

    /// Tells every watcher of `event`.
    pub(super) fn emit(&self, event: &Event) {
        for watcher in self.0.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            watcher(event);
        }
    }

    /// Whether anyone watches (so that events are only built then).
    pub(super) fn any(&self) -> bool {
        !self.0.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}
