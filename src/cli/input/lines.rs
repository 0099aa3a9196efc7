//! Queries one per line, read in batches (one streaming message each) as
//! they come ([`LineBatches`]), and fed to a streaming call from a task of
//! their own ([`Batches::feed`]).

use std::collections::VecDeque;
use std::fmt;
use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use super::error::Error;
use super::source::Source;

/// The most queries one streaming message carries.
pub const MAX_BATCH_QUERIES: usize = 1024;

/// The most query bytes one streaming message carries (a soft limit: a batch
/// ends after the line that reaches it), far below the 4 MiB message limit.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Bytes read from the input at a time.
const READ_BUFFER: usize = 256 * 1024;

/// Queries for a streaming call, a batch (one message) at a time.
#[derive(Debug)]
pub enum Batches {
    /// Lines read as they come, one query per line.
    Lines(LineBatches),
    /// Batches given as JSON messages, sent as they were written.
    Given(VecDeque<Vec<String>>),
}

impl Batches {
    /// The next batch, or `None` at the end of the input.
    ///
    /// # Errors
    /// When reading fails or a line is not UTF-8.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<String>>, Error> {
        match self {
            Self::Lines(lines) => lines.next_batch().await,
            Self::Given(batches) => Ok(batches.pop_front()),
        }
    }

    /// Sends every batch, wrapped into a message by `wrap`, on the returned
    /// stream from a task of its own, so that a call can send and receive at
    /// once. The [`Feeder`] tells at the end how many queries were sent.
    pub fn feed<M: Send + 'static>(mut self, wrap: fn(Vec<String>) -> M) -> (ReceiverStream<M>, Feeder) {
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(async move {
            let mut sent = 0u64;
            while let Some(batch) = self.next_batch().await? {
                sent += batch.len() as u64;
                if tx.send(wrap(batch)).await.is_err() {
                    // The call ended first; the caller reports why.
                    break;
                }
            }
            Ok(sent)
        });
        (ReceiverStream::new(rx), Feeder { task })
    }
}

/// The task feeding a streaming call. Dropping it stops the task.
#[derive(Debug)]
pub struct Feeder {
    task: JoinHandle<Result<u64, Error>>,
}

impl Feeder {
    /// Waits for the input to end and returns how many queries were sent.
    ///
    /// # Errors
    /// The input error that ended the stream early, if any.
    pub async fn finish(mut self) -> Result<u64, Error> {
        match (&mut self.task).await {
            Ok(result) => result,
            // The task never panics on input; a panic is a bug, so re-raise it.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => Err(Error::Read { what: "the input".to_owned(), err: io::Error::other(err) }),
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Lines of a source as batches of queries, one query per line without its
/// `\n` or `\r\n`. A batch ends at [`MAX_BATCH_QUERIES`], at
/// [`MAX_BATCH_BYTES`], or as soon as reading more would wait, so that a
/// slow producer (a person typing) gets each answer at once and a file goes
/// in large batches.
pub struct LineBatches {
    source: Source,
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    /// Lines read so far.
    line: u64,
}

impl fmt::Debug for LineBatches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineBatches").field("source", &self.source).field("line", &self.line).finish_non_exhaustive()
    }
}

impl LineBatches {
    /// Opens `source` for reading.
    ///
    /// # Errors
    /// When the source cannot be opened.
    pub async fn open(source: Source) -> Result<Self, Error> {
        let reader = source.open().await?;
        Ok(Self::new(source, reader))
    }

    /// Lines of an already open reader; `source` names it in errors.
    #[must_use]
    pub fn new(source: Source, reader: Box<dyn AsyncRead + Send + Unpin>) -> Self {
        Self { source, reader: BufReader::with_capacity(READ_BUFFER, reader), line: 0 }
    }

