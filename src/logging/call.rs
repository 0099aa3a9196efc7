//! The server's per-call log line ([`Call`]): the tracing event, or in the
//! text format without colour the same bytes written directly.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::Level;

use super::format::{Elapsed, YEAR_10000, write_timestamp};
use super::stderr::Stderr;

/// The target of the server's per-call line.
pub const CALL_TARGET: &str = "search::call";

/// Whether call lines are written directly ([`Call::log`]): set by
/// [`super::init`] for the text format without colour.
static DIRECT: OnceLock<bool> = OnceLock::new();

/// Sets, once, whether call lines are written directly.
pub(super) fn write_directly(direct: bool) {
    let _ = DIRECT.set(direct);
}

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
    /// than [`init`](super::init)'s) it is the tracing event.
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
}
