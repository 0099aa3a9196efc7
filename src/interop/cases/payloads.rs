//! The messages the interop cases send (payloads of zeros, in the sizes
//! gRPC's cases use) and the checks on what comes back.

use tonic::{Code, Status};

use crate::interop::client::Failed;
use crate::pb::testing::{BoolValue, Payload, ResponseParameters, SimpleRequest};

/// The sizes gRPC's cases use.
pub(super) const REQUEST_SIZE: usize = 271_828;
pub(super) const RESPONSE_SIZE: i32 = 314_159;
pub(super) const STREAM_SIZES: [usize; 4] = [27_182, 8, 1_828, 45_904];
pub(super) const ANSWER_SIZES: [i32; 4] = [31_415, 9, 2_653, 58_979];

pub(super) fn zeros(size: usize) -> Option<Payload> {
    Some(Payload { r#type: 0, body: vec![0; size] })
}

pub(super) fn wants(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

pub(super) fn parameters(size: i32) -> ResponseParameters {
    ResponseParameters { size, ..ResponseParameters::default() }
}

/// A payload of `size` zeros, or why not.
pub(super) fn check_payload(payload: Option<&Payload>, size: usize) -> Result<(), Failed> {
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
pub(super) fn expect_code<T>(result: Result<T, Status>, code: Code) -> Result<(), Failed> {
    match result {
        Ok(_) => Err(Failed::expected(format!("{code:?}"), "OK")),
        Err(status) if status.code() == code => Ok(()),
        Err(status) => Err(Failed::expected(format!("{code:?}"), status)),
    }
}

/// The large unary request, asking for the large answer.
pub(super) fn large_request() -> SimpleRequest {
    SimpleRequest { response_size: RESPONSE_SIZE, payload: zeros(REQUEST_SIZE), ..SimpleRequest::default() }
}
