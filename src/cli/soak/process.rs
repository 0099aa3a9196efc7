//! The server's process sampled from Linux `/proc`: its resident memory
//! and open file descriptors, once a second.

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

/// One sample of the server's process.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    /// Seconds since the start.
    pub(super) at: f64,
    /// Resident memory, KiB.
    pub(super) rss_kib: u64,
    /// Open file descriptors.
    pub(super) fds: u64,
}

/// The resident memory (KiB) and open descriptors of `pid`, from `/proc`.
pub(super) fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let rss_kib = rss.trim().trim_end_matches("kB").trim().parse().ok()?;
    let fds = std::fs::read_dir(PathBuf::from(format!("/proc/{pid}/fd"))).ok()?.count() as u64;
    Some((rss_kib, fds))
}

/// Samples `pid` once a second from `started` until `end`.
pub(super) async fn sample_until(pid: u32, started: Instant, end: Instant) -> Vec<Sample> {
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
