//! The interop test cases, by their names in gRPC's interop test
//! descriptions, each doing what its procedure says and checking what its
//! client asserts. The compression cases call over a bare HTTP/2
//! connection (`raw.rs`); the others through tonic's generated client.

use std::time::Duration;

use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

use super::client::{Failed, Peer, deadline_named};
use super::echo::{ECHO_INITIAL, ECHO_TRAILING};
use super::raw::{Answer, Outgoing, Raw};
use crate::pb::testing::test_service_client::TestServiceClient;
use crate::pb::testing::unimplemented_service_client::UnimplementedServiceClient;
use crate::pb::testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
};

/// The cases, as gRPC names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A zero-byte request and answer.
    EmptyUnary,
    /// 271,828 bytes sent, 314,159 answered.
    LargeUnary,
    /// A request the server expects compressed: refused uncompressed, taken
    /// compressed; one expected uncompressed taken as it is.
    ClientCompressedUnary,
    /// An answer the client asks to be compressed, and one it asks not to be.
    ServerCompressedUnary,
    /// Four messages up, their sizes added up.
    ClientStreaming,
    /// A stream with a compressed message and an uncompressed one.
    ClientCompressedStreaming,
    /// Four messages down, of the sizes asked for.
    ServerStreaming,
    /// Two messages down, the first compressed, the second not.
    ServerCompressedStreaming,
    /// Four requests, each answered before the next is sent.
    PingPong,
    /// A bidirectional call with no message either way.
    EmptyStream,
    /// A client stream cancelled before its first message.
    CancelAfterBegin,
    /// A bidirectional call cancelled after its first answer.
    CancelAfterFirstResponse,
    /// A bidirectional call whose 1 ms deadline passes while the server waits.
    TimeoutOnSleepingServer,
    /// Metadata echoed in the answer's headers and (binary) trailers.
    CustomMetadata,
    /// A status code and message asked for, unary and bidirectional.
    StatusCodeAndMessage,
    /// A status message of whitespace and Unicode, sent back exactly.
    SpecialStatusMessage,
    /// A method the service declares and does not implement.
    UnimplementedMethod,
    /// A service the server does not serve.
    UnimplementedService,
}

impl Case {
    /// Every case, in the order of gRPC's descriptions.
    pub const ALL: [Self; 18] = [
        Self::EmptyUnary,
        Self::LargeUnary,
        Self::ClientCompressedUnary,
        Self::ServerCompressedUnary,
        Self::ClientStreaming,
        Self::ClientCompressedStreaming,
        Self::ServerStreaming,
        Self::ServerCompressedStreaming,
        Self::PingPong,
        Self::EmptyStream,
        Self::CancelAfterBegin,
        Self::CancelAfterFirstResponse,
        Self::TimeoutOnSleepingServer,
        Self::CustomMetadata,
        Self::StatusCodeAndMessage,
        Self::SpecialStatusMessage,
        Self::UnimplementedMethod,
        Self::UnimplementedService,
    ];

    /// The case's name (`large_unary`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::EmptyUnary => "empty_unary",
            Self::LargeUnary => "large_unary",
            Self::ClientCompressedUnary => "client_compressed_unary",
            Self::ServerCompressedUnary => "server_compressed_unary",
            Self::ClientStreaming => "client_streaming",
            Self::ClientCompressedStreaming => "client_compressed_streaming",
            Self::ServerStreaming => "server_streaming",
            Self::ServerCompressedStreaming => "server_compressed_streaming",
            Self::PingPong => "ping_pong",
            Self::EmptyStream => "empty_stream",
            Self::CancelAfterBegin => "cancel_after_begin",
            Self::CancelAfterFirstResponse => "cancel_after_first_response",
            Self::TimeoutOnSleepingServer => "timeout_on_sleeping_server",
            Self::CustomMetadata => "custom_metadata",
            Self::StatusCodeAndMessage => "status_code_and_message",
            Self::SpecialStatusMessage => "special_status_message",
            Self::UnimplementedMethod => "unimplemented_method",
            Self::UnimplementedService => "unimplemented_service",
        }
    }

    /// The case named `name`, if there is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|case| case.name() == name)
    }

    /// Runs the case against `peer`.
    ///
    /// # Errors
    /// [`Failed`], saying what the client saw that its asserts refuse.
    pub async fn run(self, peer: &Peer) -> Result<(), Failed> {
        match self {
            Self::ClientCompressedUnary => return client_compressed_unary(&mut Raw::connect(peer).await?).await,
            Self::ServerCompressedUnary => return server_compressed_unary(&mut Raw::connect(peer).await?).await,
            Self::ClientCompressedStreaming => {
                return client_compressed_streaming(&mut Raw::connect(peer).await?).await;
            }
            Self::ServerCompressedStreaming => {
                return server_compressed_streaming(&mut Raw::connect(peer).await?).await;
            }
            _ => {}
        }
        let channel = peer.channel().await?;
        let mut client = TestServiceClient::new(channel.clone()).max_decoding_message_size(usize::MAX);
        match self {
            Self::EmptyUnary => {
                client.empty_call(Empty {}).await?;
                Ok(())
            }
            Self::LargeUnary => large_unary(&mut client).await,
            Self::ClientStreaming => client_streaming(&mut client).await,
            Self::ServerStreaming => server_streaming(&mut client).await,
            Self::PingPong => ping_pong(&mut client).await,
            Self::EmptyStream => empty_stream(&mut client).await,
            Self::CancelAfterBegin => cancel_after_begin(&mut client).await,
            Self::CancelAfterFirstResponse => cancel_after_first_response(&mut client).await,
            Self::TimeoutOnSleepingServer => timeout_on_sleeping_server(&mut client).await,
            Self::CustomMetadata => custom_metadata(&mut client).await,
            Self::StatusCodeAndMessage => status_code_and_message(&mut client, "test status message").await,
            Self::SpecialStatusMessage => special_status_message(&mut client).await,
            Self::UnimplementedMethod => {
                expect_code(client.unimplemented_call(Empty {}).await.map(drop), Code::Unimplemented)
            }
            Self::UnimplementedService => {
                let mut other = UnimplementedServiceClient::new(channel);
                expect_code(other.unimplemented_call(Empty {}).await.map(drop), Code::Unimplemented)
            }
            Self::ClientCompressedUnary
            | Self::ServerCompressedUnary
            | Self::ClientCompressedStreaming
            | Self::ServerCompressedStreaming => unreachable!("run over the bare connection above"),
        }
    }
}

