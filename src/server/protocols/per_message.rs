//! Compression message by message, for the handlers of added services that
//! must know or choose it (the interop cases' `expect_compressed` and
//! `response_compressed`): which request messages arrived compressed, and
//! whether each answer must be. tonic's codec hides both (it inflates
//! requests and compresses a whole call or none of it), so the server keeps
//! them beside the call: the framing check (or the Connect protocol)
//! records each request message's compressed flag as its prefix passes,
//! before tonic decodes it; the per-call layer reads the handler's choice
//! as each answer passes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// The most flags kept that the handler has not read yet: past that a long
/// stream whose handler does not read them stops being tracked (a bounded
/// cost), and the handler is told it cannot know.
const MAX_PENDING: usize = 4096;

/// Which request messages of a call arrived compressed, in order. The
/// server puts it in the request's extensions for the calls to an added
/// service that may carry compressed messages: gRPC and gRPC-Web calls that
/// name a `grpc-encoding` (without one, no message may be compressed), and
/// every Connect call (a unary body counts as one message). A handler reads
/// it with `request.extensions().get::<ReceivedCompression>()`; without
/// it, no message arrived compressed.
#[derive(Debug, Clone, Default)]
pub struct ReceivedCompression(Arc<Mutex<Received>>);

#[derive(Debug, Default)]
struct Received {
    pending: VecDeque<bool>,
    /// Too many flags were left unread: no more are kept.
    overflowed: bool,
}

impl ReceivedCompression {
    /// Whether the next request message the handler reads arrived
    /// compressed; `None` when the server no longer keeps track (a handler
    /// that left thousands unread) or has no message left to tell of.
    #[must_use]
    pub fn next(&self) -> Option<bool> {
        let mut received = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if received.overflowed { None } else { received.pending.pop_front() }
    }

    /// Records that the next message arrived compressed or not.
    pub(in crate::server) fn record(&self, compressed: bool) {
        let mut received = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if received.pending.len() >= MAX_PENDING {
            received.overflowed = true;
            received.pending.clear();
        }
        if !received.overflowed {
            received.pending.push_back(compressed);
        }
    }
}

/// Whether each answer message of a call must be compressed, in order: a
/// handler that chooses puts one in its response's extensions and, before
/// sending each message, says what it wants for it ([`SendCompression::next`]),
/// for every message. The per-call layer follows the choice when the
/// client takes one of the server's encodings (without one, nothing can be
/// compressed); a message left to the server is compressed when 1 KiB or
/// larger, as everywhere.
#[derive(Debug, Clone, Default)]
pub struct SendCompression(Arc<Mutex<VecDeque<Option<bool>>>>);

impl SendCompression {
    /// A choice for each answer message, none made yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The next answer message is sent compressed (`Some(true)`) or not
    /// (`Some(false)`) whatever its size, or as the server chooses (`None`).
    pub fn next(&self, compress: Option<bool>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push_back(compress);
    }

    /// The choice made for the next answer message, if any.
    pub(in crate::server) fn take(&self) -> Option<bool> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).pop_front().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_read_in_order_and_bounded() {
        let received = ReceivedCompression::default();
        received.record(true);
        received.record(false);
        assert_eq!((received.next(), received.next(), received.next()), (Some(true), Some(false), None));
        for _ in 0..=MAX_PENDING {
            received.record(true);
        }
        assert_eq!(received.next(), None, "past the bound the server stops keeping track");

        let send = SendCompression::new();
        send.next(Some(false));
        send.next(None);
        send.next(Some(true));
        assert_eq!((send.take(), send.take(), send.take(), send.take()), (Some(false), None, Some(true), None));
    }
}
