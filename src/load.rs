//! The load generator behind `client bench` (what ghz does for gRPC):
//! a closed model (N workers over C connections, each sending its next call
//! when the last one is answered) and an open model (a fixed rate, latency
//! measured from each call's intended send time so that a stalled server
//! cannot hide behind coordinated omission), an HDR latency histogram, and
//! counts per status code. Every run is bounded in calls and in time.

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{self, Client, ClientOptions, Target};
use crate::pb::v1::{ClassifyRequest, SearchRequest};

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
    /// failure is counted, not hidden.
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
}

/// Latency figures, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Fastest call.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest call.
    pub max: u64,
}

/// One bar of the latency histogram: calls at most `le_us` microseconds
/// (and more than the previous bar's bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Upper bound, microseconds.
    pub le_us: u64,
    /// Calls in this bar.
    pub count: u64,
}

/// What a run measured; `--json` prints it as one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The RPC driven.
    pub call: LoadCall,
    /// `closed` or `open`.
    pub model: String,
    /// The open model's rate, calls per second.
    pub rate: Option<f64>,
    /// Connections used.
    pub connections: usize,
    /// Workers, or the most calls in flight.
    pub concurrency: usize,
    /// Calls completed, whatever their status: `ok + errors`.
    pub calls: u64,
    /// Calls that ended OK.
    pub ok: u64,
    /// Calls that ended otherwise.
    pub errors: u64,
    /// Queries answered (one per Search; a batch per Classify call).
    pub queries: u64,
    /// Wall time of the run, seconds.
    pub elapsed_seconds: f64,
    /// Calls per second.
    pub throughput: f64,
    /// Latency of every completed call, errors included.
    pub latency_us: Latency,
    /// The latency histogram.
    pub histogram: Vec<Bucket>,
    /// Calls per final status code (`OK`, `UNAVAILABLE`, ...).
    pub status_codes: BTreeMap<String, u64>,
}

/// What one worker (or the open model's collector) recorded.
struct Recorder {
    latency: Histogram<u64>,
    codes: BTreeMap<&'static str, u64>,
    queries: u64,
}

impl Recorder {
    fn new() -> Self {
        // Microseconds from 1 µs to an hour, 3 significant digits.
        let latency = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid");
        Self { latency, codes: BTreeMap::new(), queries: 0 }
    }

