//! The interop cases over tonic's generated client: unary and streaming
//! calls, cancellation, deadlines, metadata and status messages.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

use super::payloads::{
    ANSWER_SIZES, REQUEST_SIZE, RESPONSE_SIZE, STREAM_SIZES, check_payload, expect_code, large_request, parameters,
    zeros,
};
use crate::interop::client::{Failed, deadline_named};
use crate::interop::echo::{ECHO_INITIAL, ECHO_TRAILING};
use crate::pb::testing::test_service_client::TestServiceClient;
use crate::pb::testing::{
    EchoStatus, Empty, SimpleRequest, StreamingInputCallRequest, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// The generated client on a channel.
pub(super) type Test = TestServiceClient<Channel>;

/// The special status message: whitespace, a BMP and a non-BMP character.
const SPECIAL_MESSAGE: &str = "\t\ntest with whitespace\r\nand Unicode BMP \u{263a} and non-BMP \u{1f608}\t\n";

pub(super) async fn large_unary(client: &mut Test) -> Result<(), Failed> {
    let answer = client.unary_call(large_request()).await?.into_inner();
    check_payload(answer.payload.as_ref(), RESPONSE_SIZE as usize)
}

pub(super) async fn client_streaming(client: &mut Test) -> Result<(), Failed> {
    let requests = STREAM_SIZES
        .map(|size| StreamingInputCallRequest { payload: zeros(size), ..StreamingInputCallRequest::default() });
    let answer = client.streaming_input_call(tokio_stream::iter(requests)).await?.into_inner();
    if answer.aggregated_payload_size != 74_922 {
        return Err(Failed::expected("an aggregated size of 74922", answer.aggregated_payload_size));
    }
    Ok(())
}

/// Reads every answer of a stream, checking each payload's size in order.
async fn read_sizes(mut answers: Streaming<StreamingOutputCallResponse>, sizes: &[i32]) -> Result<(), Failed> {
    let mut seen = 0;
    while let Some(answer) = answers.message().await? {
        let Some(&size) = sizes.get(seen) else {
            return Err(Failed::expected(format!("{} answers", sizes.len()), seen + 1));
        };
        check_payload(answer.payload.as_ref(), size as usize)?;
        seen += 1;
    }
    if seen != sizes.len() {
        return Err(Failed::expected(format!("{} answers", sizes.len()), seen));
    }
    Ok(())
}

pub(super) async fn server_streaming(client: &mut Test) -> Result<(), Failed> {
    let request = StreamingOutputCallRequest {
        response_parameters: ANSWER_SIZES.map(parameters).to_vec(),
        ..StreamingOutputCallRequest::default()
    };
    let answers = client.streaming_output_call(request).await?.into_inner();
    read_sizes(answers, &ANSWER_SIZES).await
}

/// A request stream the case writes into as it goes.
pub(super) fn requests<T: Send + 'static>() -> (mpsc::Sender<T>, impl Stream<Item = T> + Send + 'static) {
    let (send, receive) = mpsc::channel(4);
    (send, ReceiverStream::new(receive))
}

pub(super) async fn ping_pong(client: &mut Test) -> Result<(), Failed> {
    let (send, stream) = requests();
    let request = |(size, answer_size): (usize, i32)| StreamingOutputCallRequest {
        response_parameters: vec![parameters(answer_size)],
        payload: zeros(size),
        ..StreamingOutputCallRequest::default()
    };
    let mut pairs = STREAM_SIZES.into_iter().zip(ANSWER_SIZES);
    let closed = || Failed("the call ended while the client still sent".into());
    // The first request goes before the call is awaited: a server may send
    // its headers only with its first answer (grpcio does).
    let first = pairs.next().ok_or_else(closed)?;
    send.send(request(first)).await.map_err(|_| closed())?;
    let mut answers = client.full_duplex_call(stream).await?.into_inner();
    for (i, pair) in std::iter::once(first).chain(pairs).enumerate() {
        if i > 0 {
            send.send(request(pair)).await.map_err(|_| closed())?;
        }
        let answer = answers.message().await?.ok_or_else(|| Failed("the answers ended early".into()))?;
        check_payload(answer.payload.as_ref(), pair.1 as usize)?;
    }
    drop(send);
    match answers.message().await? {
        None => Ok(()),
        Some(_) => Err(Failed("an answer more than the four asked for".into())),
    }
}

pub(super) async fn empty_stream(client: &mut Test) -> Result<(), Failed> {
    let answers = client.full_duplex_call(tokio_stream::empty()).await?.into_inner();
    read_sizes(answers, &[]).await
}

/// How long a call runs before the cancel_after_begin case cancels it: its
/// headers are out by then, on any connection the cases run on.
const BEGUN: Duration = Duration::from_millis(200);

pub(super) async fn cancel_after_begin(client: &mut Test) -> Result<(), Failed> {
    // A request stream that never sends: the call begins and waits.
    let (send, stream) = requests::<StreamingInputCallRequest>();
    let call = client.streaming_input_call(stream);
    // Cancelling is dropping the call: tonic resets the stream (CANCEL).
    if let Ok(ended) = tokio::time::timeout(BEGUN, call).await {
        return Err(Failed::expected("the call to be still running when cancelled", ended.map(drop)));
    }
    drop(send);
    after_cancel(client).await
}

/// A call after a cancelled one, on the same connection: it still serves,
/// and the reset went out before it (a process that ends at once could
/// otherwise close the connection first).
async fn after_cancel(client: &mut Test) -> Result<(), Failed> {
    client.empty_call(Empty {}).await.map(drop).map_err(|status| Failed(format!("after the cancel: {status}")))
}

