//! The fuzz targets of a request body's bytes (see `mod.rs`): the gRPC
//! envelope and a request's framing, and message compression.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use http_body_util::StreamBody;
use tonic::body::Body;
use tonic::{Code, Status};

use super::Input;
use crate::server::protocols::compression::{ENCODINGS, Encoding};
use crate::server::protocols::envelope::{PREFIX_LEN, Splitter, TooLarge};
use crate::server::protocols::{ReceivedCompression, RequestFrames};

/// The gRPC envelopes of a request body, however it is cut into chunks,
/// through both of the server's readers: the splitter (the direct unary
/// Search, Connect's streams) and the framing check every gRPC call's body
/// passes ([`RequestFrames`]). Each must agree with a plain reading of the
/// whole body, and the framing check must pass the body on unchanged.
pub fn envelope(data: &[u8]) {
    let mut input = Input::new(data);
    let limit = input.pick(&[0, 1, 5, 64, 1000, 4 << 20]);
    let compressed_ok = input.byte() & 1 == 1;
    let chunks = input.chunks();
    let body = chunks.concat();
    let model = Framing::read(&body, limit, compressed_ok);

    let mut splitter = Splitter::new(limit);
    let (mut whole, mut too_large) = (Vec::new(), None);
    'body: for chunk in &chunks {
        splitter.push(*chunk);
        loop {
            match splitter.next() {
                Ok(Some(envelope)) => whole.push((envelope.flags, envelope.data)),
                Ok(None) => break,
                Err(TooLarge(len)) => {
                    too_large = Some(len);
                    break 'body;
                }
            }
        }
    }
    assert_eq!(whole, model.whole, "the splitter's envelopes");
    assert_eq!(too_large, model.too_large, "the splitter's refusal");
    if too_large.is_none() {
        assert_eq!(splitter.pending(), model.trailing, "bytes of an envelope not yet whole");
    }

    let received = ReceivedCompression::default();
    let (passed, end) = frames_of(&chunks, limit, compressed_ok, &received);
    assert!(body.starts_with(&passed), "the framing check passes the body on as it came");
    assert_eq!(end, model.frames, "the framing check's verdict");
    if end.is_ok() {
        assert_eq!(passed.len(), body.len(), "a body that passes passes whole");
    }
    // Each message's compressed flag, for a handler that asks, up to the
    // bound past which the server stops keeping them.
    let recorded: Vec<bool> = std::iter::from_fn(|| received.next()).collect();
    if model.recorded.len() <= 4096 {
        assert_eq!(recorded, model.recorded, "the compressed flags recorded");
    }
}

/// A body read plainly, whole, as the reference for the two readers.
struct Framing {
    /// The envelopes that arrived whole before any over the limit.
    whole: Vec<(u8, Bytes)>,
    /// The length of the first envelope over the limit, if any.
    too_large: Option<usize>,
    /// The bytes after the last whole envelope.
    trailing: usize,
    /// The framing check's verdict: the code of the first fault.
    frames: Result<(), Code>,
    /// The compressed flag of each prefix it takes, up to the first fault.
    recorded: Vec<bool>,
}

impl Framing {
    fn read(body: &[u8], limit: usize, compressed_ok: bool) -> Self {
        let mut read = Self { whole: Vec::new(), too_large: None, trailing: 0, frames: Ok(()), recorded: Vec::new() };
        let mut at = 0;
        let mut faulted = false;
        while let Some(prefix) = body.get(at..at + PREFIX_LEN) {
            let flags = prefix[0];
            let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
            let fault = match flags {
                0 => None,
                1 if compressed_ok => None,
                _ => Some(Code::InvalidArgument),
            };
            let fault = fault.or((len > limit).then_some(Code::ResourceExhausted));
            match (faulted, fault) {
                (false, Some(code)) => {
                    read.frames = Err(code);
                    faulted = true;
                }
                (false, None) => read.recorded.push(flags == 1),
                (true, _) => {}
            }
            if len > limit {
                read.too_large.get_or_insert(len);
                return read;
            }
            let Some(message) = body.get(at + PREFIX_LEN..at + PREFIX_LEN + len) else { break };
            read.whole.push((flags, Bytes::copy_from_slice(message)));
            at += PREFIX_LEN + len;
        }
        read.trailing = body.len() - at;
        if read.trailing > 0 && !faulted {
            read.frames = Err(Code::InvalidArgument);
        }
        read
    }
}

/// What [`RequestFrames`] passes on of a body of `chunks`, and how it ends.
fn frames_of(
    chunks: &[&[u8]],
    limit: usize,
    compressed_ok: bool,
    received: &ReceivedCompression,
) -> (Vec<u8>, Result<(), Code>) {
    let mut checked = RequestFrames::new(body_of(chunks), limit, compressed_ok, None).recording(Some(received.clone()));
    let mut cx = Context::from_waker(Waker::noop());
    let mut passed = Vec::new();
    let end = loop {
        match Pin::new(&mut checked).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                passed.extend_from_slice(frame.data_ref().map_or(&[][..], |data| &data[..]))
            }
            Poll::Ready(Some(Err(status))) => break Err(status.code()),
            Poll::Ready(None) => break Ok(()),
            Poll::Pending => panic!("a body in memory is never pending"),
        }
    };
    let after = Pin::new(&mut checked).poll_frame(&mut cx);
    assert!(matches!(after, Poll::Ready(None)), "nothing after the end");
    (passed, end)
}

/// A request body arriving in `chunks`, each ready at once.
pub(super) fn body_of(chunks: &[&[u8]]) -> Body {
    let frames: Vec<_> =
        chunks.iter().map(|chunk| Ok::<_, Status>(Frame::data(Bytes::copy_from_slice(chunk)))).collect();
    Body::new(StreamBody::new(futures_util::stream::iter(frames)))
}

/// A message compressed by a peer, inflated within a limit or refused; the
/// server's own compression inflating back to what it was; and the
/// encoding chosen from an accept list being one the list names.
pub fn compression(data: &[u8]) {
    let mut input = Input::new(data);
    let encoding = input.pick(&ENCODINGS);
    let limit = input.pick(&[0, 1, 100, 4096, 1 << 20]);
    let accept = String::from_utf8_lossy(input.short()).into_owned();
    let payload = input.rest();
    match encoding.inflate(payload, limit) {
        Ok(inflated) => assert!(inflated.len() <= limit, "{encoding:?} inflated past {limit}"),
        Err(status) => {
            let code = status.code();
            assert!(matches!(code, Code::InvalidArgument | Code::ResourceExhausted), "{encoding:?}: {status:?}");
        }
    }
    let packed = encoding.compress(payload);
    let inflated = encoding.inflate(&packed, payload.len());
    assert_eq!(inflated.as_deref().ok(), Some(payload), "{encoding:?} round trip: {inflated:?}");
    if let Some(less) = payload.len().checked_sub(1) {
        let over = encoding.inflate(&packed, less).map(drop).map_err(|status| status.code());
        assert_eq!(over, Err(Code::ResourceExhausted), "{encoding:?}: one byte over the limit");
    }
    if let Some(chosen) = Encoding::choose(&accept) {
        assert!(accept.contains(chosen.name()), "{chosen:?} chosen from {accept:?}");
    }
}
