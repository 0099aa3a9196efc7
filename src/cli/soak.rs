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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use super::events::{self, Shown};
use crate::client::{self, Client, ClientOptions, Target};
use crate::matcher;
use crate::pb::v1::{ClassifyRequest, CountRequest, ScanRequest, SearchRequest};
use crate::rpc::code_name;

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

/// The kinds of traffic, run in turn by every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scenario {
    /// A unary Search, its answer checked.
    Search,
    /// A Classify stream of three batches, every answer checked.
    Classify,
    /// A Count of a few batches, the totals checked.
    Count,
    /// A Scan of a text, every match counted.
    Scan,
    /// A Scan of a long text on a connection of its own, dropped with the
    /// connection after its first answer: a client that goes away.
    Disconnect,
    /// A Classify with a 100 ms deadline that goes quiet after one answer:
    /// the deadline ends it mid-stream.
    Deadline,
    /// Many Classify streams held open at once, past the server's limit of
    /// calls in flight when `--burst` is set so: some are shed.
    Burst,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario::Search,
    Scenario::Classify,
    Scenario::Count,
    Scenario::Scan,
    Scenario::Disconnect,
    Scenario::Deadline,
    Scenario::Burst,
];

impl Scenario {
    /// Its name in the report.
    fn name(self) -> &'static str {
        match self {
            Self::Search => "search",
            Self::Classify => "classify",
            Self::Count => "count",
            Self::Scan => "scan",
            Self::Disconnect => "disconnect",
            Self::Deadline => "deadline",
            Self::Burst => "burst",
        }
    }

    /// Whether a call of this scenario may end with `outcome`. Any call may
    /// be shed while the server is at its limit.
    fn allows(self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Code(Code::Ok | Code::ResourceExhausted) => self != Self::Deadline || outcome.is_shed(),
            Outcome::Code(Code::DeadlineExceeded) => self == Self::Deadline,
            Outcome::Dropped => self == Self::Disconnect,
            _ => false,
        }
    }
}

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    /// With this status code.
    Code(Code),
    /// Dropped by the client on purpose (a disconnect).
    Dropped,
    /// Answered OK, but wrongly.
    WrongAnswer,
    /// Not ended within the scenario's time limit.
    Lost,
}

impl Outcome {
    fn is_shed(self) -> bool {
        self == Self::Code(Code::ResourceExhausted)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Code(code) => code_name(code),
            Self::Dropped => "DROPPED_BY_CLIENT",
            Self::WrongAnswer => "WRONG_ANSWER",
            Self::Lost => "LOST",
        }
    }

    fn of(result: Result<(), client::Error>) -> Self {
        match result {
            Ok(()) => Self::Code(Code::Ok),
            Err(client::Error::Protocol(_)) => Self::WrongAnswer,
            Err(err) => err.code().map_or(Self::Code(Code::Unavailable), Self::Code),
        }
    }
}

/// The longest any one scenario may take before its calls count as lost.
const SCENARIO_LIMIT: Duration = Duration::from_secs(30);

/// The deadline of the Deadline scenario.
const SHORT_DEADLINE: Duration = Duration::from_millis(100);

/// What a soak saw.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    /// Seconds the traffic ran.
    pub seconds: f64,
    /// Calls started, and calls that ended (with any outcome).
    pub started: u64,
    /// Calls whose end was recorded.
    pub ended: u64,
    /// Calls that ended with a code their scenario does not allow.
    pub unexpected: u64,
    /// Calls that did not end within 30 s.
    pub lost: u64,
    /// Per scenario, the count of each outcome.
    pub outcomes: BTreeMap<String, BTreeMap<String, u64>>,
    /// The server's resident memory, KiB, sampled each second.
    pub rss_kib: Option<Series>,
    /// The server's open file descriptors, sampled each second.
    pub fds: Option<Series>,
    /// The workers' clients' counts: attempts, hedges, ejections, state
    /// changes.
    pub client: client::CallStats,
}

impl SoakReport {
    /// Whether the run met its assertions: every call ended, each with a
    /// code its scenario allows.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.unexpected == 0 && self.lost == 0 && self.started == self.ended
    }
}

