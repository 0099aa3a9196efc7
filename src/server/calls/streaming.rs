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
//! ([`crate::lenient`]: a field of the wrong wire type is skipped).

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
use crate::server::protocols::compression::ENCODINGS;
use crate::server::protocols::{CallFuture, answered};

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

/// A call of the Search service's streaming method named `method`.
pub(super) fn call(method: &str, request: Request<Body>, limit: usize) -> CallFuture {
    match method {
        "Classify" => Box::pin(async move {
            let classify = service_fn(|request| SearchService::classify(&Search, request));
            Ok(grpc(limit).streaming(classify, request).await)
        }),
        "Count" => Box::pin(async move {
            let count = service_fn(|request| SearchService::count(&Search, request));
            Ok(grpc(limit).client_streaming(count, request).await)
        }),
        "Scan" => Box::pin(async move {
            let scan = service_fn(|request| SearchService::scan(&Search, request));
            Ok(grpc(limit).server_streaming(scan, request).await)
        }),
        // Routes serves only the contract's paths: Search went to unary.rs.
        _ => answered(Status::unimplemented(format!("no method {method} in the Search service")).into_http()),
    }
}
