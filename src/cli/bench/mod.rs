//! The load generator behind `client bench` (what ghz does for gRPC):
//! a closed model (N workers over C connections, each sending its next call
//! when the last one is answered) and an open model (a fixed rate, latency
//! measured from each call's intended send time so that a stalled server
//! cannot hide behind coordinated omission), an HDR latency histogram, and
//! counts per status code. Every run is bounded in calls and in time.
//!
//! goose (checked), the Rust load-testing library, sends HTTP requests
//! through reqwest; a run here must call through this crate's [`Client`],
//! whose balancing and retries are part of what it measures.
//!
//! Files:
//! - `mod.rs`: the run ([`run`]): its workers, pacing and progress bar.
//! - `load.rs`: what a run is (the RPC, the pacing, the settings).
//! - `report.rs`: what it measured ([`Report`]). mod.rs imports both,
//!   report.rs only load.rs.

mod load;
mod record;
mod report;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

pub use self::load::{LoadCall, LoadConfig, Model};
use self::record::Recorder;
use self::report::report;
pub use self::report::{Bucket, Latency, Report};
use super::events::{self, Shown};
use crate::client::{self, Client, ClientOptions};
use crate::pb::v1::{ClassifyRequest, SearchRequest};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings make no run.
    #[error("{0}")]
    Invalid(&'static str),
    /// The server could not be reached before the run.
    #[error(transparent)]
    Client(#[from] client::Error),
}

/// Runs the load and reports.
///
/// # Errors
/// Settings that make no run (no queries, zero workers, the open model on
/// Classify), or a server that cannot be reached at the start.
pub async fn run(config: LoadConfig) -> Result<Report, Error> {
    if config.queries.is_empty() {
        return Err(Error::Invalid("no queries to send"));
    }
    if config.concurrency == 0 || config.connections == 0 || config.batch == 0 {
        return Err(Error::Invalid("--concurrency, --connections and --batch must be more than 0"));
    }
    if matches!(config.model, Model::Open { .. }) && config.call == LoadCall::Classify {
        return Err(Error::Invalid("the open model (--rate) drives unary Search calls only"));
    }
    let mut options = ClientOptions { max_attempts: 1, ..config.options.clone() };
    if config.call == LoadCall::Classify {
        // One stream per worker lives the whole run.
        options.timeout = config.duration + options.timeout;
    }
    let mut clients = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let client = Client::new(&config.target, options.clone())?;
        if config.verbose {
            events::show(&client, Shown::Channel, None);
        }
        // Connected before the clock starts: dialing is not part of the figures.
        client.reach().await?;
        clients.push(client);
    }
    // Every subchannel the policy uses is up (or failed) before the clock
    // starts, and what connecting sent (health checks) is not counted.
    for client in &clients {
        client.settle(config.options.connect_timeout).await;
    }
    let before: Vec<(Vec<client::Backend>, client::CallStats)> =
        clients.iter().map(|client| (client.backends(), client.stats())).collect();
    let progress = progress_bar(&config);
    let started = Instant::now();
    let recorder = match config.model {
        Model::Closed => closed(&config, &clients, started, &progress).await,
        Model::Open { rate } => open(&config, &clients, rate, started, &progress).await,
    };
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    let mut backends: BTreeMap<String, u64> = BTreeMap::new();
    let mut stats = client::CallStats::default();
    for (client, (backends_before, stats_before)) in clients.iter().zip(&before) {
        for backend in client.backends() {
            let earlier = backends_before.iter().find(|b| b.address == backend.address).map_or(0, |b| b.calls);
            *backends.entry(backend.address).or_default() += backend.calls - earlier.min(backend.calls);
        }
        stats.add(&client.stats().since(stats_before));
    }
    Ok(report(&config, &recorder, elapsed, backends, stats))
}

fn progress_bar(config: &LoadConfig) -> ProgressBar {
    if !config.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(config.total);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} calls, {per_sec}, {elapsed} (at most {msg})")
    {
        bar.set_style(style);
    }
    bar.set_message(humantime::format_duration(config.duration).to_string());
    bar
}

