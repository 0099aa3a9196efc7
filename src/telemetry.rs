//! Logging for the binaries: `tracing` events as text or JSON lines on stderr,
//! filtered by `RUST_LOG`, so stdout stays for results. Colour only on a
//! terminal (and never with `NO_COLOR`).
//!
//! The server writes one line per call, so that line is on the serving path:
//! in the text format it is written directly ([`Call`]), the same bytes as
//! tracing-subscriber's format without building a tracing event, and on the
//! server's worker threads lines go to stderr in batches ([`Stderr`]), one
//! write for many calls.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal, Write as _};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The target of the server's per-call line.
pub const CALL_TARGET: &str = "search::call";

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
    let _ = DIRECT.set(format == LogFormat::Text && !ansi);
}

/// Whether call lines are written directly ([`Call::log`]): set by
/// [`init`] for the text format without colour.
static DIRECT: OnceLock<bool> = OnceLock::new();

/// One call's line: the method, protocol, status code, duration and peer.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The request's path.
    pub method: &'a str,
    /// `grpc`, `grpc-web` or `connect`.
    pub protocol: &'a str,
    /// The status code's name.
    pub code: &'a str,
    /// From the request's arrival to the response's end.
    pub duration: Duration,
    /// The peer's address, when the connection has one.
    pub peer: Option<&'a str>,
    /// The call's trace id, when tracing is on.
    pub trace_id: Option<&'a str>,
}

impl Call<'_> {
    /// Logs the call at info level under [`CALL_TARGET`] (`RUST_LOG`
    /// decides). In the text format without colour, the line is written
    /// straight to [`Stderr`]: the same bytes tracing-subscriber writes for
    /// the event (a test compares them), without the event's value set,
    /// visitor and formatting calls, which cost more than the rest of the
    /// log line's work together. Otherwise (JSON, colour, a subscriber other
    /// than [`init`]'s) it is the tracing event.
    pub fn log(&self) {
        if !tracing::enabled!(target: CALL_TARGET, Level::INFO) {
            return;
        }
        if DIRECT.get() == Some(&true)
            && let Some(now) =
                SystemTime::now().duration_since(UNIX_EPOCH).ok().filter(|now| now.as_secs() < YEAR_10000)
        {
            SCRATCH.with_borrow_mut(|line| {
                line.clear();
                self.text(line, now);
                // Nothing to tell of a failed log write but stderr itself.
                let _ = Stderr.write_all(line.as_bytes());
            });
            return;
        }
        let (method, protocol, code, duration) = (self.method, self.protocol, self.code, Elapsed(self.duration));
        match (self.peer, self.trace_id) {
            (Some(peer), None) => {
                tracing::info!(target: CALL_TARGET, %method, protocol, code, ?duration, %peer, "call")
            }
            (None, None) => tracing::info!(target: CALL_TARGET, %method, protocol, code, ?duration, "call"),
            (Some(peer), Some(trace_id)) => {
                tracing::info!(target: CALL_TARGET, %method, protocol, code, ?duration, %peer, %trace_id, "call");
            }
            (None, Some(trace_id)) => {
                tracing::info!(target: CALL_TARGET, %method, protocol, code, ?duration, %trace_id, "call");
            }
        }
    }

    /// The text line at `now` (since the epoch), newline included.
    fn text(&self, line: &mut String, now: Duration) {
        // Writing to a String cannot fail.
        let _ = write_timestamp(line, now);
        line.push_str(" INFO ");
        line.push_str(CALL_TARGET);
        line.push_str(": call method=");
        line.push_str(self.method);
        for (name, value) in [(" protocol=", self.protocol), (" code=", self.code)] {
            line.push_str(name);
            // As `Debug` writes a str: quoted, and escaped where needed.
            if value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
                line.push('"');
                line.push_str(value);
                line.push('"');
            } else {
                let _ = write!(line, "{value:?}");
            }
        }
        let _ = write!(line, " duration={:?}", Elapsed(self.duration));
        if let Some(peer) = self.peer {
            line.push_str(" peer=");
            line.push_str(peer);
        }
        if let Some(trace_id) = self.trace_id {
            line.push_str(" trace_id=");
            line.push_str(trace_id);
        }
        line.push('\n');
    }
}

