//! The gRPC framing of a request body, checked as it arrives: the size
//! limit, truncation, the compressed flag, and the messages counted each
//! way ([`Flows`], which the metrics read). A body the client cut off (a
//! reset stream, a connection gone) ends the call as CANCELLED. tonic's decoder passes the
//! statuses this raises on unchanged. The wording of the size limit is
//! here too, for every protocol alike.
//!
//! tonic's decoder (checked) also refuses an oversized message from its
//! prefix, but reports a body cut short as INTERNAL, and the direct unary
//! path (`calls/unary.rs`) does not go through it: one check here serves
//! every path.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::{Code, Status};

use super::envelope::{Cut, Follower, PREFIX_LEN};
use super::per_message::ReceivedCompression;
use crate::traces::Messages;

/// gRPC message frames and their bytes (5-byte prefixes included, as on
/// the wire: compressed when compressed), each way.
#[derive(Debug, Default)]
pub(in crate::server) struct Flows {
    /// Counted by [`RequestFrames`] as requests arrive.
    pub(in crate::server) received: Flow,
    /// Counted by the per-call layer as answers leave.
    pub(in crate::server) sent: Flow,
}

/// Messages and bytes one way.
#[derive(Debug, Default)]
pub(in crate::server) struct Flow {
    messages: AtomicU64,
    bytes: AtomicU64,
}

