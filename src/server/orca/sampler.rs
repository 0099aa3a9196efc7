//! The server's figures, measured by a task every [`SAMPLE_EVERY`] and
//! reported over the last [`WINDOW`] (or since the start, when younger):
//! never per call, which only adds to two counters (`mod.rs`).
//!
//! - `cpu_utilization`: the process's CPU time (user and system, every
//!   thread: `getrusage`) over the window, divided by the window times the
//!   CPUs the process may use: the fewest of its cgroup's quota (cgroup v2
//!   `cpu.max`, or v1's `cpu.cfs_quota_us` over `cpu.cfs_period_us`, the
//!   tightest of its cgroup and their parents) and the CPUs its affinity
//!   mask allows (`sched_getaffinity`, which a cpuset sets).
//! - `mem_utilization`: the process's resident memory (`/proc/self/statm`)
//!   divided by the memory it may use: its cgroup's `memory.max` (the
//!   tightest up the tree), else the machine's (`MemTotal`).
//! - `application_utilization`: the larger of `cpu_utilization` and the
//!   time the runtime's workers spent running tasks over the window,
//!   divided by the window times the workers. Wall-clock busy time, so a
//!   worker that shares its CPU with another process is busy longer for the
//!   same work; but a quota stalls a worker only when it runs out mid-task,
//!   so a server near its quota can look idle by that measure: either one
//!   near 1 means the server has no capacity to spare.
//! - `rps_fractional` and `eps`: calls ended over the window, and those of
//!   them that failed (any status but OK and CANCELLED), per second.
//!
//! Outside Linux the figures read from `/proc` and `/sys` are left at 0.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::pb::xds::data::orca::v3::OrcaLoadReport;

/// How often the figures are measured.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// How far back the reported rates and utilizations look.
pub const WINDOW: Duration = Duration::from_secs(5);

/// What the process had used and counted at one instant: cumulative.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// CPU time of every thread of the process.
    cpu: Duration,
    /// Time the runtime's workers spent running tasks, all workers.
    busy: Duration,
    workers: usize,
    calls: u64,
    errors: u64,
}

/// The figures between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rates {
    cpu: f64,
    application: f64,
    rps: f64,
    eps: f64,
}

/// The samples of the last [`WINDOW`], taken one per [`SAMPLE_EVERY`].
#[derive(Debug)]
pub(super) struct Sampler {
    samples: VecDeque<Sample>,
    kept: usize,
}

impl Sampler {
    pub(super) fn new() -> Self {
        let kept = usize::try_from(WINDOW.as_millis() / SAMPLE_EVERY.as_millis()).unwrap_or(1) + 1;
        Self { samples: VecDeque::with_capacity(kept), kept }
    }

