//! The interop `grpc.testing.TestService`, as gRPC's interop server
//! features describe it: payloads of the asked sizes, statuses echoed,
//! `expect_compressed` checked against each request message's compressed
//! flag, `response_compressed` (and each `ResponseParameters.compressed`)
//! honoured per answer message, waits of `interval_us`. Every stream is
//! lazy: nothing runs once the call is gone (the client cancelled, the
//! deadline passed), which the cancellation cases check.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};

use super::orca::set_to;
use crate::pb::testing::test_service_server::TestService;
use crate::pb::testing::{
    BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use crate::server::{CallLoad, Orca, ReceivedCompression, SendCompression};

/// What a response stream of this service yields.
type Answers = Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

/// The id `fill_server_id` asks for: one per process.
const SERVER_ID: &str = "search-interop";

/// The TestService. Cloning shares the count of calls running.
#[derive(Debug, Clone, Default)]
pub struct Interop {
    running: Arc<AtomicUsize>,
    /// The server's load reporter, for the ORCA cases' out-of-band figures.
    orca: Option<Orca>,
}

impl Interop {
    /// The service, setting `orca`'s figures from the requests'
    /// `orca_oob_report` (the server must report with the same reporter,
    /// [`super::orca::reporter`]).
    #[must_use]
    pub fn with_orca(orca: Orca) -> Self {
        Self { running: Arc::default(), orca: Some(orca) }
    }

    /// Calls whose handler (or response stream) is still alive: 0 once
    /// every call has ended, cancelled ones included.
    #[must_use]
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    fn live(&self) -> Live {
        self.running.fetch_add(1, Ordering::Relaxed);
        Live(Arc::clone(&self.running))
    }
}

/// One call counted as running until dropped.
#[derive(Debug)]
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `size` bytes of zeros, of the asked type (only COMPRESSABLE exists).
fn payload(response_type: i32, size: i32) -> Result<Payload, Status> {
    let kind = PayloadType::try_from(response_type)
        .map_err(|_| Status::invalid_argument(format!("unknown response_type {response_type}")))?;
    let size = usize::try_from(size).map_err(|_| Status::invalid_argument(format!("negative size {size}")))?;
    Ok(Payload { r#type: kind as i32, body: vec![0; size] })
}

/// The status the request asks to end with, if any (code 0 asks for none).
fn echo_status(status: Option<&EchoStatus>) -> Result<(), Status> {
    match status {
        Some(status) if status.code != 0 => Err(Status::new(Code::from_i32(status.code), status.message.clone())),
        _ => Ok(()),
    }
}

/// Checks `expect_compressed` against how the message arrived: read for
/// every message, whether or not it expects anything, so that each message
/// gets its own flag. Without a record, no message could be compressed.
fn check_compressed(expect: Option<&BoolValue>, received: Option<&ReceivedCompression>) -> Result<(), Status> {
    let compressed = received.and_then(ReceivedCompression::next).unwrap_or(false);
    match expect {
        Some(expect) if expect.value != compressed => Err(Status::invalid_argument(if expect.value {
            "expected a compressed request message; this one arrived uncompressed"
        } else {
            "expected an uncompressed request message; this one arrived compressed"
        })),
        _ => Ok(()),
    }
}

/// One response as `parameters` describe it, after its wait; its
/// compression is chosen in `send`.
async fn respond(
    parameters: ResponseParameters,
    response_type: i32,
    send: &SendCompression,
) -> Result<StreamingOutputCallResponse, Status> {
    if parameters.interval_us > 0 {
        tokio::time::sleep(Duration::from_micros(u64::from(parameters.interval_us.unsigned_abs()))).await;
    }
    let payload = payload(response_type, parameters.size)?;
    send.next(parameters.compressed.map(|compressed| compressed.value));
    Ok(StreamingOutputCallResponse { payload: Some(payload) })
}

/// A streaming response whose messages' compression `send` chooses.
fn streamed(answers: Answers, send: SendCompression) -> Response<Answers> {
    let mut response = Response::new(answers);
    response.extensions_mut().insert(send);
    response
}

/// Where a duplex call is: answering a request's parameters, or reading.
struct Duplex {
    requests: Streaming<StreamingOutputCallRequest>,
    /// The parameters not yet answered, and their payload type.
    pending: std::collections::VecDeque<(ResponseParameters, i32)>,
    /// HalfDuplexCall reads every request before the first answer.
    read_all_first: bool,
    send: SendCompression,
    done: bool,
    orca: Option<Orca>,
    _live: Live,
}

impl Duplex {
    /// The next answer, or the call's end.
    async fn next(mut self) -> Option<(Result<StreamingOutputCallResponse, Status>, Self)> {
        loop {
            if self.done {
                return None;
            }
            let reading = self.pending.is_empty() || self.read_all_first;
            if !reading {
                let (parameters, response_type) = self.pending.pop_front()?;
                let answer = respond(parameters, response_type, &self.send).await;
                self.done = answer.is_err();
                return Some((answer, self));
            }
            match self.requests.next().await {
                Some(Ok(request)) => {
                    if let Err(status) = echo_status(request.response_status.as_ref()) {
                        self.done = true;
                        return Some((Err(status), self));
                    }
                    if let (Some(orca), Some(test)) = (&self.orca, &request.orca_oob_report) {
                        orca.update(set_to(test));
                    }
                    let response_type = request.response_type;
                    self.pending.extend(request.response_parameters.into_iter().map(|p| (p, response_type)));
                }
                Some(Err(status)) => {
                    self.done = true;
                    return Some((Err(status), self));
                }
                None if self.read_all_first => self.read_all_first = false,
                None => {
                    if self.pending.is_empty() {
                        return None;
                    }
                }
            }
        }
    }
}

impl Interop {
    fn duplex(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
        read_all_first: bool,
    ) -> Response<Answers> {
        let send = SendCompression::new();
        let duplex = Duplex {
            requests: request.into_inner(),
            pending: std::collections::VecDeque::new(),
            read_all_first,
            send: send.clone(),
            done: false,
            orca: self.orca.clone(),
            _live: self.live(),
        };
        streamed(Box::pin(stream::unfold(duplex, Duplex::next)), send)
    }

    fn unary(&self, request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        let _live = self.live();
        let received = request.extensions().get::<ReceivedCompression>().cloned();
        let load = CallLoad::of(request.extensions()).cloned();
        let request = request.into_inner();
        check_compressed(request.expect_compressed.as_ref(), received.as_ref())?;
        echo_status(request.response_status.as_ref())?;
        if let (Some(load), Some(test)) = (load, &request.orca_per_query_report) {
            load.update(set_to(test));
        }
        let payload = payload(request.response_type, request.response_size)?;
        let server_id = if request.fill_server_id { SERVER_ID.to_owned() } else { String::new() };
        let mut response = Response::new(SimpleResponse { payload: Some(payload), server_id, ..Default::default() });
        if let Some(compressed) = request.response_compressed {
            let send = SendCompression::new();
            send.next(Some(compressed.value));
            response.extensions_mut().insert(send);
        }
        Ok(response)
    }
}

#[tonic::async_trait]
impl TestService for Interop {
    async fn empty_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(&self, request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        self.unary(request)
    }

    async fn cacheable_unary_call(&self, request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        self.unary(request)
    }

    type StreamingOutputCallStream = Answers;

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Answers>, Status> {
        let request = request.into_inner();
        echo_status(request.response_status.as_ref())?;
        let send = SendCompression::new();
        let (response_type, live, chooser) = (request.response_type, self.live(), send.clone());
        let answers = stream::iter(request.response_parameters)
            .then(move |parameters| {
                let chooser = chooser.clone();
                async move { respond(parameters, response_type, &chooser).await }
            })
            // The stream holds the count for as long as it lives.
            .map(move |answer| {
                let _ = &live;
                answer
            });
        Ok(streamed(Box::pin(answers), send))
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let _live = self.live();
        let received = request.extensions().get::<ReceivedCompression>().cloned();
        let mut requests = request.into_inner();
        let mut aggregated: usize = 0;
        while let Some(request) = requests.next().await {
            let request = request?;
            check_compressed(request.expect_compressed.as_ref(), received.as_ref())?;
            aggregated += request.payload.map_or(0, |payload| payload.body.len());
        }
        let aggregated_payload_size = i32::try_from(aggregated)
            .map_err(|_| Status::invalid_argument("the payloads add up to more than an int32 holds"))?;
        Ok(Response::new(StreamingInputCallResponse { aggregated_payload_size }))
    }

    type FullDuplexCallStream = Answers;

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Answers>, Status> {
        Ok(self.duplex(request, false))
    }

    type HalfDuplexCallStream = Answers;

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Answers>, Status> {
        Ok(self.duplex(request, true))
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented("grpc.testing.TestService/UnimplementedCall is never implemented"))
    }
}