thread_local! {
    /// The line being written, kept between calls for its capacity.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Where log lines go: stderr. A thread that batches (a runtime worker,
/// from the first time it went idle: [`worker_idle`]) gathers its lines and
/// writes them together once [`BATCH_BYTES`] have gathered, once the oldest
/// has waited [`BATCH_AGE`], and whenever the thread goes idle again or
/// stops ([`flush_this_thread`]); any other thread writes each line at
/// once. Each write holds whole lines, so threads never split each other's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

/// The most a batch gathers before it is written.
pub const BATCH_BYTES: usize = 16 * 1024;

/// The longest a line waits in a batch while its thread keeps busy.
pub const BATCH_AGE: Duration = Duration::from_millis(50);

/// A thread's lines not yet written, and since when the first has waited.
struct Batch {
    bytes: Vec<u8>,
    since: Option<Instant>,
}

impl Batch {
    fn new() -> Self {
        Self { bytes: Vec::with_capacity(BATCH_BYTES), since: None }
    }

    /// Adds `line`, at `now`: whether the batch is due to be written.
    fn add(&mut self, line: &[u8], now: Instant) -> bool {
        self.bytes.extend_from_slice(line);
        let since = *self.since.get_or_insert(now);
        self.bytes.len() >= BATCH_BYTES || now.duration_since(since) >= BATCH_AGE
    }

    fn write(&mut self) {
        if !self.bytes.is_empty() {
            // Nothing to tell of a failed log write but stderr itself.
            let _ = io::stderr().write_all(&self.bytes);
            self.bytes.clear();
        }
        self.since = None;
    }
}

thread_local! {
    /// This thread's batch; none on a thread that writes each line at once.
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

/// For a runtime worker going idle (tokio's `on_thread_park`): writes the
/// lines it gathered, and batches its lines from now on. Only workers go
/// idle this way, so threads that could hold a line for long (the blocking
/// pool's, the main thread) never batch. The worker must also call
/// [`flush_this_thread`] when it stops.
pub fn worker_idle() {
    let _ = BATCH.try_with(|batch| match batch.try_borrow_mut().as_deref_mut() {
        Ok(Some(batch)) => batch.write(),
        Ok(none) => *none = Some(Batch::new()),
        Err(_) => {}
    });
}

/// Writes this thread's batched lines, if it batches.
pub fn flush_this_thread() {
    // During the thread's teardown the batch may be gone: nothing to write.
    let _ = BATCH.try_with(|batch| {
        if let Some(batch) = batch.try_borrow_mut().ok().as_deref_mut().and_then(Option::as_mut) {
            batch.write();
        }
    });
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        Self
    }
}

impl io::Write for Stderr {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    /// tracing-subscriber writes each line with one call.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let batched = BATCH.try_with(|batch| {
            let mut batch = batch.try_borrow_mut().ok()?;
            let batch = batch.as_mut()?;
            if batch.add(bytes, Instant::now()) {
                batch.write();
            }
            Some(())
        });
        match batched {
            Ok(Some(())) => Ok(()),
            _ => io::stderr().write_all(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        flush_this_thread();
        io::stderr().flush()
    }
}

/// A duration for a log line: written as `Debug` writes a [`Duration`]
/// (`71.234ms`, `1.5s`, `800ns`: the largest unit under which it is at least
/// 1, every significant digit, no trailing zeros), with integer arithmetic
/// instead of `Debug`'s general decimal formatting.
#[derive(Clone, Copy)]
struct Elapsed(Duration);

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        // The whole part, the rest below it, the rest's first digit's weight.
        let (whole, mut rest, mut weight, unit) = if secs > 0 {
            (secs, nanos, 100_000_000, "s")
        } else if nanos >= 1_000_000 {
            (u64::from(nanos / 1_000_000), nanos % 1_000_000, 100_000, "ms")
        } else if nanos >= 1_000 {
            (u64::from(nanos / 1_000), nanos % 1_000, 100, "µs")
        } else {
            (u64::from(nanos), 0, 1, "ns")
        };
        write!(f, "{whole}")?;
        if rest > 0 {
            f.write_char('.')?;
            while rest > 0 && weight > 0 {
                f.write_char(char::from(b'0' + (rest / weight) as u8))?;
                rest %= weight;
                weight /= 10;
            }
        }
        f.write_str(unit)
    }
}

