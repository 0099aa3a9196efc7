//! Where log lines go: stderr, in batches on a runtime worker ([`Stderr`]),
//! so that the server's call lines cost one write for many calls.

use std::cell::RefCell;
use std::io::{self, Write as _};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
