//! Logging for the binaries: `tracing` events as text or JSON lines on stderr,
//! filtered by `RUST_LOG`, so stdout stays for results. Colour only on a
//! terminal (and never with `NO_COLOR`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => subscriber.with_ansi(ansi).init(),
        LogFormat::Json => subscriber.json().flatten_event(true).with_current_span(false).init(),
    }
}
