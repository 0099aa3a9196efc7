//! Logging for the binaries: `tracing` events as text or JSON lines on stderr,
//! filtered by `RUST_LOG`, so stdout stays for results. Colour only on a
//! terminal (and never with `NO_COLOR`).
//!
//! The server writes one line per call, so that line is on the serving path:
//! in the text format it is written directly ([`Call`]), the same bytes as
//! tracing-subscriber's format without building a tracing event, and on the
//! server's worker threads lines go to stderr in batches ([`Stderr`]), one
//! write for many calls.
//!
//! Files:
//! - `mod.rs`: the subscriber ([`init`]) and its format ([`LogFormat`]).
//! - `call.rs`: the server's per-call line ([`Call`]).
//! - `stderr.rs`: where lines go, batched on runtime workers ([`Stderr`]).
//! - `format.rs`: durations and timestamps written as tracing-subscriber
//!   writes them, with less work.

mod call;
mod format;
mod stderr;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub use self::call::{CALL_TARGET, Call};
pub use self::stderr::{BATCH_AGE, BATCH_BYTES, Stderr, flush_this_thread, worker_idle};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber. `default_level` applies when `RUST_LOG`
/// is unset; a `RUST_LOG` that does not parse is reported and the default used.
pub fn init(default_level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|err| {
        if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
            eprintln!("ignoring RUST_LOG: {err}");
        }
        EnvFilter::new(default_level)
    });
    // Colours only for a person at a terminal, never in a file or a pipe.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_writer(Stderr);
    match format {
        LogFormat::Text => subscriber.with_ansi(ansi).init(),
        LogFormat::Json => subscriber.json().flatten_event(true).with_current_span(false).init(),
    }
    call::write_directly(format == LogFormat::Text && !ansi);
}
