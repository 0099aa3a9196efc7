//! What one worker (or the open model's collector) records of its calls:
//! latency (HDR), the open model's queueing apart from it, each call's own
//! time against its deadline, counts per status code, each distinct error.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::client;
use crate::rpc::code_name;

/// How far past its deadline a call may end before it counts as late: the
/// timer's resolution and a scheduler's turn.
const SLACK: Duration = Duration::from_millis(5);
/// Distinct error messages kept; the rest are counted together.
const MAX_MESSAGES: usize = 64;

/// Calls against their deadline: each call's own time (from when it was
/// sent, queueing aside) against `--timeout`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deadlines {
    /// The deadline of every call, milliseconds.
    pub timeout_ms: u64,
    /// Calls that ended more than the timer's slack (5 ms) past it.
    pub late: u64,
    /// How far past its deadline the latest call ended, microseconds (0:
    /// none did).
    pub most_past_us: u64,
}

/// One distinct error of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// Its status code (`UNAVAILABLE`, ...), or how the call could not be
    /// made (`CONNECT`, `PROTOCOL`, `SHUTDOWN`).
    pub code: String,
    /// The one-line error.
    pub message: String,
    /// Calls that ended with it.
    pub count: u64,
}

/// The recorder of one worker.
pub(super) struct Recorder {
    pub(super) latency: Histogram<u64>,
    /// The latency of the calls that ended OK alone.
    pub(super) ok_latency: Histogram<u64>,
    pub(super) queueing: Histogram<u64>,
    pub(super) codes: BTreeMap<&'static str, u64>,
    errors: HashMap<(&'static str, String), u64>,
    pub(super) queries: u64,
    deadline: Duration,
    late: u64,
    most_past: Duration,
}

impl Recorder {
    /// A recorder of calls whose deadline is `deadline`.
    pub(super) fn new(deadline: Duration) -> Self {
        Self {
            latency: micros(),
            ok_latency: micros(),
            queueing: micros(),
            codes: BTreeMap::new(),
            errors: HashMap::new(),
            queries: 0,
            deadline,
            late: 0,
            most_past: Duration::ZERO,
        }
    }

    /// A call that ended `latency` after it was due, `took` after it was
    /// sent (the same in the closed model), as `outcome` says.
    pub(super) fn record(&mut self, latency: Duration, took: Duration, outcome: Result<u64, &client::Error>) {
        self.latency.saturating_record(as_micros(latency));
        self.queueing.saturating_record(as_micros(latency.saturating_sub(took)));
        let past = took.saturating_sub(self.deadline);
        if past > SLACK {
            self.late += 1;
        }
        self.most_past = self.most_past.max(past);
        let code = match outcome {
            Ok(queries) => {
                self.queries += queries;
                self.ok_latency.saturating_record(as_micros(latency));
                "OK"
            }
            Err(err) => {
                let code = match err {
                    client::Error::Throttled { .. } => "THROTTLED",
                    err => err.code().map_or_else(|| kind(err), code_name),
                };
                let known = self.errors.len() < MAX_MESSAGES;
                let message = if known { err.to_string() } else { "(other errors)".to_owned() };
                *self.errors.entry((code, message)).or_default() += 1;
                code
            }
        };
        *self.codes.entry(code).or_default() += 1;
    }

    /// Adds what `other` recorded.
    pub(super) fn merge(&mut self, other: &Self) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.ok_latency.add(&other.ok_latency);
        let _ = self.queueing.add(&other.queueing);
        for (code, n) in &other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        for (error, n) in &other.errors {
            *self.errors.entry(error.clone()).or_default() += n;
        }
        self.queries += other.queries;
        self.late += other.late;
        self.most_past = self.most_past.max(other.most_past);
    }

    /// The calls against their deadline.
    pub(super) fn deadlines(&self) -> Deadlines {
        Deadlines {
            timeout_ms: u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX),
            late: self.late,
            most_past_us: u64::try_from(self.most_past.as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// Each distinct error, the most frequent first.
    pub(super) fn error_counts(&self) -> Vec<ErrorCount> {
        let mut counts: Vec<ErrorCount> = self
            .errors
            .iter()
            .map(|((code, message), count)| ErrorCount {
                code: (*code).to_owned(),
                message: message.clone(),
                count: *count,
            })
            .collect();
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.message.cmp(&b.message)));
        counts
    }
}

/// What a call that ended without a status failed with.
fn kind(err: &client::Error) -> &'static str {
    match err {
        client::Error::Connect { .. } => "CONNECT",
        client::Error::Shutdown => "SHUTDOWN",
        _ => "PROTOCOL",
    }
}

/// A histogram of microseconds from 1 µs to an hour, 3 significant digits.
fn micros() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

/// `duration` in whole microseconds, at least 1 (the histogram's floor).
fn as_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use tonic::Status;

    use super::*;

    #[test]
    fn errors_are_counted_by_message_most_frequent_first_and_late_calls_apart() {
        let mut recorder = Recorder::new(Duration::from_millis(100));
        let ms = Duration::from_millis;
        let unavailable = client::Error::Rpc(Status::unavailable("the connection broke under the call: reset"));
        let refused = client::Error::Connect { target: "127.0.0.1:1".into(), cause: "Connection refused".into() };
        recorder.record(ms(3), ms(3), Ok(1));
        recorder.record(ms(50), ms(50), Err(&refused));
        for _ in 0..2 {
            recorder.record(ms(20), ms(20), Err(&unavailable));
        }
        // Ended 4 ms past the deadline: the timer's slack, not late.
        recorder.record(ms(104), ms(104), Ok(1));
        // Waited 300 ms for a place, then took 130 ms: 30 ms late.
        recorder.record(ms(430), ms(130), Ok(1));
        let errors = recorder.error_counts();
        let seen: Vec<(&str, &str, u64)> =
            errors.iter().map(|e| (e.code.as_str(), e.message.as_str(), e.count)).collect();
        assert_eq!(
            seen,
            [
                ("UNAVAILABLE", "UNAVAILABLE: the connection broke under the call: reset", 2),
                ("CONNECT", "cannot connect to 127.0.0.1:1: Connection refused", 1),
            ]
        );
        assert_eq!(recorder.deadlines(), Deadlines { timeout_ms: 100, late: 1, most_past_us: 30_000 });
        assert_eq!(recorder.queueing.max(), recorder.queueing.highest_equivalent(300_000));
        assert_eq!(recorder.codes.get("OK"), Some(&3));
    }
}
