//! The Search service's streaming calls (Classify, Count, Scan) served
//! through tonic's framing, compression and limits, with buffers sized for
//! this contract's messages. The generated server's codec starts every call
//! with an 8 KiB buffer each way; a held Classify call with one batch of a
//! few queries touched a page of each, and the buffers were most of what a
//! call adds to its connection's memory. Here they start at 1 KiB and grow
//! (doubling) for larger messages, up to the size limit as before.
//!
//! The handlers are the generated trait's (`handlers.rs`); the codec
//! differs from what the generated server would run in its buffer sizes,
//! and in decoding requests as protobuf's own runtimes do
//! ([`crate::lenient`]: a field of the wrong wire type is skipped). A
//! method of the service not named here is served by the generated server
//! (`routes.rs`), so a method added to the contract is routed as soon as
//! its handler is written; naming it here only gives it these buffers.

use std::marker::PhantomData;

use bytes::Buf;
use http::Request;
use prost::{Message, Name};
use tonic::Status;
use tonic::body::Body;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::server::Grpc;
use tonic_prost::ProstEncoder;
use tower::service_fn;

use super::handlers::Search;
use crate::pb::v1::search_service_server::SearchService;
use crate::server::protocols::CallFuture;
use crate::server::protocols::compression::ENCODINGS;

/// Where each call's buffers start: a batch of a few dozen queries.
const BUFFER_SIZE: usize = 1024;

/// Encoded messages gathered before a response frame is sent: tonic's own.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost's codec with [`BUFFER_SIZE`] buffers: encodes `T`, decodes `U`
/// leniently.
struct Prost<T, U>(PhantomData<fn(T) -> U>);

impl<T, U> Default for Prost<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for Prost<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = Lenient<U>;

    fn encoder(&mut self) -> ProstEncoder<T> {
        ProstEncoder::new(BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Lenient<U> {
        Lenient(PhantomData)
    }
}

/// Decodes `U` as protobuf's runtimes do ([`crate::lenient`]), failing as
/// tonic's prost decoder fails (INTERNAL, prost's words), which the
/// per-call layer makes the client's mistake.
struct Lenient<U>(PhantomData<fn() -> U>);

impl<U: Message + Name + Default> Decoder for Lenient<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let message = buf.copy_to_bytes(buf.remaining());
        crate::lenient::decode(message).map(Some).map_err(|err| Status::internal(err.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
    }
}

/// One call's framing: every encoding the server has accepted for
/// requests, whose messages are at most `limit` bytes. Answers are
/// compressed by the per-call layer, per message, when worth it.
fn grpc<T, U>(limit: usize) -> Grpc<Prost<T, U>>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    ENCODINGS
        .iter()
        .fold(Grpc::new(Prost::default()), |grpc, encoding| grpc.accept_compressed(encoding.tonic()))
        .max_decoding_message_size(limit)
}

/// The Search service's methods served here, with small buffers and
/// lenient decoding; any other method of the service goes to the generated
/// server (see `routes.rs`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Streaming {
    /// Bidirectional: a stream of batches, one answer each.
    Classify,
    /// Client streaming: a stream of batches, one summary.
    Count,
    /// Server streaming: one text, its matches as they are found.
    Scan,
}

impl Streaming {
    /// The method of the Search service named `method`, if it is served here.
    pub(super) fn named(method: &str) -> Option<Self> {
        match method {
            "Classify" => Some(Self::Classify),
            "Count" => Some(Self::Count),
            "Scan" => Some(Self::Scan),
            _ => None,
        }
    }

    /// One call of this method, whose request messages are at most `limit`
    /// bytes.
    pub(super) fn call(self, request: Request<Body>, limit: usize) -> CallFuture {
        match self {
            Self::Classify => Box::pin(async move {
                let classify = service_fn(|request| SearchService::classify(&Search, request));
                Ok(grpc(limit).streaming(classify, request).await)
            }),
            Self::Count => Box::pin(async move {
                let count = service_fn(|request| SearchService::count(&Search, request));
                Ok(grpc(limit).client_streaming(count, request).await)
            }),
            Self::Scan => Box::pin(async move {
                let scan = service_fn(|request| SearchService::scan(&Search, request));
                Ok(grpc(limit).server_streaming(scan, request).await)
            }),
        }
    }
}
