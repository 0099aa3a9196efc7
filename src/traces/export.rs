//! Spans leave the process here: a bounded queue, a thread of its own that
//! sends them in batches through the OTLP exporter, and the count of spans
//! dropped on the way (queue full, export failed or timed out).
//!
//! The SDK's `BatchSpanProcessor` does the same but keeps its drops to its
//! own log, and the server's metrics need the count: hence this small one.
//! The HTTP/protobuf exporter sends through [`HyperClient`], hyper-util's
//! client that tonic already links, rather than reqwest's, which would bring
//! a second HTTP stack.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::Context;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter as _, SpanProcessor};
use tokio::runtime::Handle;

/// Spans waiting to be sent; more are dropped (and counted).
pub const QUEUE: usize = 2048;
/// The most spans in one export.
const BATCH: usize = 512;
/// How long a span waits for its batch to fill.
const LINGER: Duration = Duration::from_secs(1);
/// How long one export may take before its spans count as dropped.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Spans dropped since the process started: the server's
/// `otel_spans_dropped_total`, the client's report at exit.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Spans queued or being sent.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Set when a shutdown gave up waiting: the spans still pending were
/// counted as dropped then, so what becomes of them is not counted again.
static ABANDONED: AtomicBool = AtomicBool::new(false);

enum Message {
    Span(Box<SpanData>),
    /// Send what is queued, then answer.
    Flush(SyncSender<()>),
}

/// The span processor: ended spans go into the queue without blocking.
#[derive(Debug)]
pub struct Batcher {
    queue: Mutex<Option<SyncSender<Message>>>,
}

impl Batcher {
    /// Starts the sending thread, which runs `exporter`'s futures on `runtime`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(exporter: SpanExporter, runtime: Handle) -> std::io::Result<Self> {
        let (queue, spans) = sync_channel(QUEUE);
        std::thread::Builder::new().name("otlp-export".into()).spawn(move || send(&spans, &exporter, &runtime))?;
        Ok(Self { queue: Mutex::new(Some(queue)) })
    }

    fn sender(&self) -> Option<SyncSender<Message>> {
        self.queue.lock().ok()?.clone()
    }

    /// Sends what is queued, waiting at most `timeout`.
    fn flush_within(&self, timeout: Duration) -> OTelSdkResult {
        let sender = self.sender().ok_or(OTelSdkError::AlreadyShutdown)?;
        let (done, wait) = sync_channel(1);
        let deadline = Instant::now() + timeout;
        let mut message = Message::Flush(done);
        // The queue may be full: retry until the thread makes room.
        loop {
            match sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return Err(OTelSdkError::Timeout(timeout)),
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

impl SpanProcessor for Batcher {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let queued = self.queue.lock().ok().and_then(|queue| {
            let queue = queue.as_ref()?;
            Some(queue.try_send(Message::Span(Box::new(span))).is_ok())
        });
        if queued == Some(true) {
            PENDING.fetch_add(1, Ordering::Relaxed);
        } else {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush_within(EXPORT_TIMEOUT)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let flushed = self.flush_within(timeout);
        if flushed.is_err() && !ABANDONED.swap(true, Ordering::Relaxed) {
            // The process is about to end: what is still pending is lost.
            DROPPED.fetch_add(PENDING.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
        // The thread ends once the queue's last sender is gone.
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        flushed
    }
}

/// The sending thread: gathers spans into batches of up to [`BATCH`],
/// sends one when full, after [`LINGER`], or on a flush.
fn send(spans: &Receiver<Message>, exporter: &SpanExporter, runtime: &Handle) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut since: Option<Instant> = None;
    loop {
        let wait = since.map_or(LINGER, |since| LINGER.saturating_sub(since.elapsed()));
        let (flush, closed) = match spans.recv_timeout(wait) {
            Ok(Message::Span(span)) => {
                batch.push(*span);
                since.get_or_insert_with(Instant::now);
                (None, false)
            }
            Ok(Message::Flush(done)) => (Some(done), false),
            Err(RecvTimeoutError::Timeout) => (None, false),
            Err(RecvTimeoutError::Disconnected) => (None, true),
        };
        let due = since.is_some_and(|since| since.elapsed() >= LINGER);
        if !batch.is_empty() && (batch.len() >= BATCH || due || flush.is_some() || closed) {
            export(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)), exporter, runtime);
            since = None;
        }
        if let Some(done) = flush {
            let _ = done.try_send(());
        }
        if closed {
            return;
        }
    }
}

/// Sends one batch; its spans count as dropped when it fails or times out.
fn export(batch: Vec<SpanData>, exporter: &SpanExporter, runtime: &Handle) {
    let spans = batch.len() as u64;
    // The timer, too, belongs to the runtime: made inside it.
    let sent = runtime.block_on(async { tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await });
    if ABANDONED.load(Ordering::Relaxed) {
        return;
    }
    PENDING.fetch_sub(spans, Ordering::Relaxed);
    if !matches!(sent, Ok(Ok(()))) {
        DROPPED.fetch_add(spans, Ordering::Relaxed);
    }
}

/// The largest answer read from a collector.
const MAX_ANSWER: usize = 1 << 20;

/// An [`HttpClient`] for the OTLP HTTP exporter on hyper-util's client
/// (plain HTTP/1.1), its requests run on the process's runtime.
#[derive(Debug, Clone)]
pub struct HyperClient {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: Handle,
}

impl HyperClient {
    /// A client whose connections live on `runtime`.
    #[must_use]
    pub fn new(runtime: Handle) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { client, runtime }
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = request.map(Full::new);
        let answer = self.runtime.spawn(async move {
            tokio::time::timeout(EXPORT_TIMEOUT, async move {
                let response = client.request(request).await?;
                let (head, body) = response.into_parts();
                let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
                Ok::<_, HttpError>(Response::from_parts(head, body))
            })
            .await
        });
        answer.await?.map_err(|_| -> HttpError { "the collector did not answer in time".into() })?
    }
}

impl HttpClient for HyperClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(self.send(request))
    }
}
