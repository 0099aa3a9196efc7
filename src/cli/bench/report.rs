//! What a load run measured, merged from its recorders (`record.rs`) into
//! one [`Report`], printed as text or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::load::{LoadCall, LoadConfig, Model};
use super::record::{Deadlines, ErrorCount, Recorder};
use crate::client;

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
    /// Latency of the calls that ended OK alone (a server shedding load
    /// answers its refusals fast, which lowers `latency_us`).
    #[serde(default)]
    pub ok_latency_us: Latency,
    /// The latency histogram.
    pub histogram: Vec<Bucket>,
    /// Calls per final status code (`OK`, `UNAVAILABLE`, ...).
    pub status_codes: BTreeMap<String, u64>,
    /// Attempts sent to each backend address (every subchannel of every
    /// connection), retries included.
    #[serde(default)]
    pub backends: BTreeMap<String, u64>,
    /// The clients' own counts: calls, attempts, attempt durations.
    #[serde(default)]
    pub client: client::CallStats,
    /// The open model's queueing: from when each call was due to when it
    /// could be sent (it waited for a place); part of `latency_us`, and not
    /// of the call's own time. `None` in the closed model.
    #[serde(default)]
    pub queueing_us: Option<Latency>,
    /// The calls' deadline, and those that ended past it.
    #[serde(default)]
    pub deadline: Deadlines,
    /// Each distinct error, its code and how many calls ended with it, the
    /// most frequent first (as ghz's error distribution).
    #[serde(default)]
    pub error_messages: Vec<ErrorCount>,
}

/// The report of a run that took `elapsed`, from what `recorder` holds.
pub(super) fn report(
    config: &LoadConfig,
    recorder: &Recorder,
    elapsed: Duration,
    backends: BTreeMap<String, u64>,
    client: client::CallStats,
) -> Report {
    let latency = &recorder.latency;
    let calls = latency.len();
    let ok = recorder.codes.get("OK").copied().unwrap_or(0);
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
        latency_us: figures(latency),
        ok_latency_us: figures(&recorder.ok_latency),
        histogram: histogram(latency),
        status_codes: recorder.codes.iter().map(|(code, n)| ((*code).to_owned(), *n)).collect(),
        backends,
        client,
        queueing_us: rate.map(|_| figures(&recorder.queueing)),
        deadline: recorder.deadlines(),
        error_messages: recorder.error_counts(),
    }
}

/// The percentiles of `latency`.
fn figures(latency: &Histogram<u64>) -> Latency {
    if latency.is_empty() {
        return Latency::default();
    }
    Latency {
        min: latency.min(),
        mean: latency.mean(),
        p50: latency.value_at_quantile(0.5),
        p90: latency.value_at_quantile(0.9),
        p99: latency.value_at_quantile(0.99),
        p999: latency.value_at_quantile(0.999),
        max: latency.max(),
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
        if self.errors > 0 {
            let ok = &self.ok_latency_us;
            writeln!(f, "  OK calls alone: p50 {}  p99 {}  max {}", ok.p50, ok.p99, ok.max)?;
        }
        if let Some(q) = &self.queueing_us {
            writeln!(f, "Queueing (µs, due to sent, part of the latency above):")?;
            writeln!(f, "  p50 {}  p90 {}  p99 {}  max {}", q.p50, q.p90, q.p99, q.max)?;
        }
        let d = &self.deadline;
        writeln!(
            f,
            "Deadline:     {} ms; {} calls ended more than 5 ms past it (the latest {} µs past)",
            d.timeout_ms, d.late, d.most_past_us
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
        if !self.error_messages.is_empty() {
            writeln!(f, "Error distribution:")?;
            for error in &self.error_messages {
                writeln!(f, "  [{}] {}", error.count, error.message)?;
            }
        }
        if !self.backends.is_empty() {
            writeln!(f, "Backends (attempts):")?;
            for (address, count) in &self.backends {
                writeln!(f, "  {address:<20} {count}")?;
            }
        }
        writeln!(f, "Client: {}", self.client)?;
        Ok(())
    }
}
