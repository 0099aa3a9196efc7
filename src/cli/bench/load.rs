//! What a load run is: the RPC it drives ([`LoadCall`]), how its calls are
//! paced ([`Model`]) and its settings ([`LoadConfig`]). The flags build it,
//! `mod.rs` runs it and `report.rs` names it in what was measured, so it
//! sits below both of them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{ClientOptions, Target};

/// Which RPC a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LoadCall {
    /// Unary `Search`, one query per call.
    Search,
    /// Bidirectional `Classify`: each worker keeps one stream open and each
    /// "call" is one batch sent and its answer received.
    Classify,
}

/// How calls are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// Each worker sends its next call when the last one is answered.
    Closed,
    /// Calls are sent at `rate` per second whatever the answers, at most
    /// `concurrency` in flight; latency counts from the intended send time.
    Open {
        /// Calls per second.
        rate: f64,
    },
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server.
    pub target: Target,
    /// Per-call deadline and TLS; retries are turned off, so that every
    /// failure is counted, not hidden (hedging, keepalive, health checking
    /// and outlier detection stay as set: the report counts what they did).
    pub options: ClientOptions,
    /// The RPC.
    pub call: LoadCall,
    /// Connections (channels) to spread the workers over.
    pub connections: usize,
    /// Workers (closed model) or the most calls in flight (open model).
    pub concurrency: usize,
    /// The most calls to make.
    pub total: u64,
    /// The longest the run may take.
    pub duration: Duration,
    /// Pacing.
    pub model: Model,
    /// Queries, used in turn.
    pub queries: Vec<String>,
    /// Queries per Classify message.
    pub batch: usize,
    /// Call Search on the article's `/Search/search` path (to load-test the
    /// article's own server), not on the v1 path.
    pub legacy: bool,
    /// Show a progress bar (only ever on a terminal).
    pub progress: bool,
    /// Print the channels' events (subchannel changes, ejections) on
    /// stderr as they happen.
    pub verbose: bool,
}