/// A sampled quantity: where it started, its peak, where it ended, and its
/// least-squares slope per minute over the second half of the run.
#[derive(Debug, Serialize)]
pub struct Series {
    /// Samples taken.
    pub samples: usize,
    /// The first sample.
    pub first: u64,
    /// The largest sample.
    pub peak: u64,
    /// The last sample.
    pub last: u64,
    /// Change per minute over the last half (0 for a plateau).
    pub slope_per_minute: f64,
}

impl Series {
    fn of(samples: &[(f64, u64)]) -> Option<Self> {
        let (&(_, first), &(_, last)) = (samples.first()?, samples.last()?);
        let peak = samples.iter().map(|&(_, v)| v).max().unwrap_or(0);
        let half = &samples[samples.len() / 2..];
        Some(Self { samples: samples.len(), first, peak, last, slope_per_minute: slope(half) * 60.0 })
    }
}

/// The least-squares slope of `points` (per second), 0 for fewer than two.
fn slope(points: &[(f64, u64)]) -> f64 {
    #[allow(clippy::cast_precision_loss)] // counts of samples, far below 2^52
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)] // KiB and descriptors, far below 2^52
    let ys = || points.iter().map(|&(x, y)| (x, y as f64));
    let mean_x = ys().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = ys().map(|(_, y)| y).sum::<f64>() / n;
    let covariance: f64 = ys().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let variance: f64 = ys().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if variance == 0.0 { 0.0 } else { covariance / variance }
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

/// The outcomes so far, shared by the workers.
#[derive(Debug, Default)]
struct Tally {
    started: AtomicU64,
    outcomes: Mutex<HashMap<(Scenario, Outcome), u64>>,
}

impl Tally {
    fn start(&self, calls: u64) {
        self.started.fetch_add(calls, Ordering::Relaxed);
    }

    async fn end(&self, scenario: Scenario, outcome: Outcome) {
        *self.outcomes.lock().await.entry((scenario, outcome)).or_default() += 1;
    }
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

async fn report(tally: &Tally, seconds: f64, samples: &[Sample], client: client::CallStats) -> SoakReport {
    let counts = tally.outcomes.lock().await;
    let mut outcomes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut ended, mut unexpected, mut lost) = (0, 0, 0);
    for (&(scenario, outcome), &count) in counts.iter() {
        ended += count;
        if !scenario.allows(outcome) {
            unexpected += count;
        }
        if outcome == Outcome::Lost {
            lost += count;
        }
        outcomes.entry(scenario.name().to_owned()).or_default().insert(outcome.name().to_owned(), count);
    }
    let rss: Vec<(f64, u64)> = samples.iter().map(|s| (s.at, s.rss_kib)).collect();
    let fds: Vec<(f64, u64)> = samples.iter().map(|s| (s.at, s.fds)).collect();
    SoakReport {
        seconds,
        started: tally.started.load(Ordering::Relaxed),
        ended,
        unexpected,
        lost,
        outcomes,
        rss_kib: Series::of(&rss),
        fds: Series::of(&fds),
        client,
    }
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
        let outcomes =
            tokio::time::timeout(SCENARIO_LIMIT, run_scenario(scenario, config, &options, &client, &short)).await;
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

/// The outcome of each call of one scenario run.
async fn run_scenario(
    scenario: Scenario,
    config: &SoakConfig,
    options: &ClientOptions,
    client: &Client,
    short: &Client,
) -> Vec<Outcome> {
    match scenario {
        Scenario::Search => vec![Outcome::of(search(client).await)],
        Scenario::Classify => vec![Outcome::of(classify(client, 3).await)],
        Scenario::Count => vec![Outcome::of(count(client).await)],
        Scenario::Scan => vec![Outcome::of(scan(client).await)],
        Scenario::Disconnect => vec![disconnect(&config.target, options).await],
        Scenario::Deadline => vec![Outcome::of(go_quiet(short).await)],
        Scenario::Burst => {
            // All held at once: each waits for the others before it closes.
            let barrier = Arc::new(tokio::sync::Barrier::new(config.burst));
            let mut held = tokio::task::JoinSet::new();
            for _ in 0..config.burst {
                let (client, barrier) = (client.clone(), Arc::clone(&barrier));
                held.spawn(async move { Outcome::of(hold(&client, &barrier).await) });
            }
            let mut outcomes = Vec::with_capacity(config.burst);
            while let Some(outcome) = held.join_next().await {
                outcomes.push(outcome.unwrap_or(Outcome::Lost));
            }
            outcomes
        }
    }
}

fn wrong(message: String) -> client::Error {
    client::Error::Protocol(message)
}

/// Queries with known answers: half contain "banana".
fn queries(n: usize) -> Vec<String> {
    (0..n).map(|i| if i % 2 == 0 { format!("{i} BaNaNa") } else { format!("{i} apple") }).collect()
}

async fn search(client: &Client) -> Result<(), client::Error> {
    let answer = client.search(SearchRequest { query: "a Banana split".into() }).await?;
    if answer.status != 1 {
        return Err(wrong(format!("Search answered {}", answer.status)));
    }
    Ok(())
}

/// A Classify stream of `batches` batches, each answer checked; with one
/// batch, the stream stays open until its answer came (a held stream).
async fn classify(client: &Client, batches: usize) -> Result<(), client::Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(batches.max(1));
    let mut responses = client.classify(ReceiverStream::new(rx)).await?;
    let mut expected_index = 0u64;
    for _ in 0..batches {
        let batch = queries(10);
        let expected: Vec<i32> = batch.iter().map(|q| matcher::status(q)).collect();
        if tx.send(ClassifyRequest { queries: batch }).await.is_err() {
            break; // the call ended: its status comes below
        }
        let Some(answer) = responses.message().await? else {
            return Err(wrong("Classify ended before its answer".into()));
        };
        if answer.first_index != expected_index || answer.statuses != expected {
            return Err(wrong("Classify answered wrongly".into()));
        }
        expected_index += expected.len() as u64;
    }
    drop(tx);
    match responses.message().await? {
        None => Ok(()),
        Some(_) => Err(wrong("Classify answered more than it was asked".into())),
    }
}