    /// Takes a sample now, with `calls` ended and `errors` failed since the
    /// start: the report's figures over the window, into `report`.
    pub(super) fn sample(&mut self, calls: u64, errors: u64) -> impl FnOnce(&mut OrcaLoadReport) + use<> {
        let metrics = tokio::runtime::Handle::current().metrics();
        let workers = metrics.num_workers();
        let busy = (0..workers).map(|worker| metrics.worker_total_busy_duration(worker)).sum();
        let sample = Sample { at: Instant::now(), cpu: process_cpu_time(), busy, workers, calls, errors };
        if self.samples.len() == self.kept {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        let rates = self.samples.front().map(|oldest| rates(oldest, &sample, cpus()));
        let memory = memory_utilization();
        move |report| {
            if let Some(rates) = rates {
                report.cpu_utilization = rates.cpu;
                report.application_utilization = rates.application;
                report.rps_fractional = rates.rps;
                report.eps = rates.eps;
            }
            report.mem_utilization = memory;
        }
    }
}

/// The figures from `oldest` to `newest`, with `cpus` CPUs to use; all 0
/// when no time passed (the first sample).
fn rates(oldest: &Sample, newest: &Sample, cpus: f64) -> Rates {
    let seconds = newest.at.duration_since(oldest.at).as_secs_f64();
    if seconds <= 0.0 {
        return Rates { cpu: 0.0, application: 0.0, rps: 0.0, eps: 0.0 };
    }
    let per_second = |later: u64, earlier: u64| later.saturating_sub(earlier) as f64 / seconds;
    let cpu = newest.cpu.saturating_sub(oldest.cpu).as_secs_f64() / (seconds * cpus.max(f64::MIN_POSITIVE));
    let busy = newest.busy.saturating_sub(oldest.busy).as_secs_f64();
    let application = (busy / (seconds * newest.workers.max(1) as f64)).max(cpu);
    Rates {
        cpu,
        application,
        rps: per_second(newest.calls, oldest.calls),
        eps: per_second(newest.errors, oldest.errors),
    }
}

/// CPU time of every thread of the process, user and system.
fn process_cpu_time() -> Duration {
    // SAFETY: getrusage writes one rusage into the struct it is given; an
    // all-zero rusage is a valid value of it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The CPUs the process may use: its cgroup quota or its affinity mask,
/// whichever allows fewer.
fn cpus() -> f64 {
    let affinity = affinity_cpus().unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let v2 = cgroup_limits("cpu.max").filter_map(|text| parse_cpu_max(&text));
    let quota = v2.chain(cgroup_v1_quotas()).reduce(f64::min);
    quota.map_or(affinity as f64, |quota| quota.min(affinity as f64))
}

/// The CPUs the affinity mask allows.
#[cfg(target_os = "linux")]
fn affinity_cpus() -> Option<usize> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity writes at most the size given into `set`.
    let got = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) };
    // SAFETY: `set` is initialised.
    (got == 0).then(|| usize::try_from(unsafe { libc::CPU_COUNT(&set) }).unwrap_or(1))
}

#[cfg(not(target_os = "linux"))]
fn affinity_cpus() -> Option<usize> {
    None
}

/// cgroup v2's `cpu.max` (`"$QUOTA $PERIOD"` or `"max $PERIOD"`) as CPUs;
/// `None` for no quota.
fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    let quota: f64 = words.next()?.parse().ok()?;
    let period: f64 = words.next()?.parse().ok()?;
    (period > 0.0).then_some(quota / period)
}

/// The cgroup v1 CPU quotas of the process's cgroup and its parents, as
/// CPUs (`cpu.cfs_quota_us` over `cpu.cfs_period_us`; -1 is none).
fn cgroup_v1_quotas() -> impl Iterator<Item = f64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let mount = read("/proc/self/mounts").and_then(|mounts| v1_cpu_mount(&mounts));
    let own = read("/proc/self/cgroup").and_then(|text| v1_cpu_path(&text));
    let mut dir = mount.as_ref().zip(own).map(|(mount, own)| mount.join(own.trim_start_matches('/')));
    std::iter::from_fn(move || {
        let here = dir.take()?;
        if Some(&here) != mount.as_ref() {
            dir = here.parent().map(std::path::Path::to_path_buf);
        }
        let number = |file: &str| std::fs::read_to_string(here.join(file)).ok()?.trim().parse::<f64>().ok();
        Some(number("cpu.cfs_quota_us").zip(number("cpu.cfs_period_us")))
    })
    .flatten()
    .filter_map(|(quota, period)| (quota > 0.0 && period > 0.0).then_some(quota / period))
}

/// Where the cgroup v1 `cpu` controller is mounted, from `/proc/self/mounts`.
fn v1_cpu_mount(mounts: &str) -> Option<std::path::PathBuf> {
    mounts.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let cpu = fields.get(3)?.split(',').any(|option| option == "cpu");
        (fields.get(2) == Some(&"cgroup") && cpu).then(|| std::path::PathBuf::from(fields[1]))
    })
}

/// The process's cgroup under the v1 `cpu` controller (its
/// `/proc/self/cgroup` line naming `cpu`).
fn v1_cpu_path(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let controllers = fields.nth(1)?;
        controllers.split(',').any(|c| c == "cpu").then(|| fields.next().map(str::to_owned)).flatten()
    })
}