    fn record(&mut self, elapsed: Duration, outcome: Result<u64, &client::Error>) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(micros);
        let code = match outcome {
            Ok(queries) => {
                self.queries += queries;
                "OK"
            }
            Err(err) => err.code().map_or("UNAVAILABLE", client::code_name),
        };
        *self.codes.entry(code).or_default() += 1;
    }

    fn merge(&mut self, other: &Self) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (code, n) in &other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        self.queries += other.queries;
    }
}

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
        // Connected before the clock starts: dialing is not part of the figures.
        clients.push(Client::connect_with(&config.target, options.clone()).await?);
    }
    let progress = progress_bar(&config);
    let started = Instant::now();
    let recorder = match config.model {
        Model::Closed => closed(&config, &clients, started, &progress).await,
        Model::Open { rate } => open(&config, &clients, rate, started, &progress).await,
    };
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    Ok(report(&config, &recorder, elapsed))
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
        let legacy = config.legacy;
        workers.push(tokio::spawn(async move {
            let mut recorder = Recorder::new();
            let take = || tickets.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < end;
            match call {
                LoadCall::Search => {
                    let mut next = worker;
                    while take() {
                        let query = queries[next % queries.len()].clone();
                        next += 1;
                        let sent = Instant::now();
                        let outcome = search(&client, legacy, query).await;
                        recorder.record(sent.elapsed(), outcome.as_ref().copied());
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
    let mut all = Recorder::new();
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
                recorder.record(sent.elapsed(), Err(&err));
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
            recorder.record(sent.elapsed(), outcome.as_ref().copied());
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
    let recorder = Arc::new(Mutex::new(Recorder::new()));
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
            let outcome = search(&client, legacy, query).await;
            // From when the call was due, not from when it could be sent.
            recorder.lock().await.record(from.elapsed(), outcome.as_ref().copied());
            progress.inc(1);
            drop(place);
        }));
    }
    for call in calls {
        if let Err(err) = call.await {
            std::panic::resume_unwind(err.into_panic());
        }
    }
    Arc::try_unwrap(recorder).map_or_else(|_| Recorder::new(), Mutex::into_inner)
}

fn report(config: &LoadConfig, recorder: &Recorder, elapsed: Duration) -> Report {
    let latency = &recorder.latency;
    let calls = latency.len();
    let ok = recorder.codes.get("OK").copied().unwrap_or(0);
    let figures = if calls == 0 {
        Latency::default()
    } else {
        Latency {
            min: latency.min(),
            mean: latency.mean(),
            p50: latency.value_at_quantile(0.5),
            p90: latency.value_at_quantile(0.9),
            p99: latency.value_at_quantile(0.99),
            p999: latency.value_at_quantile(0.999),
            max: latency.max(),
        }
    };
    let (model, rate) = match config.model {
        Model::Closed => ("closed", None),
        Model::Open { rate } => ("open", Some(rate)),
    };
    Report {
        call: config.call,
        model: model.to_owned(),
        rate,
        connections: config.connections,
        concurrency: config.concurrency,
        calls,
        ok,
        errors: calls - ok,
        queries: recorder.queries,
        elapsed_seconds: elapsed.as_secs_f64(),
        throughput: if elapsed.is_zero() { 0.0 } else { calls as f64 / elapsed.as_secs_f64() },
        latency_us: figures,
        histogram: histogram(latency),
        status_codes: recorder.codes.iter().map(|(code, n)| ((*code).to_owned(), *n)).collect(),
    }
}

/// Ten bars of equal width between the fastest and the slowest call.
fn histogram(latency: &Histogram<u64>) -> Vec<Bucket> {
    if latency.is_empty() {
        return Vec::new();
    }
    let (low, high) = (latency.min(), latency.max());
    let step = (high - low).div_ceil(10).max(1);
    let mut buckets = Vec::new();
    let mut below = 0;
    let mut bound = low;
    while below < latency.len() {
        bound = (bound + step).min(high);
        let upto = latency.iter_recorded().filter(|v| v.value_iterated_to() <= bound).map(|v| v.count_at_value()).sum();
        buckets.push(Bucket { le_us: bound, count: upto - below });
        below = upto;
        if bound == high {
            break;
        }
    }
    buckets
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = match self.call {
            LoadCall::Search => "Search (unary)",
            LoadCall::Classify => "Classify (bidirectional, one batch per call)",
        };
        writeln!(f, "Summary:")?;
        match self.rate {
            Some(rate) => writeln!(f, "  call        {call}, open model at {rate} calls/s")?,
            None => writeln!(f, "  call        {call}, closed model")?,
        }
        writeln!(f, "  load        {} connections, concurrency {}", self.connections, self.concurrency)?;
        writeln!(f, "  calls       {} ({} OK, {} errors), {} queries", self.calls, self.ok, self.errors, self.queries)?;
        writeln!(f, "  elapsed     {:.3} s", self.elapsed_seconds)?;
        writeln!(f, "  throughput  {:.1} calls/s", self.throughput)?;
        let l = &self.latency_us;
        writeln!(f, "Latency (µs):")?;
        writeln!(
            f,
            "  min {}  mean {:.1}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            l.min, l.mean, l.p50, l.p90, l.p99, l.p999, l.max
        )?;
        writeln!(f, "Histogram (µs):")?;
        let widest = self.histogram.iter().map(|b| b.count).max().unwrap_or(1).max(1);
        for bucket in &self.histogram {
            let bar = "■".repeat(usize::try_from(bucket.count * 40 / widest).unwrap_or(40));
            writeln!(f, "  <= {:>9}  {:>9}  {bar}", bucket.le_us, bucket.count)?;
        }
        writeln!(f, "Status codes:")?;
        for (code, count) in &self.status_codes {
            writeln!(f, "  {code:<20} {count}")?;
        }
        Ok(())
    }
}
