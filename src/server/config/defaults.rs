//! Every default of the server's settings, a constant each: the flags
//! show them in `--help`, [`ServerConfig::default`](super::ServerConfig)
//! starts from them, and `docs/server.md` names them, so none can drift.

use std::time::Duration;

use super::byte_size::ByteSize;

/// Deadline of a call that arrives without one (no `grpc-timeout` header).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest deadline a client may ask for; longer ones are cut to this.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The largest request message accepted, as grpc's default receive limit.
pub const MAX_RECV_BYTES: ByteSize = ByteSize(4 << 20);
/// Calls served at once, over all connections; more are refused at once.
pub const MAX_CONCURRENT_CALLS: u32 = 10_000;
/// The least the adaptive limit of calls in flight comes down to
/// (`--adaptive-concurrency`), and where it measures the latency of a call
/// that waits for no other: two calls.
pub const ADAPTIVE_MIN_CALLS: u32 = 2;
/// Where the adaptive limit starts: low, as Netflix's limiters start (it
/// doubles each window while calls are shed at good latency), so that a
/// server that starts under overload does not first admit a queue.
pub const ADAPTIVE_INITIAL_CALLS: u32 = 16;
/// The most the adaptive limit grows to.
pub const ADAPTIVE_MAX_CALLS: u32 = 1000;
/// HTTP/2 streams (calls) open at once on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
/// How often an idle connection is pinged (HTTP/2 keepalive).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// How long a keepalive ping may go unanswered before the connection is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a connection may live, so that clients rebalance over servers.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(30 * 60);
/// Extra time an aged connection gets before it is closed.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(60);
/// How long a connection may go without a call before it is closed.
pub const MAX_CONNECTION_IDLE: Duration = Duration::from_secs(5 * 60);
/// Bytes of answers buffered per stream for a client that does not read
/// them (HTTP/2 flow control holds the rest back).
pub const MAX_SEND_BUFFER: ByteSize = ByteSize(64 << 10);
/// The shortest time between two PINGs (or SETTINGS) from a client that
/// is not answered by any data in between: half this project's client
/// keepalive time (10 s), so that its pings are never strikes, and short
/// enough for grpc clients that ping every 10 s, the least grpc-go allows.
/// grpc servers default to 5 minutes, which turns away every client that
/// looks for a dead peer faster than that.
pub const MIN_PING_INTERVAL: Duration = Duration::from_secs(5);
/// The largest request header block over HTTP/2 (hyper's default).
pub const MAX_HEADER_BYTES: ByteSize = ByteSize(16 << 10);
/// How long a new connection may take to finish its TLS handshake and say
/// its first word (the HTTP/2 preface and SETTINGS, or a request head).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long calls in flight may run after a shutdown signal.
pub const GRACE: Duration = Duration::from_secs(10);
/// The shortest interval of the out-of-band load reports: gRPC's own
/// servers' minimum (grpc-go's and grpc C++'s ORCA services).
pub const ORCA_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// File descriptors kept for everything but connections: listeners, logs,
/// files, the runtime's own.
const SPARE_FDS: u64 = 64;

/// The default `--max-connections`: the process's open-file limit, less
/// what the rest of the server needs (each connection is one descriptor).
#[must_use]
pub fn default_max_connections() -> u32 {
    let limit = open_file_limit().unwrap_or(1024);
    u32::try_from(limit.saturating_sub(SPARE_FDS).max(1)).unwrap_or(u32::MAX)
}

/// The soft limit on open files (`ulimit -n`).
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one rlimit into the struct it is given.
        let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
        (got == 0).then_some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    None
}
