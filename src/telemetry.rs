//! Logging for the binaries: `tracing` events as text or JSON lines on stderr,
//! filtered by `RUST_LOG`, so stdout stays for results. Colour only on a
//! terminal (and never with `NO_COLOR`).
//!
//! The server writes one line per call, so that line is on the serving path:
//! [`CALL_TARGET`] lines are written by [`Lines`], the same bytes as
//! tracing-subscriber's text format with far fewer formatting calls, and on
//! the server's worker threads lines go to stderr in batches ([`Stderr`]),
//! one write for many calls.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{DefaultVisitor, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

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
        LogFormat::Text => subscriber.with_ansi(ansi).event_format(Lines::default()).init(),
        LogFormat::Json => subscriber.json().flatten_event(true).with_current_span(false).init(),
    }
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

/// tracing-subscriber's text format (`Format<Full>`), with the per-call line
/// written directly: the date and time to the second formatted once a
/// second, string fields that need no escaping copied as they are. Same
/// bytes either way (the tests compare the two); every other line, a
/// coloured one, or one inside a span, is tracing-subscriber's own.
#[derive(Debug, Default)]
pub struct Lines {
    full: Format<Full>,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok().filter(|now| now.as_secs() < YEAR_10000);
        let direct = meta.target() == CALL_TARGET && !writer.has_ansi_escapes() && ctx.event_scope().is_none();
        let Some(now) = now.filter(|_| direct) else {
            return self.full.format_event(ctx, writer, event);
        };
        write_timestamp(&mut writer, now)?;
        let level = match *meta.level() {
            Level::TRACE => "TRACE ",
            Level::DEBUG => "DEBUG ",
            Level::INFO => " INFO ",
            Level::WARN => " WARN ",
            Level::ERROR => "ERROR ",
        };
        writer.write_str(level)?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields { writer: writer.by_ref(), empty: true, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// A duration for a log line: written as `Debug` writes a [`Duration`]
/// (`71.234ms`, `1.5s`, `800ns`: the largest unit under which it is at least
/// 1, every significant digit, no trailing zeros), with integer arithmetic
/// instead of `Debug`'s general decimal formatting.
#[derive(Clone, Copy)]
pub struct Elapsed(pub Duration);

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
        // 20 digits, a point, 9 digits and the unit.
        let mut text = [0u8; 34];
        let mut len = 0;
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut value = whole;
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        text[..digits.len() - at].copy_from_slice(&digits[at..]);
        len += digits.len() - at;
        if rest > 0 {
            text[len] = b'.';
            len += 1;
            while rest > 0 && weight > 0 {
                text[len] = b'0' + (rest / weight) as u8;
                len += 1;
                rest %= weight;
                weight /= 10;
            }
        }
        text[len..len + unit.len()].copy_from_slice(unit.as_bytes());
        len += unit.len();
        f.write_str(std::str::from_utf8(&text[..len]).map_err(|_| fmt::Error)?)
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
/// tracing-subscriber writes it; `now` is since the epoch, before year 10000.
fn write_timestamp(writer: &mut impl fmt::Write, now: Duration) -> fmt::Result {
    let secs = now.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = second_text(secs);
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

/// `YYYY-MM-DDTHH:MM:SS.` for `secs` since the epoch (before year 10000).
fn second_text(secs: u64) -> [u8; 20] {
    let (year, month, day) = civil_date(secs / 86_400);
    let of_day = secs % 86_400;
    let mut text = *b"0000-00-00T00:00:00.";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3_600);
    put(14, 2, of_day % 3_600 / 60);
    put(17, 2, of_day % 60);
    text
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01,
/// counted in 400-year eras that start on March 1st, so that the leap day
/// ends a year (Howard Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    // 719,468 days from 0000-03-01 to 1970-01-01; an era is 146,097 days.
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// An event's fields as tracing-subscriber's `DefaultVisitor` writes them
/// without colour (`name=value`, space-separated, the message bare): a
/// string that needs no escaping is copied between quotes; other values
/// go through `Debug`; errors and `r#` names go to `DefaultVisitor` itself.
struct Fields<'a> {
    writer: Writer<'a>,
    empty: bool,
    result: fmt::Result,
}

impl Fields<'_> {
    fn separate(&mut self) -> fmt::Result {
        if std::mem::replace(&mut self.empty, false) { Ok(()) } else { self.writer.write_char(' ') }
    }

    /// Hands the field to tracing-subscriber's visitor.
    fn delegate(&mut self, visit: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.empty);
        visit(&mut visitor);
        self.result = tracing_subscriber::field::VisitOutput::finish(visitor);
        self.empty = false;
    }

    /// Whether `name` is one `DefaultVisitor` writes its own way.
    fn special(name: &str) -> bool {
        name.starts_with("r#") || name.starts_with("log.")
    }

