//! The client's input: queries one per line (batched for the streaming
//! calls), whole texts to scan, and requests written as JSON (`-d`).
//!
//! Files:
//! - `source.rs`: where input comes from ([`Source`]), read whole.
//! - `lines.rs`: queries one per line, in batches, fed to a stream.
//! - `json.rs`: `-d`, requests written as JSON ([`Data`]).
//! - `error.rs`: why input could not be used, with where ([`Error`]).

mod error;
mod json;
mod lines;
mod source;

pub use self::error::Error;
pub use self::json::Data;
pub use self::lines::{Batches, Feeder, LineBatches, MAX_BATCH_BYTES, MAX_BATCH_QUERIES};
pub use self::source::{Source, read_text};