type Test = TestServiceClient<Channel>;

/// The sizes gRPC's cases use.
const REQUEST_SIZE: usize = 271_828;
const RESPONSE_SIZE: i32 = 314_159;
const STREAM_SIZES: [usize; 4] = [27_182, 8, 1_828, 45_904];
const ANSWER_SIZES: [i32; 4] = [31_415, 9, 2_653, 58_979];

/// The special status message: whitespace, a BMP and a non-BMP character.
const SPECIAL_MESSAGE: &str = "\t\ntest with whitespace\r\nand Unicode BMP \u{263a} and non-BMP \u{1f608}\t\n";

fn zeros(size: usize) -> Option<Payload> {
    Some(Payload { r#type: 0, body: vec![0; size] })
}

fn wants(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

fn parameters(size: i32) -> ResponseParameters {
    ResponseParameters { size, ..ResponseParameters::default() }
}

/// A payload of `size` zeros, or why not.
fn check_payload(payload: Option<&Payload>, size: usize) -> Result<(), Failed> {
    let body = payload.map(|p| &p.body[..]).unwrap_or_default();
    if body.len() != size {
        return Err(Failed::expected(format!("a payload of {size} bytes"), body.len()));
    }
    if body.iter().any(|&byte| byte != 0) {
        return Err(Failed("the payload is not all zeros".into()));
    }
    Ok(())
}

/// `result` ended with `code`.
fn expect_code<T>(result: Result<T, Status>, code: Code) -> Result<(), Failed> {
    match result {
        Ok(_) => Err(Failed::expected(format!("{code:?}"), "OK")),
        Err(status) if status.code() == code => Ok(()),
        Err(status) => Err(Failed::expected(format!("{code:?}"), status)),
    }
}

/// The large unary request, asking for the large answer.
fn large_request() -> SimpleRequest {
    SimpleRequest { response_size: RESPONSE_SIZE, payload: zeros(REQUEST_SIZE), ..SimpleRequest::default() }
}

async fn large_unary(client: &mut Test) -> Result<(), Failed> {
    let answer = client.unary_call(large_request()).await?.into_inner();
    check_payload(answer.payload.as_ref(), RESPONSE_SIZE as usize)
}

async fn client_streaming(client: &mut Test) -> Result<(), Failed> {
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

async fn server_streaming(client: &mut Test) -> Result<(), Failed> {
    let request = StreamingOutputCallRequest {
        response_parameters: ANSWER_SIZES.map(parameters).to_vec(),
        ..StreamingOutputCallRequest::default()
    };
    let answers = client.streaming_output_call(request).await?.into_inner();
    read_sizes(answers, &ANSWER_SIZES).await
}

/// A request stream the case writes into as it goes.
fn requests<T: Send + 'static>() -> (mpsc::Sender<T>, impl Stream<Item = T> + Send + 'static) {
    let (send, receive) = mpsc::channel(4);
    (send, ReceiverStream::new(receive))
}

async fn ping_pong(client: &mut Test) -> Result<(), Failed> {
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

async fn empty_stream(client: &mut Test) -> Result<(), Failed> {
    let answers = client.full_duplex_call(tokio_stream::empty()).await?.into_inner();
    read_sizes(answers, &[]).await
}

/// How long a call runs before the cancel_after_begin case cancels it: its
/// headers are out by then, on any connection the cases run on.
const BEGUN: Duration = Duration::from_millis(200);

async fn cancel_after_begin(client: &mut Test) -> Result<(), Failed> {
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

async fn cancel_after_first_response(client: &mut Test) -> Result<(), Failed> {
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

async fn timeout_on_sleeping_server(client: &mut Test) -> Result<(), Failed> {
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

async fn custom_metadata(client: &mut Test) -> Result<(), Failed> {
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

async fn status_code_and_message(client: &mut Test, message: &str) -> Result<(), Failed> {
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

async fn special_status_message(client: &mut Test) -> Result<(), Failed> {
    let request = SimpleRequest { response_status: echo(SPECIAL_MESSAGE), ..SimpleRequest::default() };
    expect_status(client.unary_call(request).await.map(drop), SPECIAL_MESSAGE)
}

const UNARY: &str = "/grpc.testing.TestService/UnaryCall";
const INPUT: &str = "/grpc.testing.TestService/StreamingInputCall";
const OUTPUT: &str = "/grpc.testing.TestService/StreamingOutputCall";

/// The one answer of a successful unary call, decoded.
fn one_answer<T: prost::Message + Default>(answer: Answer, what: &str) -> Result<(bool, T), Failed> {
    if answer.code != Code::Ok {
        return Err(Failed(format!("{what}: the call failed: {:?} {:?}", answer.code, answer.message)));
    }
    let [message] = &answer.messages[..] else {
        return Err(Failed::expected(format!("{what}: one answer"), answer.messages.len()));
    };
    let decoded =
        T::decode(message.message.clone()).map_err(|err| Failed(format!("{what}: not the answer's type: {err}")))?;
    Ok((message.compressed, decoded))
}

async fn client_compressed_unary(raw: &mut Raw) -> Result<(), Failed> {
    let request = |expect: bool| SimpleRequest { expect_compressed: wants(expect), ..large_request() };
    // The probe: expected compressed, sent plain: the server must refuse it.
    let probe = raw.call(UNARY, true, &[Outgoing::new(&request(true), false)]).await?;
    if probe.code != Code::InvalidArgument {
        return Err(Failed::expected("INVALID_ARGUMENT for the uncompressed probe", (probe.code, probe.message)));
    }
    for (expect, compressed) in [(true, true), (false, false)] {
        let answer = raw.call(UNARY, compressed, &[Outgoing::new(&request(expect), compressed)]).await?;
        let what = if compressed { "the compressed request" } else { "the uncompressed request" };
        let (_, answer): (bool, SimpleResponse) = one_answer(answer, what)?;
        check_payload(answer.payload.as_ref(), RESPONSE_SIZE as usize)?;
    }
    Ok(())
}

async fn server_compressed_unary(raw: &mut Raw) -> Result<(), Failed> {
    for compress in [true, false] {
        let request = SimpleRequest { response_compressed: wants(compress), ..large_request() };
        let answer = raw.call(UNARY, false, &[Outgoing::new(&request, false)]).await?;
        let (compressed, answer): (bool, SimpleResponse) =
            one_answer(answer, &format!("response_compressed {compress}"))?;
        if compressed != compress {
            return Err(Failed(format!(
                "response_compressed {compress}: the answer's compressed flag is {compressed}"
            )));
        }
        check_payload(answer.payload.as_ref(), RESPONSE_SIZE as usize)?;
    }
    Ok(())
}

async fn client_compressed_streaming(raw: &mut Raw) -> Result<(), Failed> {
    let message =
        |expect: bool, size| StreamingInputCallRequest { payload: zeros(size), expect_compressed: wants(expect) };
    let probe = raw.call(INPUT, true, &[Outgoing::new(&message(true, 27_182), false)]).await?;
    if probe.code != Code::InvalidArgument {
        return Err(Failed::expected("INVALID_ARGUMENT for the uncompressed probe", (probe.code, probe.message)));
    }
    let messages = [Outgoing::new(&message(true, 27_182), true), Outgoing::new(&message(false, 45_904), false)];
    let (_, answer): (bool, StreamingInputCallResponse) =
        one_answer(raw.call(INPUT, true, &messages).await?, "the stream")?;
    if answer.aggregated_payload_size != 73_086 {
        return Err(Failed::expected("an aggregated size of 73086", answer.aggregated_payload_size));
    }
    Ok(())
}

async fn server_compressed_streaming(raw: &mut Raw) -> Result<(), Failed> {
    let asked = [(true, 31_415), (false, 92_653)];
    let request = StreamingOutputCallRequest {
        response_parameters: asked
            .map(|(compress, size)| ResponseParameters { compressed: wants(compress), ..parameters(size) })
            .to_vec(),
        ..StreamingOutputCallRequest::default()
    };
    let answer = raw.call(OUTPUT, false, &[Outgoing::new(&request, false)]).await?;
    if answer.code != Code::Ok {
        return Err(Failed(format!("the call failed: {:?} {:?}", answer.code, answer.message)));
    }
    if answer.messages.len() != asked.len() {
        return Err(Failed::expected("two answers", answer.messages.len()));
    }
    for (message, (compress, size)) in answer.messages.into_iter().zip(asked) {
        if message.compressed != compress {
            return Err(Failed(format!("the {size}-byte answer's compressed flag is {}", message.compressed)));
        }
        let decoded = StreamingOutputCallResponse::decode(message.message)
            .map_err(|err| Failed(format!("not a StreamingOutputCallResponse: {err}")))?;
        check_payload(decoded.payload.as_ref(), size as usize)?;
    }
    Ok(())
}
