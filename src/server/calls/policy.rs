//! The per-call decisions of the server: a call's deadline (from
//! `grpc-timeout`, a default, a cap), admission under the limit of calls in
//! flight (load shedding, no queue; a fixed limit, and an adaptive one
//! when on: `adaptive.rs`), and the cut that ends every call when a
//! drain's grace is over.
//!
//! Crates checked: tower's `ConcurrencyLimit` with `LoadShed` sheds the
//! same way, but gives its place back when the response's headers are
//! ready, so a streaming call would stop counting while its body still
//! runs (an [`Admitted`] is held until the body ends); tonic parses
//! `grpc-timeout` in its transport server only, privately.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http::HeaderMap;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::adaptive::Adaptive;
use crate::pb::v1::search_service_server::SERVICE_NAME;
use crate::rpc::header::GRPC_TIMEOUT;
use crate::server::config::ServerConfig;

/// The settings and shared state of the per-call layer.
#[derive(Debug)]
pub struct CallPolicy {
    default_timeout: Duration,
    max_timeout: Duration,
    pub(super) max_recv_bytes: usize,
    max_concurrent_calls: usize,
    in_flight: AtomicUsize,
    /// Calls refused at the limit since the start.
    shed: AtomicU64,
    /// The adaptive limit, when on.
    adaptive: Option<Adaptive>,
    /// `--fail-calls`: of every `fail_calls + 1` calls, the first refused.
    fail_calls: u64,
    /// Calls seen, for `fail_calls`.
    calls: AtomicU64,
    /// `--work-per-call`: the CPU time each Search call burns.
    work_per_call: Duration,
    /// Cancelled when a drain's grace is over: every call still running ends.
    pub(super) cut: CancellationToken,
}

impl CallPolicy {
    /// The policy of `config`; cancelling `cut` ends every call in flight.
    #[must_use]
    pub fn new(config: &ServerConfig, cut: CancellationToken) -> Self {
        Self {
            default_timeout: config.default_timeout,
            max_timeout: config.max_timeout,
            max_recv_bytes: config.max_recv_bytes,
            max_concurrent_calls: config.max_concurrent_calls,
            in_flight: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
            adaptive: config.admission.map(Adaptive::new),
            fail_calls: u64::from(config.fail_calls),
            calls: AtomicU64::new(0),
            work_per_call: config.work_per_call,
            cut,
        }
    }

    /// Calls admitted and not yet finished (their responses included).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Calls refused at `--max-concurrent-calls` since the start.
    #[must_use]
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// The adaptive limit now and the calls it shed since the start, when
    /// it is on.
    #[must_use]
    pub fn adaptive(&self) -> Option<(usize, u64)> {
        self.adaptive.as_ref().map(|adaptive| (adaptive.limit(), adaptive.shed()))
    }

    /// An admitted call's answer was ready after `latency`: a sample for
    /// the adaptive limit.
    pub(super) fn sample(&self, latency: Duration) {
        if let Some(adaptive) = &self.adaptive {
            adaptive.sample(latency);
        }
    }

    /// The deadline of a call, from its `grpc-timeout` header: the default
    /// when there is none, the cap when it asks for more.
    pub(in crate::server) fn timeout(&self, headers: &HeaderMap) -> Result<Duration, Status> {
        let Some(value) = headers.get(GRPC_TIMEOUT) else {
            return Ok(self.default_timeout);
        };
        let asked = value.to_str().ok().and_then(parse_grpc_timeout).ok_or_else(|| {
            Status::invalid_argument(format!(
                "invalid grpc-timeout header {value:?}: expected 1 to 8 digits and a unit (H, M, S, m, u or n)"
            ))
        })?;
        if asked.is_zero() {
            return Err(Status::deadline_exceeded("the call's deadline (grpc-timeout 0) had passed when it arrived"));
        }
        Ok(asked.min(self.max_timeout))
    }

    /// The refusal `--fail-calls` asks of the call to `path`, if any: the
    /// first `fail_calls` of every `fail_calls + 1` calls of the Search
    /// service (never a health watch, nor a load report's stream: the fault
    /// is in the service, not in the server's reachability).
    pub(super) fn fault(&self, path: &str) -> Option<Status> {
        if self.fail_calls == 0 || !searched(path) {
            return None;
        }
        let seen = self.calls.fetch_add(1, Ordering::Relaxed);
        (seen % (self.fail_calls + 1) < self.fail_calls)
            .then(|| Status::unavailable("refused by --fail-calls, a fault for testing clients' retries"))
    }

