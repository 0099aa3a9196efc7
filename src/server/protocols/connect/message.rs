//! One request message of a Connect call, made into the gRPC message the
//! handlers read: inflated when compressed (never past the size limit, see
//! `protocols/compression.rs`), transcoded from JSON when the call is JSON,
//! and put in an uncompressed gRPC envelope.

use bytes::Bytes;
use tonic::Status;

use super::codec::FromJson;
use crate::server::protocols::compression::{self, Encoding};
use crate::server::protocols::envelope;
use crate::server::protocols::frames::too_large;
use crate::server::protocols::per_message::ReceivedCompression;

/// The compression a request names in `header` (`content-encoding` for
/// unary calls, `connect-content-encoding` for streams, `compression` for
/// `GET`): none for a missing one or `identity`.
///
/// # Errors
/// UNIMPLEMENTED naming the encodings the server takes.
pub(super) fn request_encoding(name: Option<&str>, header: &str) -> Result<Option<Encoding>, Status> {
    match name.map(str::trim) {
        None | Some("" | "identity") => Ok(None),
        Some(name) => Encoding::parse(name).map(Some).ok_or_else(|| compression::unsupported(name, header)),
    }
}

/// How the messages of one call are read.
#[derive(Debug, Clone)]
pub(super) struct Decoder {
    /// The request's compression, if any.
    pub encoding: Option<Encoding>,
    /// JSON to protobuf, for JSON calls.
    pub from_json: Option<FromJson>,
    /// The largest message, compressed or not, as `--max-recv-bytes` says.
    pub limit: usize,
    /// The request message type's name, for error messages.
    pub type_name: &'static str,
    /// Where each message's compression is recorded, for a handler that
    /// may ask (an added service's).
    pub received: Option<ReceivedCompression>,
}

impl Decoder {
    /// `data` (compressed when `compressed`) as an uncompressed gRPC
    /// envelope of protobuf.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for JSON that is not the message (saying where),
    /// RESOURCE_EXHAUSTED for a message over the limit.
    pub(super) fn envelope(&self, data: Bytes, compressed: bool) -> Result<Bytes, Status> {
        if let Some(received) = &self.received {
            received.record(compressed);
        }
        let data = match (compressed, self.encoding) {
            (false, _) => data,
            (true, Some(encoding)) => encoding.inflate(&data, self.limit)?,
            (true, None) => {
                return Err(Status::invalid_argument("a compressed message in a request that names no compression"));
            }
        };
        if data.len() > self.limit {
            return Err(too_large(data.len(), self.limit));
        }
        match self.from_json {
            None => Ok(envelope::encode(0, &data)),
            Some(from_json) => {
                let proto = from_json(&data).map_err(|err| {
                    Status::invalid_argument(format!("the request is not valid JSON for {}: {err}", self.type_name))
                })?;
                Ok(envelope::encode(0, &proto))
            }
        }
    }
}