async fn count(client: &Client) -> Result<(), client::Error> {
    let batches: Vec<CountRequest> = (0..4).map(|_| CountRequest { queries: queries(25) }).collect();
    let answer = client.count(tokio_stream::iter(batches)).await?;
    if (answer.queries, answer.matches) != (100, 52) {
        return Err(wrong(format!("Count answered {} queries, {} matches", answer.queries, answer.matches)));
    }
    Ok(())
}

async fn scan(client: &Client) -> Result<(), client::Error> {
    let text = "one banana\nno fruit\nBANANA banana\n".repeat(200);
    let mut responses = client.scan(ScanRequest { text }).await?;
    let mut found = 0;
    while let Some(answer) = responses.message().await? {
        found += answer.matches.len();
    }
    if found != 600 {
        return Err(wrong(format!("Scan found {found} matches of 600")));
    }
    Ok(())
}

/// A client of its own that starts a long Scan, reads one answer and goes
/// away, connection and all.
async fn disconnect(target: &Target, options: &ClientOptions) -> Outcome {
    let client = match Client::connect_with(target, options.clone()).await {
        Ok(client) => client,
        Err(err) => return Outcome::of(Err(err)),
    };
    let text = "banana ".repeat(300_000);
    let mut responses = match client.scan(ScanRequest { text }).await {
        Ok(responses) => responses,
        Err(err) => return Outcome::of(Err(err)),
    };
    match responses.message().await {
        Ok(Some(_)) => {
            drop(responses);
            client.shutdown();
            Outcome::Dropped
        }
        Ok(None) => Outcome::WrongAnswer,
        Err(err) => Outcome::of(Err(err)),
    }
}

/// A Classify stream held open until every stream of its burst has been
/// answered or refused, then closed.
async fn hold(client: &Client, barrier: &tokio::sync::Barrier) -> Result<(), client::Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let opened = client.classify(ReceiverStream::new(rx)).await;
    let first = match opened {
        Ok(mut responses) => {
            let _ = tx.send(ClassifyRequest { queries: queries(2) }).await;
            responses.message().await.map(|answer| (responses, answer))
        }
        Err(err) => Err(err),
    };
    barrier.wait().await;
    let (mut responses, answer) = first?;
    if answer.is_none_or(|answer| answer.statuses != [1, 0]) {
        return Err(wrong("a held Classify answered wrongly".into()));
    }
    drop(tx);
    match responses.message().await? {
        None => Ok(()),
        Some(_) => Err(wrong("Classify answered more than it was asked".into())),
    }
}