    /// The next batch, or `None` at the end of the input.
    ///
    /// # Errors
    /// When reading fails or a line is not UTF-8.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<String>>, Error> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < MAX_BATCH_QUERIES && bytes < MAX_BATCH_BYTES {
            let mut line = Vec::new();
            let read = self
                .reader
                .read_until(b'\n', &mut line)
                .await
                .map_err(|err| Error::Read { what: self.source.to_string(), err })?;
            if read == 0 {
                break;
            }
            self.line += 1;
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            let query = String::from_utf8(line)
                .map_err(|_| Error::LineNotUtf8 { what: self.source.to_string(), line: self.line })?;
            bytes += query.len();
            batch.push(query);
            if self.reader.buffer().is_empty() {
                break;
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::Just;

    use super::*;

    fn lines_of(bytes: &'static [u8]) -> LineBatches {
        LineBatches::new(Source::File("input.txt".into()), Box::new(bytes))
    }

    async fn all_batches(mut lines: LineBatches) -> Result<Vec<Vec<String>>, Error> {
        let mut batches = Vec::new();
        while let Some(batch) = lines.next_batch().await? {
            batches.push(batch);
        }
        Ok(batches)
    }

    #[tokio::test]
    async fn one_query_per_line_with_line_endings_removed() {
        let batches = all_batches(lines_of(b"Banana\r\napple\n\nlast")).await.expect("valid input");
        assert_eq!(batches.concat(), ["Banana", "apple", "", "last"]);
        let batches = all_batches(lines_of(b"one\n")).await.expect("valid input");
        assert_eq!(batches.concat(), ["one"]);
        assert!(all_batches(lines_of(b"")).await.expect("valid input").is_empty());
    }

    #[tokio::test]
    async fn batches_are_bounded_in_queries_and_bytes() {
        let many: &'static [u8] = "q\n".repeat(3 * MAX_BATCH_QUERIES).leak().as_bytes();
        let batches = all_batches(lines_of(many)).await.expect("valid input");
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 3 * MAX_BATCH_QUERIES);
        assert!(batches.iter().all(|b| b.len() <= MAX_BATCH_QUERIES));
        assert!(batches.len() >= 3);

        let long_line = format!("{}\n", "x".repeat(MAX_BATCH_BYTES / 2));
        let big: &'static [u8] = long_line.repeat(10).leak().as_bytes();
        let batches = all_batches(lines_of(big)).await.expect("valid input");
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 10);
        assert!(batches.iter().all(|b| b.len() <= 2), "{:?}", batches.iter().map(Vec::len).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_line_that_is_not_utf8_is_named() {
        let err = all_batches(lines_of(b"fine\nalso fine\nbad \xff byte\n")).await.expect_err("line 3 is not UTF-8");
        assert_eq!(err.to_string(), "input.txt: line 3 is not valid UTF-8");
    }

    /// The reference: lines cut at every `\n` (a final piece without one is
    /// a line too, an empty one is not), one `\r` before the `\n` dropped;
    /// or the number of the first line that is not UTF-8.
    fn model_lines(bytes: &[u8]) -> Result<Vec<String>, u64> {
        let mut lines = Vec::new();
        let mut pieces: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let last = pieces.pop().unwrap_or_default();
        let mut ended: Vec<&[u8]> = pieces.into_iter().map(|line| line.strip_suffix(b"\r").unwrap_or(line)).collect();
        if !last.is_empty() {
            ended.push(last);
        }
        for (number, line) in ended.into_iter().enumerate() {
            lines.push(String::from_utf8(line.to_vec()).map_err(|_| number as u64 + 1)?);
        }
        Ok(lines)
    }

    proptest::proptest! {
        #[test]
        fn lines_read_as_the_model_cuts_them(bytes in proptest::collection::vec(
            proptest::prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), Just(0xff), Just(0xc3), Just(0xa9)], 0..200,
        )) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
            let reader = Box::new(std::io::Cursor::new(bytes.clone()));
            let read = runtime.block_on(all_batches(LineBatches::new(Source::File("input.txt".into()), reader)));
            match (read, model_lines(&bytes)) {
                (Ok(batches), Ok(lines)) => proptest::prop_assert_eq!(batches.concat(), lines),
                (Err(Error::LineNotUtf8 { line, .. }), Err(bad)) => proptest::prop_assert_eq!(line, bad),
                (read, model) => proptest::prop_assert!(false, "read {read:?}, model {model:?}"),
            }
        }
    }
}