/// The process's resident memory over the memory it may use.
pub(super) fn memory_utilization() -> f64 {
    let resident = resident_bytes().unwrap_or(0);
    let cgroup = cgroup_limits("memory.max").filter_map(|text| text.trim().parse::<u64>().ok()).min();
    match cgroup.or_else(machine_memory) {
        Some(limit) if limit > 0 => resident as f64 / limit as f64,
        _ => 0.0,
    }
}

/// Resident memory, from `/proc/self/statm` (pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The machine's memory, `MemTotal` of `/proc/meminfo`.
fn machine_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The contents of `file` in the process's cgroup (v2) and in each of its
/// parents: each level's limit applies.
fn cgroup_limits(file: &'static str) -> impl Iterator<Item = String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|text| cgroup_path(&text));
    let mut dir = own.map(|path| std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')));
    std::iter::from_fn(move || {
        let here = dir.take()?;
        if here != std::path::Path::new("/sys/fs/cgroup") {
            dir = here.parent().map(std::path::Path::to_path_buf);
        }
        Some(std::fs::read_to_string(here.join(file)).unwrap_or_default())
    })
}

/// The cgroup v2 path of `/proc/self/cgroup` (its `0::` line).
fn cgroup_path(text: &str) -> Option<String> {
    text.lines().find_map(|line| line.strip_prefix("0::")).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64, cpu_ms: u64, busy_ms: u64, calls: u64, errors: u64) -> Sample {
        let ms = Duration::from_millis;
        Sample {
            at: start + Duration::from_secs(seconds),
            cpu: ms(cpu_ms),
            busy: ms(busy_ms),
            workers: 2,
            calls,
            errors,
        }
    }

    #[test]
    fn rates_are_per_second_and_per_cpu_over_the_window() {
        let start = Instant::now();
        let (oldest, newest) = (at(start, 0, 1_000, 500, 10, 1), at(start, 4, 3_000, 4_500, 410, 21));
        // 2 s of CPU in 4 s on 2 CPUs; 4 s busy of 2 workers' 8 s.
        assert_eq!(rates(&oldest, &newest, 2.0), Rates { cpu: 0.25, application: 0.5, rps: 100.0, eps: 5.0 });
        assert_eq!(rates(&oldest, &oldest, 2.0), Rates { cpu: 0.0, application: 0.0, rps: 0.0, eps: 0.0 });
    }

    #[test]
    fn cpu_max_is_a_quota_or_none() {
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max(""), None);
    }

    #[test]
    fn the_cgroup_path_is_the_v2_line() {
        assert_eq!(
            cgroup_path("12:cpu:/old\n0::/system.slice/search.service\n").as_deref(),
            Some("/system.slice/search.service")
        );
        assert_eq!(cgroup_path("12:cpu:/old\n"), None);
    }

    #[test]
    fn application_utilization_is_at_least_cpu_utilization() {
        let start = Instant::now();
        // A worker throttled by a quota between tasks: 0.1 s busy of 4 s, but
        // 0.3 s of CPU in 4 s on a quota of 0.1 CPU.
        let (oldest, newest) = (at(start, 0, 0, 0, 0, 0), at(start, 4, 300, 200, 400, 0));
        let rates = rates(&oldest, &newest, 0.1);
        assert!((rates.cpu - 0.75).abs() < 1e-9, "{rates:?}");
        assert_eq!(rates.application, rates.cpu);
    }

    #[test]
    fn a_v1_cpu_quota_is_found_by_its_mount_and_cgroup_line() {
        let mounts = "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n\
                      cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n";
        assert_eq!(v1_cpu_mount(mounts), Some(std::path::PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(v1_cpu_mount("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"), None);
        let cgroups = "5:memory:/a\n4:cpu,cpuacct:/fleet/weak\n0::/\n";
        assert_eq!(v1_cpu_path(cgroups).as_deref(), Some("/fleet/weak"));
        assert_eq!(v1_cpu_path("4:cpuacct:/x\n0::/\n"), None);
    }

    #[test]
    fn this_process_has_cpus_and_memory() {
        assert!(cpus() > 0.0);
        let memory = memory_utilization();
        assert!(memory > 0.0 && memory < 1.0, "{memory}");
    }
}