    /// The CPU time `--work-per-call` has the call to `path` burn: zero
    /// but for calls of the Search service (as for `--fail-calls`).
    pub(super) fn work(&self, path: &str) -> Duration {
        if self.work_per_call.is_zero() || !searched(path) { Duration::ZERO } else { self.work_per_call }
    }

    /// Takes a place among the calls in flight, or refuses at once when all
    /// are taken: load is shed, never queued.
    pub(super) fn admit(self: &Arc<Self>) -> Result<Admitted, Status> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admitted = Admitted(Arc::clone(self));
        if before >= self.max_concurrent_calls {
            self.shed.fetch_add(1, Ordering::Relaxed);
            return Err(Status::resource_exhausted(format!(
                "the server is at its limit of {} calls in flight (--max-concurrent-calls); try again later",
                self.max_concurrent_calls
            )));
        }
        if let Some(adaptive) = &self.adaptive
            && !adaptive.admits(before)
        {
            // Never started: safe to retry elsewhere, which UNAVAILABLE
            // tells a gRPC client (docs/server.md, "Admission control").
            return Err(Status::unavailable(format!(
                "the server is at its adaptive limit of {} calls in flight (--adaptive-concurrency), \
                 set by its latency under load; try another server or later",
                adaptive.limit()
            )));
        }
        Ok(admitted)
    }
}

/// A place among the calls in flight, given back on drop.
#[derive(Debug)]
pub(super) struct Admitted(Arc<CallPolicy>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    // Bytes, not chars: the unit is one ASCII byte, and a multi-byte last
    // char must be refused, not split (a property test found that split).
    let (&unit, digits) = value.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Whether `path` is a method of the Search service.
fn searched(path: &str) -> bool {
    path.strip_prefix('/').and_then(|p| p.strip_prefix(SERVICE_NAME)).is_some_and(|p| p.starts_with('/'))
}

/// Burns `cpu` on rayon's pool, one thread per CPU the process may use,
/// as a handler's heavy CPU work belongs: the runtime's workers go on
/// reading, admitting and refusing calls, and the calls past the CPUs wait
/// their turn in the pool's queue instead of slicing the CPUs between them
/// (tokio's blocking pool would give each its own thread, hundreds at
/// once, so every call would take as long as all of them). A call dropped
/// before its turn (its deadline passed, its client gave up) burns
/// nothing. Zero costs nothing.
pub(super) async fn burn_on_the_cpu_pool(cpu: Duration) {
    if !cpu.is_zero() {
        on_the_cpu_pool(move || burn(cpu)).await;
    }
}

/// Runs `work` on rayon's pool in its turn, unless this future was dropped
/// before then.
async fn on_the_cpu_pool(work: impl FnOnce() + Send + 'static) {
    let (ran, done) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        if !ran.is_closed() {
            work();
            let _ = ran.send(());
        }
    });
    // `work` does not panic (`burn` does not), so the pool always answers.
    let _ = done.await;
}

/// Spins until this thread has run for `cpu` more (its CPU clock, so time
/// it spends descheduled or throttled by a quota does not count).
/// Zero costs nothing (the clock is not read).
fn burn(cpu: Duration) {
    if cpu.is_zero() {
        return;
    }
    let Some(start) = thread_cpu_time() else { return };
    while thread_cpu_time().is_some_and(|now| now.saturating_sub(start) < cpu) {
        std::hint::spin_loop();
    }
}

/// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), if the clock reads.
fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) };
    (read == 0).then(|| Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    use tonic::Code;

    use super::*;

    #[tokio::test]
    async fn work_on_the_cpu_pool_runs_in_its_turn_unless_its_call_is_gone() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        on_the_cpu_pool(move || flag.store(true, Ordering::SeqCst)).await;
        assert!(ran.swap(false, Ordering::SeqCst), "the work ran before the call went on");
        // Every thread of the pool busy until the barrier: the next work
        // waits its turn, and its call is dropped meanwhile.
        let threads = rayon::current_num_threads();
        let barrier = Arc::new(Barrier::new(threads + 1));
        for _ in 0..threads {
            let barrier = Arc::clone(&barrier);
            rayon::spawn(move || {
                barrier.wait();
            });
        }
        let flag = Arc::clone(&ran);
        let gone = tokio::time::timeout(
            Duration::from_millis(50),
            on_the_cpu_pool(move || flag.store(true, Ordering::SeqCst)),
        );
        assert!(gone.await.is_err(), "the pool was busy");
        barrier.wait();
        // Work queued after it runs once the pool has passed it.
        on_the_cpu_pool(|| {}).await;
        assert!(!ran.load(Ordering::SeqCst), "a call dropped before its turn runs nothing");
    }

    #[test]
    fn grpc_timeouts_parse_per_the_spec() {
        assert_eq!(parse_grpc_timeout("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse_grpc_timeout("0m"), Some(Duration::ZERO));
        for bad in ["", "S", "1", "123456789S", "1s", "-1S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn deadlines_default_cap_and_refuse_zero() {
        let config = ServerConfig {
            default_timeout: Duration::from_secs(7),
            max_timeout: Duration::from_secs(60),
            ..ServerConfig::default()
        };
        let policy = CallPolicy::new(&config, CancellationToken::new());
        let timeout = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert("grpc-timeout", value.parse().expect("header value"));
            }
            policy.timeout(&headers)
        };
        assert_eq!(timeout(None).ok(), Some(Duration::from_secs(7)));
        assert_eq!(timeout(Some("3S")).ok(), Some(Duration::from_secs(3)));
        assert_eq!(timeout(Some("5M")).ok(), Some(Duration::from_secs(60)), "capped");
        assert_eq!(timeout(Some("0n")).map_err(|s| s.code()), Err(Code::DeadlineExceeded));
        assert_eq!(timeout(Some("soon")).map_err(|s| s.code()), Err(Code::InvalidArgument));
    }

    #[test]
    fn fail_calls_refuses_the_first_n_of_every_n_plus_one() {
        let config = ServerConfig { fail_calls: 2, ..ServerConfig::default() };
        let policy = CallPolicy::new(&config, CancellationToken::new());
        let search = "/search.v1.SearchService/Search";
        let refused: Vec<bool> = (0..6).map(|_| policy.fault(search).is_some()).collect();
        assert_eq!(refused, [true, true, false, true, true, false]);
        assert_eq!(policy.fault(search).map(|s| s.code()), Some(Code::Unavailable));
        assert!((0..3).all(|_| policy.fault("/grpc.health.v1.Health/Watch").is_none()), "health is not the fault's");
        let off = CallPolicy::new(&ServerConfig::default(), CancellationToken::new());
        assert!((0..3).all(|_| off.fault(search).is_none()));
    }

    #[test]
    fn work_per_call_burns_its_cpu_time_in_search_calls_only() {
        let work = Duration::from_millis(20);
        let config = ServerConfig { work_per_call: work, ..ServerConfig::default() };
        let policy = CallPolicy::new(&config, CancellationToken::new());
        assert_eq!(policy.work("/search.v1.SearchService/Classify"), work);
        assert_eq!(policy.work("/grpc.health.v1.Health/Check"), Duration::ZERO, "health is not the load's");
        let off = CallPolicy::new(&ServerConfig::default(), CancellationToken::new());
        assert_eq!(off.work("/search.v1.SearchService/Search"), Duration::ZERO);
        let (cpu, wall) = (thread_cpu_time().expect("the clock"), std::time::Instant::now());
        burn(work);
        let burnt = thread_cpu_time().expect("the clock") - cpu;
        assert!(burnt >= work, "burnt {burnt:?} of CPU, asked {work:?}");
        assert!(wall.elapsed() >= work);
    }

    #[test]
    fn admission_sheds_load_past_the_limit_and_gives_places_back() {
        let config = ServerConfig { max_concurrent_calls: 2, ..ServerConfig::default() };
        let policy = Arc::new(CallPolicy::new(&config, CancellationToken::new()));
        let first = policy.admit().expect("first");
        let second = policy.admit().expect("second");
        let refused = policy.admit().expect_err("third is over the limit");
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(refused.message().contains("limit of 2 calls in flight (--max-concurrent-calls)"));
        assert_eq!(policy.in_flight(), 2, "a refused call holds no place");
        drop(first);
        let third = policy.admit().expect("a place was given back");
        drop((second, third));
        assert_eq!(policy.in_flight(), 0);
    }

    proptest::proptest! {
        #[test]
        fn any_grpc_timeout_header_parses_or_is_refused(value in "\\PC{0,12}") {
            // Never a panic, whatever a peer sends.
            let _ = parse_grpc_timeout(&value);
        }

        #[test]
        fn grpc_timeouts_mean_what_the_spec_says(n in 0u64..100_000_000, unit in 0usize..6) {
            let (letter, nanos_per) = [("H", 3_600_000_000_000u128), ("M", 60_000_000_000), ("S", 1_000_000_000),
                                       ("m", 1_000_000), ("u", 1_000), ("n", 1)][unit];
            let parsed = parse_grpc_timeout(&format!("{n}{letter}")).expect("valid");
            proptest::prop_assert_eq!(parsed.as_nanos(), u128::from(n) * nanos_per);
        }
    }
}