/// The closed model: `concurrency` workers share a budget of `total` calls.
async fn closed(config: &LoadConfig, clients: &[Client], started: Instant, progress: &ProgressBar) -> Recorder {
    let end = started + config.duration;
    let tickets = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(config.concurrency);
    for worker in 0..config.concurrency {
        let client = clients[worker % clients.len()].clone();
        let (tickets, progress) = (Arc::clone(&tickets), progress.clone());
        let (queries, call, batch, total) = (config.queries.clone(), config.call, config.batch, config.total);
        let (legacy, timeout) = (config.legacy, config.options.timeout);
        workers.push(tokio::spawn(async move {
            let mut recorder = Recorder::new(timeout);
            let take = || tickets.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < end;
            match call {
                LoadCall::Search => {
                    let mut next = worker;
                    while take() {
                        let query = queries[next % queries.len()].clone();
                        next += 1;
                        let sent = Instant::now();
                        let outcome = search(&client, legacy, query).await;
                        let took = sent.elapsed();
                        recorder.record(took, took, outcome.as_ref().copied());
                        progress.inc(1);
                    }
                }
                LoadCall::Classify => {
                    classify_worker(&client, &queries, batch, worker, take, &mut recorder, &progress).await
                }
            }
            recorder
        }));
    }
    let mut all = Recorder::new(config.options.timeout);
    for worker in workers {
        // A worker never panics on a server's answer; a panic is a bug.
        match worker.await {
            Ok(recorder) => all.merge(&recorder),
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    }
    all
}

/// One Search call, on the v1 or the legacy path; `Ok(1)`: one query answered.
async fn search(client: &Client, legacy: bool, query: String) -> Result<u64, client::Error> {
    let request = SearchRequest { query };
    let answered = if legacy { client.search_legacy(request).await } else { client.search(request).await };
    answered.map(|_| 1)
}

/// One Classify stream per worker: send a batch, wait for its answer, repeat.
/// A stream that fails is counted and replaced.
async fn classify_worker(
    client: &Client,
    queries: &[String],
    batch: usize,
    worker: usize,
    mut take: impl FnMut() -> bool,
    recorder: &mut Recorder,
    progress: &ProgressBar,
) {
    let message: Vec<String> = (0..batch).map(|i| queries[(worker + i) % queries.len()].clone()).collect();
    'streams: while take() {
        let (tx, rx) = mpsc::channel(1);
        let sent = Instant::now();
        let mut answers = match client.classify(ReceiverStream::new(rx)).await {
            Ok(answers) => answers,
            Err(err) => {
                let took = sent.elapsed();
                recorder.record(took, took, Err(&err));
                progress.inc(1);
                continue;
            }
        };
        let mut first = true;
        loop {
            if !first && !take() {
                break 'streams;
            }
            first = false;
            let sent = Instant::now();
            let outcome = match tx.send(ClassifyRequest { queries: message.clone() }).await {
                Ok(()) => match answers.message().await {
                    Ok(Some(answer)) => Ok(answer.statuses.len() as u64),
                    Ok(None) => Err(client::Error::Protocol("the stream ended early".into())),
                    Err(err) => Err(err),
                },
                Err(_) => Err(client::Error::Protocol("the stream closed".into())),
            };
            let took = sent.elapsed();
            recorder.record(took, took, outcome.as_ref().copied());
            progress.inc(1);
            if outcome.is_err() {
                continue 'streams;
            }
        }
    }
}

/// The resolution of tokio's timer.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// The open model: call `i` is due at `started + i / rate`; at most
/// `concurrency` calls are in flight, and a call that must wait for a place
/// has the wait counted in its latency.
async fn open(
    config: &LoadConfig,
    clients: &[Client],
    rate: f64,
    started: Instant,
    progress: &ProgressBar,
) -> Recorder {
    let end = started + config.duration;
    let places = Arc::new(Semaphore::new(config.concurrency));
    let recorder = Arc::new(Mutex::new(Recorder::new(config.options.timeout)));
    let mut calls = Vec::new();
    for i in 0..config.total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if due >= end {
            break;
        }
        // tokio's timer fires up to a millisecond late: wake a millisecond
        // early and count from the earlier of the due time and the send.
        tokio::time::sleep_until(due.checked_sub(TIMER_SLACK).unwrap_or(due)).await;
        let Ok(place) = Arc::clone(&places).acquire_owned().await else { break };
        let from = Instant::now().min(due);
        let client = clients[i as usize % clients.len()].clone();
        let query = config.queries[i as usize % config.queries.len()].clone();
        let (recorder, progress, legacy) = (Arc::clone(&recorder), progress.clone(), config.legacy);
        calls.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = search(&client, legacy, query).await;
            // From when the call was due, not from when it could be sent;
            // and its own time, against its deadline.
            recorder.lock().await.record(from.elapsed(), sent.elapsed(), outcome.as_ref().copied());
            progress.inc(1);
            drop(place);
        }));
    }
    for call in calls {
        if let Err(err) = call.await {
            std::panic::resume_unwind(err.into_panic());
        }
    }
    Arc::try_unwrap(recorder).map_or_else(|_| Recorder::new(config.options.timeout), Mutex::into_inner)
}
