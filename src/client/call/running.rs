//! The attempts of one call while they run: each with its subchannel,
//! transport, start and span, and the future that ends first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::time::Instant;

use crate::client::channel::Subchannel;
use crate::traces::AttemptSpan;

/// What an attempt answers with: a tonic response, whose metadata (with a
/// unary answer's trailers, which tonic merges in) may carry the server's
/// load report.
pub(in crate::client) trait Answer {
    /// Its metadata.
    fn metadata(&self) -> &tonic::metadata::MetadataMap;
}

impl<M> Answer for tonic::Response<M> {
    fn metadata(&self) -> &tonic::metadata::MetadataMap {
        tonic::Response::metadata(self)
    }
}

/// One attempt, while it runs.
pub(super) struct Attempt {
    /// 1 for the first; hedges and retries count on.
    pub(super) number: u32,
    pub(super) sub: Arc<Subchannel>,
    /// The subchannel's transport it went on.
    pub(super) transport: u64,
    pub(super) started: Instant,
    /// Its span, when tracing is on: ended when the attempt is dropped.
    pub(super) span: Option<AttemptSpan>,
}

/// The first of `running` to end, and how.
pub(super) fn first<Fut: Future>(
    running: &mut Vec<(Attempt, Pin<Box<Fut>>)>,
) -> impl Future<Output = (Attempt, Fut::Output)> + '_ {
    std::future::poll_fn(move |cx| {
        for i in 0..running.len() {
            if let Poll::Ready(ended) = running[i].1.as_mut().poll(cx) {
                let (attempt, _) = running.swap_remove(i);
                return Poll::Ready((attempt, ended));
            }
        }
        Poll::Pending
    })
}