impl Flow {
    /// Counts `messages` whole messages and `bytes` bytes.
    pub(in crate::server) fn add(&self, messages: u64, bytes: u64) {
        if messages > 0 {
            self.messages.fetch_add(messages, Ordering::Relaxed);
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The messages and bytes counted so far.
    pub(in crate::server) fn load(&self) -> (u64, u64) {
        (self.messages.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

/// A request body checked frame by frame for gRPC framing: a message larger
/// than the limit fails with RESOURCE_EXHAUSTED as soon as its prefix
/// arrives (before it is buffered), a body that ends inside a message fails
/// with INVALID_ARGUMENT, and so does a compressed message without an
/// encoding. tonic's decoder passes these statuses on unchanged.
pub(in crate::server) struct RequestFrames {
    inner: Body,
    limit: usize,
    compressed_ok: bool,
    envelopes: Follower,
    /// Where the messages received are counted, when metrics are on.
    flows: Option<Arc<Flows>>,
    /// Where each message's compressed flag is recorded, when the handler
    /// may ask.
    received: Option<ReceivedCompression>,
    /// Where the messages are noted for the call's span, when traced.
    traced: Option<Arc<Messages>>,
    failed: bool,
}

impl RequestFrames {
    /// `inner` checked against `limit`; compressed messages are refused
    /// unless `compressed_ok` (the request named an encoding); the messages
    /// received are counted in `flows` when given.
    pub(in crate::server) fn new(inner: Body, limit: usize, compressed_ok: bool, flows: Option<Arc<Flows>>) -> Self {
        let envelopes = Follower::default();
        Self { inner, limit, compressed_ok, envelopes, flows, received: None, traced: None, failed: false }
    }

    /// Notes the messages received for the call's span too.
    pub(in crate::server) fn traced(mut self, traced: Option<Arc<Messages>>) -> Self {
        self.traced = traced;
        self
    }

    /// Records each message's compressed flag in `received` too.
    pub(in crate::server) fn recording(mut self, received: Option<ReceivedCompression>) -> Self {
        self.received = received;
        self
    }

    /// Follows the framing through one chunk of the body; the count of
    /// messages begun in it.
    fn track(&mut self, data: &[u8]) -> Result<u64, Status> {
        let (limit, compressed_ok, received) = (self.limit, self.compressed_ok, self.received.as_ref());
        self.envelopes.follow(data, |flag, len| {
            match flag {
                0 => {}
                1 if compressed_ok => {}
                1 => {
                    return Err(Status::invalid_argument(
                        "a compressed request message without a grpc-encoding header",
                    ));
                }
                other => {
                    return Err(Status::invalid_argument(format!(
                        "invalid gRPC message prefix: compressed flag {other}, expected 0 or 1"
                    )));
                }
            }
            if len > limit {
                return Err(too_large(len, limit));
            }
            if let Some(received) = received {
                received.record(flag == 1);
            }
            Ok(())
        })
    }

    fn truncated(&self) -> Option<Status> {
        Some(match self.envelopes.cut()? {
            Cut::InPrefix(have) => Status::invalid_argument(format!(
                "the request body ended inside a message prefix ({have} of {PREFIX_LEN} bytes)"
            )),
            Cut::InMessage(arrived, len) => Status::invalid_argument(format!(
                "the request body ended inside a message: {arrived} of its {len} bytes arrived"
            )),
        })
    }
}

impl HttpBody for RequestFrames {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        let checked = match &frame {
            Some(Ok(frame)) => frame.data_ref().map_or(Ok(()), |data| {
                let messages = this.track(data.chunk())?;
                if let Some(flows) = &this.flows {
                    flows.received.add(messages, data.len() as u64);
                }
                if let Some(traced) = &this.traced {
                    traced.passed(false, messages);
                }
                Ok(())
            }),
            // The client reset the stream, or its connection ended, with the
            // request unfinished: the call is cancelled, whatever words the
            // transport chose (tonic says CANCELLED for a reset, UNKNOWN for
            // a connection closed mid-body).
            Some(Err(status)) if status.code() != Code::Cancelled && from_transport(status) => {
                Err(Status::cancelled(format!("the request ended early: {}", status.message())))
            }
            Some(Err(_)) => Ok(()),
            None => this.truncated().map_or(Ok(()), Err),
        };
        match checked {
            Ok(()) => Poll::Ready(frame),
            Err(status) => {
                this.failed = true;
                Poll::Ready(Some(Err(status)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || (self.inner.is_end_stream() && self.truncated().is_none())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `status` comes from the connection (hyper, h2, the socket)
/// rather than from a layer that judged the request.
fn from_transport(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        if cause.is::<hyper::Error>() || cause.is::<h2::Error>() || cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// RESOURCE_EXHAUSTED for a request message of `len` bytes over `limit`,
/// in every protocol's words alike.
pub(in crate::server) fn too_large(len: usize, limit: usize) -> Status {
    over_limit(&len.to_string(), limit)
}

/// RESOURCE_EXHAUSTED for a body that passed `limit` at `len` bytes, while
/// it was still arriving.
pub(super) fn too_large_so_far(len: usize, limit: usize) -> Status {
    over_limit(&format!("at least {len}"), limit)
}

fn over_limit(size: &str, limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "the request message is {size} bytes, over the server's limit of {limit} bytes (--max-recv-bytes)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(limit: usize) -> RequestFrames {
        RequestFrames::new(Body::empty(), limit, false, None)
    }

    fn message(len: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.resize(PREFIX_LEN + len as usize, b'x');
        bytes
    }

    #[test]
    fn framing_is_followed_across_chunk_boundaries() {
        let mut tracker = frames(100);
        let mut stream = message(10);
        stream.extend(message(0));
        stream.extend(message(100));
        // Every split of the stream into two chunks is followed exactly.
        for split in 0..stream.len() {
            let mut t = frames(100);
            t.track(&stream[..split]).expect("within limits");
            t.track(&stream[split..]).expect("within limits");
            assert!(t.truncated().is_none(), "split at {split}");
        }
        tracker.track(&stream[..stream.len() - 1]).expect("within limits");
        let truncated = tracker.truncated().expect("one byte missing");
        assert_eq!(truncated.message(), "the request body ended inside a message: 99 of its 100 bytes arrived");
        let mut prefix_only = frames(100);
        prefix_only.track(&message(3)[..2]).expect("fine so far");
        assert_eq!(prefix_only.truncated().map(|s| s.code()), Some(Code::InvalidArgument));
    }

    #[test]
    fn an_oversized_message_is_refused_from_its_prefix() {
        let mut tracker = frames(1000);
        let status = tracker.track(&message(1001)[..PREFIX_LEN]).expect_err("over the limit");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "the request message is 1001 bytes, over the server's limit of 1000 bytes (--max-recv-bytes)"
        );
        let mut flagged = frames(1000);
        let status = flagged.track(&[1, 0, 0, 0, 0]).expect_err("compressed without encoding");
        assert_eq!(status.code(), Code::InvalidArgument);
        let status = frames(1000).track(&[7, 0, 0, 0, 0]).expect_err("bad flag");
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    /// A body whose first frame is `status`.
    struct Failing(Option<Status>);

    impl HttpBody for Failing {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Ready(self.0.take().map(Err))
        }
    }

    /// The error `RequestFrames` gives for a body failing with `status`.
    fn passed_on(status: Status) -> Status {
        let mut frames = RequestFrames::new(Body::new(Failing(Some(status))), 100, false, None);
        let waker = std::task::Waker::noop();
        match Pin::new(&mut frames).poll_frame(&mut Context::from_waker(waker)) {
            Poll::Ready(Some(Err(status))) => status,
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn a_body_the_connection_cut_off_is_cancelled_and_other_errors_pass() {
        let closed = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let status = passed_on(Status::from_error(Box::new(closed)));
        assert_eq!(status.code(), Code::Cancelled, "{status:?}");
        assert!(status.message().starts_with("the request ended early: "), "{}", status.message());
        // A status a layer chose (Connect's translation, say) is kept.
        assert_eq!(passed_on(Status::invalid_argument("bad JSON")).code(), Code::InvalidArgument);
    }

    /// The reference: the messages of a body, cut by reading each prefix.
    fn model_split(mut body: &[u8]) -> Option<Vec<usize>> {
        let mut lengths = Vec::new();
        while !body.is_empty() {
            let prefix = body.get(..PREFIX_LEN)?;
            let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
            body = body.get(PREFIX_LEN + len..)?;
            lengths.push(len);
        }
        Some(lengths)
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_followed_without_a_panic(chunks in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..40), 0..8)) {
            let mut tracker = frames(64);
            for chunk in &chunks {
                if tracker.track(chunk).is_err() {
                    break;
                }
            }
            let _ = tracker.truncated();
        }

        #[test]
        fn well_framed_bodies_pass_however_they_are_cut(
            lengths in proptest::collection::vec(0usize..300, 0..6),
            cuts in proptest::collection::vec(0usize..2000, 0..6),
        ) {
            let body: Vec<u8> = lengths.iter().flat_map(|&len| message(u32::try_from(len).expect("small"))).collect();
            proptest::prop_assert_eq!(model_split(&body), Some(lengths.clone()));
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut tracker = frames(300);
            let mut from = 0;
            for to in cuts.into_iter().chain([body.len()]) {
                proptest::prop_assert!(tracker.track(&body[from..to]).is_ok());
                from = to;
            }
            proptest::prop_assert!(tracker.truncated().is_none());
        }

        #[test]
        fn a_cut_body_is_reported_as_the_model_finds_it(
            lengths in proptest::collection::vec(0usize..50, 1..4),
            drop in 1usize..60,
        ) {
            let body: Vec<u8> = lengths.iter().flat_map(|&len| message(u32::try_from(len).expect("small"))).collect();
            let cut = &body[..body.len().saturating_sub(drop)];
            let mut tracker = frames(300);
            proptest::prop_assert!(tracker.track(cut).is_ok());
            // Cut on a message boundary it is whole; anywhere else, truncated.
            proptest::prop_assert_eq!(tracker.truncated().is_none(), model_split(cut).is_some());
        }
    }
}