pub(super) async fn cancel_after_first_response(client: &mut Test) -> Result<(), Failed> {
    let (send, stream) = requests();
    let request = StreamingOutputCallRequest {
        response_parameters: vec![parameters(31_415)],
        payload: zeros(27_182),
        ..StreamingOutputCallRequest::default()
    };
    // Sent before the call is awaited, as in ping_pong.
    send.send(request).await.map_err(|_| Failed("the call ended before its first request".into()))?;
    let mut answers = client.full_duplex_call(stream).await?.into_inner();
    let answer = answers.message().await?.ok_or_else(|| Failed("no first answer".into()))?;
    check_payload(answer.payload.as_ref(), 31_415)?;
    // Dropping both halves resets the stream (CANCEL): the call is cancelled.
    drop(answers);
    drop(send);
    after_cancel(client).await
}

pub(super) async fn timeout_on_sleeping_server(client: &mut Test) -> Result<(), Failed> {
    let (send, stream) = requests();
    let timeout = Duration::from_millis(1);
    let request = StreamingOutputCallRequest { payload: zeros(27_182), ..StreamingOutputCallRequest::default() };
    // Sent before the call starts: the server has it and waits for more.
    send.send(request).await.map_err(|_| Failed("the request stream closed".into()))?;
    let mut call = Request::new(stream);
    call.set_timeout(timeout);
    let ended = async {
        let mut answers = client.full_duplex_call(call).await?.into_inner();
        while answers.message().await?.is_some() {}
        Ok::<_, Status>(())
    };
    // The server's deadline, tonic's timer (on the headers only), or ours
    // on the whole call, whichever comes first: each is the deadline.
    let result = match tokio::time::timeout(timeout * 1000, ended).await {
        Ok(result) => result.map_err(deadline_named),
        Err(_) => Err(Status::deadline_exceeded("the client's own deadline passed")),
    };
    drop(send);
    expect_code(result, Code::DeadlineExceeded)
}

/// The metadata the custom_metadata case sends and wants back.
fn with_echo<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(ECHO_INITIAL, MetadataValue::from_static("test_initial_metadata_value"));
    metadata.insert_bin(ECHO_TRAILING, MetadataValue::from_bytes(&[0xab, 0xab, 0xab]));
    request
}

fn check_echo(headers: &MetadataMap, trailers: Option<&MetadataMap>) -> Result<(), Failed> {
    let initial = headers.get(ECHO_INITIAL).and_then(|v| v.to_str().ok());
    if initial != Some("test_initial_metadata_value") {
        return Err(Failed::expected("x-grpc-test-echo-initial in the headers", initial));
    }
    let trailing = trailers.and_then(|t| t.get_bin(ECHO_TRAILING)).and_then(|v| v.to_bytes().ok());
    if trailing.as_deref() != Some(&[0xab, 0xab, 0xab][..]) {
        return Err(Failed::expected("x-grpc-test-echo-trailing-bin 0xababab in the trailers", trailing));
    }
    Ok(())
}

pub(super) async fn custom_metadata(client: &mut Test) -> Result<(), Failed> {
    // Unary: tonic hands the trailers of a successful unary call over with
    // its headers, merged in one map.
    let answer = client.unary_call(with_echo(large_request())).await?;
    check_echo(answer.metadata(), Some(answer.metadata()))?;
    check_payload(answer.get_ref().payload.as_ref(), RESPONSE_SIZE as usize)?;

    let request = StreamingOutputCallRequest {
        response_parameters: vec![parameters(RESPONSE_SIZE)],
        payload: zeros(REQUEST_SIZE),
        ..StreamingOutputCallRequest::default()
    };
    let answer = client.full_duplex_call(with_echo(tokio_stream::iter([request]))).await?;
    let headers = answer.metadata().clone();
    let mut answers = answer.into_inner();
    let mut sizes = Vec::new();
    while let Some(answer) = answers.message().await? {
        sizes.push(answer.payload.map_or(0, |p| p.body.len()));
    }
    if sizes != [RESPONSE_SIZE as usize] {
        return Err(Failed::expected("one answer of 314159 bytes", sizes));
    }
    check_echo(&headers, answers.trailers().await?.as_ref())
}

fn echo(message: &str) -> Option<EchoStatus> {
    Some(EchoStatus { code: Code::Unknown as i32, message: message.to_owned() })
}

fn expect_status<T>(result: Result<T, Status>, message: &str) -> Result<(), Failed> {
    match result {
        Err(status) if status.code() == Code::Unknown && status.message() == message => Ok(()),
        Err(status) => Err(Failed::expected(format!("UNKNOWN {message:?}"), status)),
        Ok(_) => Err(Failed::expected(format!("UNKNOWN {message:?}"), "OK")),
    }
}

pub(super) async fn status_code_and_message(client: &mut Test, message: &str) -> Result<(), Failed> {
    let unary = client.unary_call(SimpleRequest { response_status: echo(message), ..SimpleRequest::default() }).await;
    expect_status(unary.map(drop), message)?;
    let request =
        StreamingOutputCallRequest { response_status: echo(message), ..StreamingOutputCallRequest::default() };
    let duplex = async {
        let mut answers = client.full_duplex_call(tokio_stream::iter([request])).await?.into_inner();
        while answers.message().await?.is_some() {}
        Ok::<_, Status>(())
    };
    expect_status(duplex.await, message)
}

pub(super) async fn special_status_message(client: &mut Test) -> Result<(), Failed> {
    let request = SimpleRequest { response_status: echo(SPECIAL_MESSAGE), ..SimpleRequest::default() };
    expect_status(client.unary_call(request).await.map(drop), SPECIAL_MESSAGE)
}