/// 10000-01-01T00:00:00Z in seconds since the epoch: four-digit years only.
const YEAR_10000: u64 = 253_402_300_800;

thread_local! {
    /// The last second formatted on this thread, and its
    /// `YYYY-MM-DDTHH:MM:SS.` text.
    static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ ` (RFC 3339, UTC, microseconds), as
/// tracing-subscriber writes it and as humantime's `format_rfc3339_micros`
/// does (a test compares them); `now` is since the epoch, before year 10000.
/// The date is formatted once a second per thread; only the microseconds
/// are written per line.
fn write_timestamp(writer: &mut impl fmt::Write, now: Duration) -> fmt::Result {
    let secs = now.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = second_text(secs)?;
        SECOND.set((secs, text));
    }
    // ASCII digits and separators only.
    writer.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)?;
    let mut micros = [b'0'; 8];
    let mut value = now.subsec_micros();
    for digit in micros[..6].iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    micros[6] = b'Z';
    micros[7] = b' ';
    writer.write_str(std::str::from_utf8(&micros).map_err(|_| fmt::Error)?)
}

/// `YYYY-MM-DDTHH:MM:SS.` for `secs` since the epoch: humantime's RFC 3339
/// text of that second, its `Z` replaced by the decimal point. Fails past
/// year 9999, which humantime does not write.
fn second_text(secs: u64) -> Result<[u8; 20], fmt::Error> {
    let mut text = *b"0000-00-00T00:00:00.";
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(secs)).ok_or(fmt::Error)?;
    let mut second = String::with_capacity(text.len());
    write!(second, "{}", humantime::format_rfc3339_seconds(at))?;
    text[..19].copy_from_slice(second.as_bytes().get(..19).ok_or(fmt::Error)?);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// Every line written, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("UTF-8")
        }
    }

    #[test]
    fn call_lines_are_the_bytes_tracing_subscriber_writes() {
        let call =
            |method, protocol, code, duration, peer| Call { method, protocol, code, duration, peer, trace_id: None };
        let traced = |call: Call<'static>, trace_id| Call { trace_id: Some(trace_id), ..call };
        let calls = [
            call(
                "/search.v1.SearchService/Search",
                "grpc",
                "OK",
                Duration::from_micros(71_234),
                Some("127.0.0.1:50312"),
            ),
            call("/Search/search", "connect", "INVALID_ARGUMENT", Duration::new(2, 5), None),
            call("/x.Y/Z?q=\"1\"", "grpc-web", "a \"quoted\" \\ code\n", Duration::ZERO, Some("[::1]:9")),
            call("/bänana", "grpc", "CANCELLED", Duration::from_nanos(999), Some("unix")),
            traced(
                call("/search.v1.SearchService/Search", "grpc", "OK", Duration::from_micros(5), Some("127.0.0.1:1")),
                "0af7651916cd43dd8448eb211c80319c",
            ),
            traced(
                call("/Search/search", "connect", "OK", Duration::from_micros(5), None),
                "4bf92f3577b34da6a3ce929d0e0e4736",
            ),
        ];
        for call in calls {
            // Without init(), the line is the tracing event: tracing's own
            // formatter writes it.
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt().with_writer(captured.clone()).with_ansi(false).finish();
            tracing::subscriber::with_default(subscriber, || call.log());
            let traced = captured.text();
            let mut direct = String::new();
            call.text(&mut direct, Duration::new(1_796_083_200, 0));
            assert!(direct.starts_with("2026-12-01T00:00:00.000000Z  INFO "), "{direct}");
            let without_time = |line: &str| line.split_once(' ').expect("a timestamp first").1.to_owned();
            assert_eq!(without_time(&direct), without_time(&traced), "{call:?}");
        }
        let mut line = String::new();
        calls[0].text(&mut line, Duration::new(1_796_083_200, 0));
        assert_eq!(
            line,
            "2026-12-01T00:00:00.000000Z  INFO search::call: call method=/search.v1.SearchService/Search \
             protocol=\"grpc\" code=\"OK\" duration=71.234ms peer=127.0.0.1:50312\n"
        );
        let mut line = String::new();
        calls[4].text(&mut line, Duration::new(1_796_083_200, 0));
        assert!(line.ends_with(" peer=127.0.0.1:1 trace_id=0af7651916cd43dd8448eb211c80319c\n"), "{line}");
    }

    #[test]
    fn elapsed_reads_as_durations_debug() {
        let cases = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999),
            Duration::from_nanos(1_000),
            Duration::from_nanos(1_001),
            Duration::from_micros(71_234),
            Duration::from_nanos(71_234_567),
            Duration::from_millis(1_500),
            Duration::new(1, 1),
            Duration::new(59, 999_999_999),
            Duration::new(u64::MAX, 999_999_999),
        ];
        for duration in cases {
            assert_eq!(format!("{:?}", Elapsed(duration)), format!("{duration:?}"));
        }
    }

    proptest::proptest! {
        #[test]
        fn elapsed_reads_as_durations_debug_for_any(secs in 0u64..100_000, nanos in 0u32..1_000_000_000) {
            let duration = Duration::new(secs % 3 * secs, nanos);
            proptest::prop_assert_eq!(format!("{:?}", Elapsed(duration)), format!("{duration:?}"));
        }
    }

    #[test]
    fn a_batch_is_due_when_full_or_old() {
        let start = Instant::now();
        let line = [b'x'; 100];
        let mut batch = Batch::new();
        assert!(!batch.add(&line, start));
        assert!(!batch.add(&line, start + BATCH_AGE / 2), "young and small");
        assert!(batch.add(&line, start + BATCH_AGE), "its first line waited long enough");
        let mut batch = Batch::new();
        let lines = BATCH_BYTES.div_ceil(line.len());
        assert!((1..lines).all(|_| !batch.add(&line, start)), "not yet full");
        assert!(batch.add(&line, start), "full");
        // Written, it starts again.
        batch.bytes.clear();
        batch.since = None;
        assert!(!batch.add(&line, start + BATCH_AGE * 3));
    }

    #[test]
    fn timestamps_are_rfc3339_microseconds() {
        let at = |secs: u64, micros: u32| {
            let mut text = String::new();
            write_timestamp(&mut text, Duration::new(secs, micros * 1_000)).expect("written");
            text
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z ");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z ");
        assert_eq!(at(951_868_799, 999_999), "2000-02-29T23:59:59.999999Z ");
        assert_eq!(at(1_709_251_199, 123_456), "2024-02-29T23:59:59.123456Z ");
        assert_eq!(at(1_796_083_200, 5), "2026-12-01T00:00:00.000005Z ");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z ");
        assert_eq!(at(YEAR_10000 - 1, 0), "9999-12-31T23:59:59.000000Z ");
        // The cached second is reused within it and replaced after it.
        assert_eq!(at(1_796_083_200, 6), "2026-12-01T00:00:00.000006Z ");
        assert_eq!(at(1_796_083_201, 0), "2026-12-01T00:00:01.000000Z ");
    }

    proptest::proptest! {
        #[test]
        fn timestamps_are_humantimes_bytes(secs in 0..YEAR_10000, micros in 0u32..1_000_000) {
            let now = Duration::new(secs, micros * 1_000);
            let mut ours = String::new();
            write_timestamp(&mut ours, now).expect("written");
            let theirs = format!("{} ", humantime::format_rfc3339_micros(UNIX_EPOCH + now));
            proptest::prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn timestamps_past_year_9999_are_refused() {
        let mut text = String::new();
        assert!(write_timestamp(&mut text, Duration::from_secs(YEAR_10000)).is_err());
    }
}