    /// The message, bare, its terminal controls escaped unless the writer
    /// is told not to (as `DefaultVisitor` does).
    fn message(&mut self, value: &dyn fmt::Debug) -> fmt::Result {
        self.separate()?;
        if self.writer.sanitizes_ansi_escapes() {
            write!(Escaping(&mut self.writer), "{value:?}")
        } else {
            write!(self.writer, "{value:?}")
        }
    }
}

/// Writes what it is given with the characters a terminal would act on
/// (ESC, BEL, BS, FF, DEL and the C1 controls) escaped, the way
/// tracing-subscriber escapes messages; text without them goes as it is.
struct Escaping<'a, W>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // C1 controls are U+0080..U+009F: 0xC2 0x80..0x9F in UTF-8.
        if !text.bytes().any(|b| matches!(b, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f | 0xc2)) {
            return self.0.write_str(text);
        }
        for ch in text.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", u32::from(ch))?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // What `Debug` would escape: quotes, backslashes, anything but
        // printable ASCII.
        let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if name == "message" {
            self.result = self.message(&format_args!("{value}"));
            return;
        }
        if Self::special(name) || !plain {
            return self.delegate(|visitor| visitor.record_str(field, value));
        }
        self.result = self.separate().and_then(|()| {
            self.writer.write_str(name)?;
            self.writer.write_str("=\"")?;
            self.writer.write_str(value)?;
            self.writer.write_char('"')
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_ok() {
            self.delegate(|visitor| visitor.record_error(field, value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if Self::special(name) {
            return self.delegate(|visitor| visitor.record_debug(field, value));
        }
        self.result = if name == "message" {
            self.message(value)
        } else {
            self.separate().and_then(|()| write!(self.writer, "{name}={value:?}"))
        };
    }
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

    #[derive(Debug)]
    struct Failure(Option<io::Error>);

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it failed")
        }
    }

    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.0.as_ref().map(|err| err as _)
        }
    }

    /// The same events, written once by tracing-subscriber's format and once
    /// by [`Lines`]; each line without its timestamp.
    fn both(events: impl Fn()) -> (Vec<String>, Vec<String>) {
        let run = |lines: bool| {
            let captured = Captured::default();
            let builder = tracing_subscriber::fmt().with_writer(captured.clone()).with_ansi(false);
            if lines {
                tracing::subscriber::with_default(builder.event_format(Lines::default()).finish(), &events);
            } else {
                tracing::subscriber::with_default(builder.finish(), &events);
            }
            let text = captured.text();
            text.lines().map(|line| line.split_once(' ').expect("a timestamp first").1.to_owned()).collect()
        };
        (run(false), run(true))
    }

    #[test]
    fn call_lines_are_the_bytes_tracing_subscriber_writes() {
        let peer: std::net::SocketAddr = "127.0.0.1:50312".parse().expect("address");
        let (full, lines) = both(|| {
            let duration = Duration::from_micros(71_234);
            tracing::info!(target: CALL_TARGET, method = %"/search.v1.SearchService/Search", protocol = "grpc",
                code = "OK", ?duration, %peer, "call");
            // Strings that need escaping, a message with a control character,
            // numbers, a bool, an error with a source, a raw name.
            tracing::info!(target: CALL_TARGET, quoted = "a \"b\" \\ c", unicode = "bänana\n", n = 7, neg = -3,
                f = 1.5, yes = true, "two\x1b[31m words");
            let err = Failure(Some(io::Error::other("deeper")));
            tracing::warn!(target: CALL_TARGET, error = &err as &(dyn std::error::Error + 'static), r#type = "x");
            tracing::error!(target: CALL_TARGET, empty = "");
            tracing::info!(target: CALL_TARGET, "message only");
            tracing::info!(target: CALL_TARGET, "C1 \u{85} and \u{9f}, BEL \x07, DEL \x7f, é");
            tracing::info!(target: CALL_TARGET, message = "as a \x08 string", after = 1);
            tracing::info!(target: CALL_TARGET, first = "no message");
            // Longer than what is gathered at once, as a string and as text.
            let long = "ab".repeat(200);
            tracing::info!(target: CALL_TARGET, before = "x", long = long.as_str(), shown = %long, after = 1);
            // Not the call target, and inside a span: tracing-subscriber's own.
            tracing::info!(target: "search::other", a = "b");
            let span = tracing::info_span!("outer", id = 3);
            span.in_scope(|| tracing::info!(target: CALL_TARGET, inside = "span"));
        });
        assert_eq!(lines.len(), 11, "{lines:#?}");
        assert_eq!(lines, full);
        assert_eq!(
            lines[0],
            " INFO search::call: call method=/search.v1.SearchService/Search protocol=\"grpc\" code=\"OK\" \
             duration=71.234ms peer=127.0.0.1:50312"
        );
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
}
