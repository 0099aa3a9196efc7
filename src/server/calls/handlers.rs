//! The `search.v1.SearchService` handlers: thin adapters from messages to
//! [`crate::matcher`], one per RPC kind.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::matcher::{self, Occurrence, Scanner};
use crate::pb::v1::search_service_server::SearchService;
use crate::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanMatch, ScanRequest, ScanResponse,
    SearchRequest, SearchResponse,
};
use crate::server::orca::CallLoad;

/// How many bytes of a Scan text are searched between two looks at whether
/// the response can be sent: small enough that a match reaches the client
/// soon after it is found, large enough that the per-message cost is noise.
const SCAN_WINDOW: usize = 64 * 1024;

/// A boxed response stream, as the generated trait asks for.
type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The Search service. Stateless: every answer comes from the request alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct Search;

impl Search {
    /// The name of the cost Classify and Count put in their calls' load
    /// reports (`request_cost`): the lines (queries) answered.
    pub const LINES_COST: &'static str = "lines";
}

#[tonic::async_trait]
impl SearchService for Search {
    async fn search(&self, request: Request<SearchRequest>) -> Result<Response<SearchResponse>, Status> {
        let status = matcher::status(&request.get_ref().query);
        Ok(Response::new(SearchResponse { status }))
    }

    type ClassifyStream = ResponseStream<ClassifyResponse>;

    async fn classify(
        &self,
        request: Request<Streaming<ClassifyRequest>>,
    ) -> Result<Response<Self::ClassifyStream>, Status> {
        let mut next_index: u64 = 0;
        let load = CallLoad::of(request.extensions()).cloned();
        // One response per request, computed as each request arrives. A
        // failed read (a corrupt message, a reset) ends the stream with it.
        let answers = request.into_inner().map(move |batch| {
            let batch = batch?;
            let first_index = next_index;
            next_index += batch.queries.len() as u64;
            record_lines(load.as_ref(), batch.queries.len());
            let statuses = batch.queries.iter().map(|q| matcher::status(q)).collect();
            Ok(ClassifyResponse { first_index, statuses })
        });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn count(&self, request: Request<Streaming<CountRequest>>) -> Result<Response<CountResponse>, Status> {
        let load = CallLoad::of(request.extensions()).cloned();
        let mut batches = request.into_inner();
        let mut summary = CountResponse::default();
        while let Some(batch) = batches.next().await {
            for query in batch?.queries {
                summary.queries += 1;
                summary.matches += u64::from(matcher::contains_banana(&query));
            }
        }
        record_lines(load.as_ref(), usize::try_from(summary.queries).unwrap_or(usize::MAX));
        Ok(Response::new(summary))
    }

    type ScanStream = ResponseStream<ScanResponse>;

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<Self::ScanStream>, Status> {
        let text = request.into_inner().text;
        Ok(Response::new(Box::pin(scan_stream(text))))
    }
}

/// The call's load report's cost: the lines (queries) it answered, added
/// per batch, when load reports are on.
fn record_lines(load: Option<&CallLoad>, lines: usize) {
    if let Some(load) = load
        && lines > 0
    {
        load.add_cost(Search::LINES_COST, lines as f64);
    }
}

/// How many windows one poll of a Scan stream may search before it yields to
/// the runtime: about a millisecond of work, so a long text without matches
/// never holds a worker thread.
const SCAN_WINDOWS_PER_POLL: usize = 16;

/// The Scan response stream. It is lazy: a window is searched only when tonic
/// asks for the next message, so when the client goes away (or the call is
/// cut) tonic drops the stream and the scan stops with it.
struct ScanStream {
    scanner: Scanner<String>,
    found: Vec<Occurrence>,
}

fn scan_stream(text: String) -> ScanStream {
    ScanStream { scanner: Scanner::new(text), found: Vec::new() }
}

impl Stream for ScanStream {
    type Item = Result<ScanResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        for _ in 0..SCAN_WINDOWS_PER_POLL {
            if this.scanner.is_done() {
                break;
            }
            this.scanner.scan_window(SCAN_WINDOW, &mut this.found);
            if !this.found.is_empty() {
                let matches = this.found.drain(..).map(scan_match).collect();
                return Poll::Ready(Some(Ok(ScanResponse { matches })));
            }
        }
        if this.scanner.is_done() {
            return Poll::Ready(None);
        }
        // Out of budget with nothing found yet: let other tasks run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn scan_match(occurrence: Occurrence) -> ScanMatch {
    ScanMatch { line: occurrence.line, column: occurrence.column, offset: occurrence.offset }
}
