//! The client's input: queries one per line (batched for the streaming
//! calls), whole texts to scan, and requests written as JSON (`-d`).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

/// The most queries one streaming message carries.
pub const MAX_BATCH_QUERIES: usize = 1024;

/// The most query bytes one streaming message carries (a soft limit: a batch
/// ends after the line that reaches it), far below the 4 MiB message limit.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Bytes read from the input at a time.
const READ_BUFFER: usize = 256 * 1024;

/// Where input comes from: a file, or standard input (`-` or no file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    /// The source an optional FILE argument names; `-` is standard input.
    #[must_use]
    pub fn from_arg(file: Option<PathBuf>) -> Self {
        match file {
            Some(path) if path.as_os_str() != "-" => Self::File(path),
            _ => Self::Stdin,
        }
    }

    async fn open(&self) -> Result<Box<dyn AsyncRead + Send + Unpin>, Error> {
        match self {
            Self::Stdin => Ok(Box::new(tokio::io::stdin())),
            Self::File(path) => match tokio::fs::File::open(path).await {
                Ok(file) => Ok(Box::new(file)),
                Err(err) => Err(Error::Read { what: self.to_string(), err }),
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin => f.write_str("standard input"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why the input could not be used. Each names its source and position.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening or reading failed.
    #[error("cannot read {what}: {err}")]
    Read {
        /// What was being read.
        what: String,
        /// Why it failed.
        #[source]
        err: io::Error,
    },
    /// A line of queries is not UTF-8 (a proto string must be).
    #[error("{what}: line {line} is not valid UTF-8")]
    LineNotUtf8 {
        /// What was being read.
        what: String,
        /// The 1-based line number.
        line: u64,
    },
    /// A text to scan is not UTF-8 (a proto string must be).
    #[error("{what} is not valid UTF-8 (first invalid byte at offset {offset})")]
    TextNotUtf8 {
        /// What was being read.
        what: String,
        /// The 0-based offset of the first invalid byte.
        offset: usize,
    },
    /// A `-d` request is not valid JSON for the call's message type.
    #[error("invalid JSON request in {what}: {err}")]
    Json {
        /// What was being read.
        what: String,
        /// The parser's error, with its line and column.
        #[source]
        err: serde_json::Error,
    },
    /// A `-d` request names a field its message does not have.
    #[error("invalid JSON request in {what}: unknown field `{field}`")]
    UnknownField {
        /// What was being read.
        what: String,
        /// The field's path in the message.
        field: String,
    },
    /// A unary call was given no JSON message, or several.
    #[error("{what} holds {count} JSON requests; this call takes exactly one")]
    NotOneMessage {
        /// What was being read.
        what: String,
        /// How many messages it held.
        count: usize,
    },
}

/// Where `-d` takes its JSON from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// The JSON itself, written on the command line.
    Inline(String),
    /// `@FILE`, or `@-` for standard input.
    From(Source),
}

impl Data {
    /// Reads `-d`'s argument: `@-` is stdin, `@FILE` a file, anything else JSON.
    #[must_use]
    pub fn from_arg(arg: &str) -> Self {
        match arg.strip_prefix('@') {
            Some(file) => Self::From(Source::from_arg(Some(file.into()))),
            None => Self::Inline(arg.to_owned()),
        }
    }

    /// Every JSON message the data holds, one after another (whitespace or
    /// nothing between them), as grpcurl reads `-d` for streaming calls.
    ///
    /// # Errors
    /// When the data cannot be read or a message does not parse as `T`; the
    /// message names the line and column.
    pub async fn messages<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        let text = match self {
            Self::Inline(json) => json.clone(),
            Self::From(source) => read_text(source).await?,
        };
        let json_error = |err| Error::Json { what: self.to_string(), err };
        let mut parser = serde_json::Deserializer::from_str(&text);
        let mut messages = Vec::new();
        // `end` succeeds once only white space is left.
        while parser.end().is_err() {
            // The generated JSON impls skip unknown fields, as a server must;
            // here a field the message lacks is a typo to report, not drop.
            let mut unknown = None;
            let message =
                T::deserialize(serde_ignored::Deserializer::new(&mut parser, &mut |path: serde_ignored::Path<'_>| {
                    unknown.get_or_insert_with(|| path.to_string());
                }))
                .map_err(json_error)?;
            if let Some(field) = unknown {
                return Err(Error::UnknownField { what: self.to_string(), field });
            }
            messages.push(message);
        }
        Ok(messages)
    }

    /// The one JSON message of a unary call.
    ///
    /// # Errors
    /// As [`Data::messages`], and when the data holds no message or several.
    pub async fn message<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let mut messages = self.messages::<T>().await?;
        if messages.len() == 1 {
            return Ok(messages.remove(0));
        }
        Err(Error::NotOneMessage { what: self.to_string(), count: messages.len() })
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("the -d argument"),
            Self::From(source) => source.fmt(f),
        }
    }
}

/// Reads a whole source as UTF-8 text.
///
/// # Errors
/// When it cannot be read or is not UTF-8.
pub async fn read_text(source: &Source) -> Result<String, Error> {
    let mut bytes = Vec::new();
    source.open().await?.read_to_end(&mut bytes).await.map_err(|err| Error::Read { what: source.to_string(), err })?;
    String::from_utf8(bytes)
        .map_err(|err| Error::TextNotUtf8 { what: source.to_string(), offset: err.utf8_error().valid_up_to() })
}

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
    use crate::pb::v1::{ClassifyRequest, SearchRequest};

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

    #[tokio::test]
    async fn json_data_holds_one_or_many_messages() {
        let data = Data::from_arg(r#"{"query":"Banana"}"#);
        let request: SearchRequest = data.message().await.expect("one message");
        assert_eq!(request.query, "Banana");

        let data = Data::from_arg(r#"{"queries":["a","banana"]} {"queries":[]}{}"#);
        let requests: Vec<ClassifyRequest> = data.messages().await.expect("three messages");
        let queries: Vec<Vec<String>> = requests.into_iter().map(|r| r.queries).collect();
        assert_eq!(queries, [vec!["a".to_owned(), "banana".to_owned()], vec![], vec![]]);
    }

    #[tokio::test]
    async fn bad_json_names_the_position() {
        let err = Data::from_arg("{\n  \"query\": Banana\n}").message::<SearchRequest>().await.expect_err("bad JSON");
        let message = err.to_string();
        assert!(message.starts_with("invalid JSON request in the -d argument: "), "{message}");
        assert!(message.ends_with("at line 2 column 12"), "{message}");

        let err = Data::from_arg(r#"{"qurey":"x"}"#).message::<SearchRequest>().await.expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `qurey`"), "{err}");

        let err = Data::from_arg("{} {}").message::<SearchRequest>().await.expect_err("two messages");
        assert_eq!(err.to_string(), "the -d argument holds 2 JSON requests; this call takes exactly one");
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

        #[test]
        fn json_data_never_panics(text in "\\PC{0,40}") {
            // `@...` names a file (and `@-` standard input): inline JSON only.
            proptest::prop_assume!(!text.starts_with('@'));
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
            let _ = runtime.block_on(Data::from_arg(&text).messages::<ClassifyRequest>());
        }
    }
}
