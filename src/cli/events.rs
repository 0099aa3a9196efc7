//! `-v`: the channel's events on stderr as they happen (subchannel changes
//! with their causes, ejections, weights, hedges, calls sent again), one
//! `client: ...` line each.

use crate::client::{Client, Event};

/// Which events a run shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shown {
    /// All of them: one call's story.
    All,
    /// All but what happens to single calls, hedges and calls sent again,
    /// which a load run makes by the thousand (its report counts them).
    Channel,
}

/// Prints `client`'s events from now on, after `label` when there is one.
pub(super) fn show(client: &Client, shown: Shown, label: Option<String>) {
    client.watch_subchannels(Box::new(move |event| {
        if shown == Shown::Channel && matches!(event, Event::Hedge { .. } | Event::Resent { .. }) {
            return;
        }
        match &label {
            Some(label) => eprintln!("client: {label}: {event}"),
            None => eprintln!("client: {event}"),
        }
    }));
}
