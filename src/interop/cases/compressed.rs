//! The compression cases, over a bare HTTP/2 connection (`raw.rs`): tonic
//! neither sends a chosen message uncompressed nor shows a received
//! message's compressed flag.

use prost::Message as _;
use tonic::Code;

use super::payloads::{RESPONSE_SIZE, check_payload, large_request, parameters, wants, zeros};
use crate::interop::client::Failed;
use crate::interop::raw::{Answer, Outgoing, Raw};
use crate::pb::testing::{
    ResponseParameters, SimpleRequest, SimpleResponse, StreamingInputCallRequest, StreamingInputCallResponse,
    StreamingOutputCallRequest, StreamingOutputCallResponse,
};

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

pub(super) async fn client_compressed_unary(raw: &mut Raw) -> Result<(), Failed> {
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

pub(super) async fn server_compressed_unary(raw: &mut Raw) -> Result<(), Failed> {
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

pub(super) async fn client_compressed_streaming(raw: &mut Raw) -> Result<(), Failed> {
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

pub(super) async fn server_compressed_streaming(raw: &mut Raw) -> Result<(), Failed> {
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