/// A Classify on the short-deadline client: one answer, then silence until
/// the deadline ends the stream.
async fn go_quiet(short: &Client) -> Result<(), client::Error> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut responses = short.classify(ReceiverStream::new(rx)).await?;
    let _ = tx.send(ClassifyRequest { queries: queries(1) }).await;
    while responses.message().await?.is_some() {}
    drop(tx);
    Ok(())
}

/// One sample of the server's process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Seconds since the start.
    at: f64,
    rss_kib: u64,
    fds: u64,
}

/// The resident memory (KiB) and open descriptors of `pid`, from `/proc`.
fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let rss_kib = rss.trim().trim_end_matches("kB").trim().parse().ok()?;
    let fds = std::fs::read_dir(PathBuf::from(format!("/proc/{pid}/fd"))).ok()?.count() as u64;
    Some((rss_kib, fds))
}

/// Samples `pid` once a second from `started` until `end`.
async fn sample_until(pid: u32, started: Instant, end: Instant) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() <= end {
        tick.tick().await;
        if let Some((rss_kib, fds)) = sample(pid) {
            samples.push(Sample { at: started.elapsed().as_secs_f64(), rss_kib, fds });
        }
    }
    samples
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[allow(clippy::cast_precision_loss)] // a rate for people
        let rate = self.ended as f64 / self.seconds.max(f64::EPSILON);
        writeln!(f, "Soak: {:.1} s, {} calls ({rate:.1}/s)", self.seconds, self.ended)?;
        writeln!(
            f,
            "  started {}, ended {}, unexpected {}, lost {}",
            self.started, self.ended, self.unexpected, self.lost
        )?;
        for (scenario, outcomes) in &self.outcomes {
            let counts: Vec<String> = outcomes.iter().map(|(name, n)| format!("{name} {n}")).collect();
            writeln!(f, "  {scenario:<10} {}", counts.join(", "))?;
        }
        if let Some(rss) = &self.rss_kib {
            #[allow(clippy::cast_precision_loss)] // KiB for people
            let mib = |kib: u64| kib as f64 / 1024.0;
            writeln!(
                f,
                "Server RSS: first {:.1} MiB, peak {:.1} MiB, last {:.1} MiB; over the last half {:+.3} MiB/min ({} samples)",
                mib(rss.first),
                mib(rss.peak),
                mib(rss.last),
                rss.slope_per_minute / 1024.0,
                rss.samples
            )?;
        }
        if let Some(fds) = &self.fds {
            writeln!(
                f,
                "Server fds: first {}, peak {}, last {}; over the last half {:+.2}/min",
                fds.first, fds.peak, fds.last, fds.slope_per_minute
            )?;
        }
        writeln!(f, "Client: {}", self.client)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_is_zero_on_a_plateau_and_exact_on_a_line() {
        assert!(slope(&[(0.0, 5), (1.0, 5), (2.0, 5)]).abs() < 1e-9);
        assert!((slope(&[(0.0, 10), (1.0, 12), (2.0, 14), (3.0, 16)]) - 2.0).abs() < 1e-9);
        assert!(slope(&[(0.0, 10)]).abs() < 1e-9);
    }

    #[test]
    fn each_scenario_allows_only_its_own_ends() {
        let ok = Outcome::Code(Code::Ok);
        let shed = Outcome::Code(Code::ResourceExhausted);
        let late = Outcome::Code(Code::DeadlineExceeded);
        assert!(Scenario::Search.allows(ok) && Scenario::Search.allows(shed));
        assert!(!Scenario::Search.allows(late) && !Scenario::Search.allows(Outcome::Dropped));
        assert!(Scenario::Deadline.allows(late) && Scenario::Deadline.allows(shed) && !Scenario::Deadline.allows(ok));
        assert!(Scenario::Disconnect.allows(Outcome::Dropped));
        for scenario in SCENARIOS {
            assert!(!scenario.allows(Outcome::Lost) && !scenario.allows(Outcome::WrongAnswer));
            assert!(!scenario.allows(Outcome::Code(Code::Internal)));
        }
    }

    #[test]
    fn the_series_reports_the_peak_and_the_last_half() {
        let samples = [(0.0, 100), (1.0, 300), (2.0, 200), (3.0, 200), (4.0, 200)];
        let series = Series::of(&samples).expect("samples");
        assert_eq!((series.first, series.peak, series.last, series.samples), (100, 300, 200, 5));
        assert!(series.slope_per_minute.abs() < 1e-9, "a plateau over the last half");
    }
}
