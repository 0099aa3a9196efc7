//! `client soak`: mixed traffic for a given time, to show that a server
//! stays bounded under everything a real client population does: all four
//! RPC kinds, clients that disconnect mid-call, deadlines that expire
//! mid-stream, bursts of held streams past the server's limit (shed calls).
//! Every call ends in one of the codes its scenario allows, or it is
//! counted as unexpected; a call that never ends is counted as lost. With
//! `--server-pid` the server's resident memory and open file descriptors
//! are sampled every second (Linux `/proc`), and the report gives their
//! peak and their slope over the second half of the run. The procfs and
//! sysinfo crates (checked) read the same files; for two numbers from two
//! files the dependency was not taken.
//!
//! Files:
//! - `mod.rs`: the run ([`run`]): its workers, each running the scenarios in
//!   turn.
//! - `scenario.rs`: the kinds of traffic and the ends each allows.
//! - `traffic.rs`: each scenario's calls, their answers checked.
//! - `report.rs`: the outcomes counted, and what the run saw ([`SoakReport`]).
//! - `process.rs`: the server's memory and descriptors, sampled.

mod process;
mod report;
mod scenario;
mod traffic;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use self::process::{sample, sample_until};
pub use self::report::{Series, SoakReport};
use self::report::{Tally, report};
use self::scenario::{Outcome, SCENARIO_LIMIT, SCENARIOS, SHORT_DEADLINE, Scenario};
use super::events::{self, Shown};
use crate::client::{self, Client, ClientOptions, Target};

/// What a soak does.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The server.
    pub target: Target,
    /// TLS and the like; the deadline of normal calls. Retries are off, so
    /// that every failure is counted.
    pub options: ClientOptions,
    /// How long to run.
    pub duration: Duration,
    /// Workers, each running one scenario after another on its own
    /// connection.
    pub workers: usize,
    /// Streams a burst holds open at once (0: no bursts).
    pub burst: usize,
    /// The server's process, to sample its memory and descriptors.
    pub server_pid: Option<u32>,
    /// Print the channels' events (subchannel changes, ejections, hedges)
    /// on stderr as they happen.
    pub verbose: bool,
}

/// Why a soak could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings make no run.
    #[error("{0}")]
    Invalid(String),
    /// The server could not be reached before the run.
    #[error(transparent)]
    Client(#[from] client::Error),
}

/// Runs the soak and reports.
///
/// # Errors
/// Settings that make no run, or a server that cannot be reached at the
/// start.
pub async fn run(config: SoakConfig) -> Result<SoakReport, Error> {
    if config.workers == 0 {
        return Err(Error::Invalid("--concurrency must be more than 0".into()));
    }
    if let Some(pid) = config.server_pid
        && sample(pid).is_none()
    {
        return Err(Error::Invalid(format!("cannot read /proc/{pid}: no such process, or not Linux")));
    }
    let options = ClientOptions { max_attempts: 1, ..config.options.clone() };
    // Reached before the clock starts.
    Client::connect_with(&config.target, options.clone()).await?;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let end = started + config.duration;
    let sampler = config.server_pid.map(|pid| tokio::spawn(sample_until(pid, started, end)));
    let mut workers = Vec::new();
    for worker in 0..config.workers {
        let (config, options, tally) = (config.clone(), options.clone(), Arc::clone(&tally));
        workers.push(tokio::spawn(async move { work(worker, &config, options, &tally, end).await }));
    }
    let mut stats = client::CallStats::default();
    for worker in workers {
        // A worker that panicked lost its calls: the counts show it.
        if let Ok(counts) = worker.await {
            stats.add(&counts);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let samples = match sampler {
        Some(sampler) => sampler.await.unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(report(&tally, seconds, &samples, stats).await)
}

/// One worker: the scenarios in turn (starting at its own), until `end`;
/// its clients' counts.
async fn work(
    worker: usize,
    config: &SoakConfig,
    options: ClientOptions,
    tally: &Tally,
    end: Instant,
) -> client::CallStats {
    let Ok(client) = Client::new(&config.target, options.clone()) else { return client::CallStats::default() };
    let short = ClientOptions { timeout: SHORT_DEADLINE, ..options.clone() };
    let Ok(short) = Client::new(&config.target, short) else { return client.stats() };
    if config.verbose {
        for client in [&client, &short] {
            events::show(client, Shown::Channel, Some(format!("worker {worker}")));
        }
    }
    let mut turn = worker;
    while Instant::now() < end {
        let scenario = SCENARIOS[turn % SCENARIOS.len()];
        turn += 1;
        if scenario == Scenario::Burst && config.burst == 0 {
            continue;
        }
        let calls = if scenario == Scenario::Burst { config.burst } else { 1 };
        tally.start(calls as u64);
        let outcomes = tokio::time::timeout(
            SCENARIO_LIMIT,
            traffic::run(scenario, config.burst, &config.target, &options, &client, &short),
        )
        .await;
        match outcomes {
            Ok(outcomes) => {
                for outcome in outcomes {
                    tally.end(scenario, outcome).await;
                }
            }
            Err(_) => {
                for _ in 0..calls {
                    tally.end(scenario, Outcome::Lost).await;
                }
            }
        }
    }
    let mut counts = client.stats();
    counts.add(&short.stats());
    counts
}
