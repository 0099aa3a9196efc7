//! The retry buffer of a streaming call (gRFC A6, "transparent retries"):
//! the request messages sent so far are kept, so that a call the server
//! never took (refused unprocessed, past a GOAWAY's last stream, or never
//! sent) can be sent again with all of them. Until the server answers, the
//! call is not committed; the buffer is bounded per call and per channel,
//! as grpc bounds it (256 KiB and 16 MiB by default), and a call whose
//! messages would outgrow it is committed at once: it is not sent again.
//!
//! Each attempt reads the messages through a [`Replayed`] stream: first the
//! kept ones, then the caller's own stream, keeping what it reads while the
//! call is not committed. Attempts of one call never run at once; an older
//! attempt's stream, should its transport poll it again, ends at once.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio_stream::Stream;

/// How much a retry buffer may hold (grpc's `grpc.per_rpc_retry_buffer_size`
/// and `grpc.retry_buffer_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBuffer {
    /// Bytes of request messages one call may keep.
    pub per_call: usize,
    /// Bytes all the calls of one client may keep together.
    pub per_channel: usize,
}

impl Default for RetryBuffer {
    /// grpc's defaults: 256 KiB a call, 16 MiB a channel.
    fn default() -> Self {
        Self { per_call: 256 << 10, per_channel: 16 << 20 }
    }
}

/// The bytes every call of a client keeps, shared by the client's clones.
pub(super) type ChannelBytes = Arc<AtomicUsize>;

/// A streaming call's messages, for its attempts.
pub(in crate::client) struct Replay<S: Stream> {
    shared: Arc<Mutex<Shared<S>>>,
}

struct Shared<S: Stream> {
    source: Pin<Box<S>>,
    kept: Vec<S::Item>,
    bytes: usize,
    committed: bool,
    /// The attempt allowed to read.
    attempt: u64,
    limits: RetryBuffer,
    channel: ChannelBytes,
}

impl<S: Stream> Shared<S> {
    /// No more attempts: what is kept is given back.
    fn commit(&mut self) {
        self.committed = true;
        self.kept = Vec::new();
        self.channel.fetch_sub(std::mem::take(&mut self.bytes), Ordering::AcqRel);
    }
}

impl<S: Stream> Drop for Shared<S> {
    fn drop(&mut self) {
        self.channel.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl<S> Replay<S>
where
    S: Stream,
    S::Item: prost::Message + Clone,
{
    /// The buffer of a call sending `source`.
    pub(super) fn new(source: S, limits: RetryBuffer, channel: ChannelBytes) -> Self {
        let shared = Shared {
            source: Box::pin(source),
            kept: Vec::new(),
            bytes: 0,
            committed: false,
            attempt: 0,
            limits,
            channel,
        };
        Self { shared: Arc::new(Mutex::new(shared)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared<S>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The messages for the next attempt, from the first; `None` once the
    /// call is committed (it cannot be sent again whole).
    pub(in crate::client) fn attempt(&self) -> Option<Replayed<S>> {
        let mut shared = self.lock();
        if shared.committed {
            return None;
        }
        shared.attempt += 1;
        Some(Replayed { shared: Arc::clone(&self.shared), attempt: shared.attempt, next: 0 })
    }

    /// The server took the call: nothing more is kept.
    pub(in crate::client) fn commit(&self) {
        self.lock().commit();
    }

    /// Whether the call is committed.
    #[cfg(test)]
    fn committed(&self) -> bool {
        self.lock().committed
    }
}

/// One attempt's request messages.
pub(in crate::client) struct Replayed<S: Stream> {
    shared: Arc<Mutex<Shared<S>>>,
    attempt: u64,
    /// The next kept message to send again.
    next: usize,
}

impl<S> Stream for Replayed<S>
where
    S: Stream,
    S::Item: prost::Message + Clone,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        let mut shared = this.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.attempt != this.attempt {
            // A later attempt reads now.
            return Poll::Ready(None);
        }
        if let Some(kept) = shared.kept.get(this.next) {
            this.next += 1;
            return Poll::Ready(Some(kept.clone()));
        }
        let item = match shared.source.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => item,
            other => return other,
        };
        if !shared.committed {
            let size = prost::Message::encoded_len(&item);
            let reserved = shared.bytes + size <= shared.limits.per_call && {
                let before = shared.channel.fetch_add(size, Ordering::AcqRel);
                before + size <= shared.limits.per_channel || {
                    shared.channel.fetch_sub(size, Ordering::AcqRel);
                    false
                }
            };
            if reserved {
                shared.bytes += size;
                shared.kept.push(item.clone());
                this.next += 1;
            } else {
                shared.commit();
            }
        }
        Poll::Ready(Some(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::v1::CountRequest;

    fn message(text: &str) -> CountRequest {
        CountRequest { queries: vec![text.to_owned()] }
    }

    async fn all<S: Stream + Unpin>(stream: S) -> Vec<S::Item> {
        tokio_stream::StreamExt::collect(stream).await
    }

    #[tokio::test]
    async fn a_second_attempt_sends_every_message_again_then_the_rest() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let channel = ChannelBytes::default();
        let replay = Replay::new(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
            RetryBuffer::default(),
            Arc::clone(&channel),
        );
        let mut first = replay.attempt().expect("a first attempt");
        for text in ["a", "b"] {
            tx.send(message(text)).expect("open");
        }
        let read = tokio_stream::StreamExt::next(&mut first).await;
        assert_eq!(read, Some(message("a")));
        assert_eq!(tokio_stream::StreamExt::next(&mut first).await, Some(message("b")));
        assert!(channel.load(Ordering::Acquire) > 0, "kept messages count against the channel");
        // Refused: the next attempt sends both again, then what comes next.
        let second = replay.attempt().expect("not committed");
        tx.send(message("c")).expect("open");
        drop(tx);
        assert_eq!(all(second).await, [message("a"), message("b"), message("c")]);
        assert_eq!(tokio_stream::StreamExt::next(&mut first).await, None, "the old attempt reads no more");
        replay.commit();
        assert_eq!(channel.load(Ordering::Acquire), 0, "a commit gives the bytes back");
        assert!(replay.attempt().is_none(), "a committed call is not sent again");
    }

    #[tokio::test]
    async fn a_call_that_outgrows_its_buffer_is_committed() {
        let channel = ChannelBytes::default();
        let limits = RetryBuffer { per_call: 10, per_channel: 1 << 20 };
        let messages = vec![message("12345"), message("67890")];
        let replay = Replay::new(tokio_stream::iter(messages.clone()), limits, Arc::clone(&channel));
        let first = replay.attempt().expect("a first attempt");
        assert_eq!(all(first).await, messages, "the caller's messages all go out");
        assert!(replay.committed(), "14 bytes do not fit in 10");
        assert!(replay.attempt().is_none());
        assert_eq!(channel.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn the_channel_limit_is_shared_by_the_calls() {
        let channel = ChannelBytes::default();
        let limits = RetryBuffer { per_call: 1 << 20, per_channel: 12 };
        let one = Replay::new(tokio_stream::iter(vec![message("1234567")]), limits, Arc::clone(&channel));
        let two = Replay::new(tokio_stream::iter(vec![message("1234567")]), limits, Arc::clone(&channel));
        all(one.attempt().expect("first")).await;
        all(two.attempt().expect("first")).await;
        assert!(!one.committed(), "the first call's 9 bytes fit");
        assert!(two.committed(), "the second's do not fit beside them");
        drop(one);
        assert_eq!(channel.load(Ordering::Acquire), 0, "a call that ends gives its bytes back");
    }
}
