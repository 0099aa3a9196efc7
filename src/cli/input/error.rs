//! Why the input could not be used: each error names its source and, where
//! it has one, the position.

use std::io;

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
