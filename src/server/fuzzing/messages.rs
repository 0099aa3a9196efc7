//! The fuzz targets of a request's messages (see `mod.rs`): Connect's JSON
//! view, and protobuf decoded as the server decodes it.

use std::fmt::Debug;

use bytes::Bytes;
use prost::{Message, Name};

use super::Input;
use crate::pb::testing as interop;
use crate::pb::v1::{ClassifyRequest, CountRequest, ScanRequest, SearchRequest};
use crate::server::protocols::{NON_FINITE, connect_json as json_view};

/// The messages that have a JSON view for the Connect protocol.
const JSON_MESSAGES: &[&str] = &[
    "search.v1.SearchRequest",
    "search.v1.SearchResponse",
    "search.v1.ClassifyRequest",
    "search.v1.ClassifyResponse",
    "search.v1.CountRequest",
    "search.v1.CountResponse",
    "search.v1.ScanRequest",
    "search.v1.ScanResponse",
    "grpc.testing.Empty",
    "grpc.testing.SimpleRequest",
    "grpc.testing.SimpleResponse",
    "grpc.testing.StreamingInputCallRequest",
    "grpc.testing.StreamingInputCallResponse",
    "grpc.testing.StreamingOutputCallRequest",
    "grpc.testing.StreamingOutputCallResponse",
    "grpc.health.v1.HealthCheckRequest",
    "grpc.health.v1.HealthCheckResponse",
];

/// Connect's JSON view of a message: a client's JSON read as protobuf
/// writes back as JSON that reads as the same protobuf; protobuf bytes
/// written as JSON read back to the same JSON.
pub fn connect_json(data: &[u8]) {
    let mut input = Input::new(data);
    let name = input.pick(JSON_MESSAGES);
    let (from_json, to_json) = json_view(name).unwrap_or_else(|| panic!("{name} has no JSON view"));
    let bytes = input.rest();
    if let Ok(proto) = from_json(bytes) {
        // JSON's "NaN" and "Infinity" read, but are not written back.
        let Some(json) = written(name, to_json(&proto)) else { return };
        let again = from_json(&json).unwrap_or_else(|err| panic!("{name}: its own JSON: {err}"));
        let json_again = written(name, to_json(&again)).unwrap_or_else(|| panic!("{name}: its own JSON's protobuf"));
        assert_eq!(value(&json_again), value(&json), "{name}: {}", String::from_utf8_lossy(&json));
    }
    if let Ok(json) = to_json(bytes) {
        let proto = from_json(&json).unwrap_or_else(|err| panic!("{name}: its own JSON: {err}"));
        let back = to_json(&proto).unwrap_or_else(|err| panic!("{name}: its own protobuf: {err}"));
        assert_eq!(value(&back), value(&json), "{name}");
    }
}

/// What the JSON view wrote, none when it refused a double JSON cannot
/// hold; any other refusal of a message it read fails.
fn written(name: &str, json: Result<Vec<u8>, String>) -> Option<Vec<u8>> {
    match json {
        Ok(json) => Some(json),
        Err(err) if err == NON_FINITE => None,
        Err(err) => panic!("{name}: its own protobuf: {err}"),
    }
}

/// JSON text as a value, so that two writings of one message compare
/// equal: a map field is a `HashMap`, written in no fixed order (objects
/// compare whatever their keys' order), and a NaN is written `"NaN"`,
/// equal to itself where the number is not.
fn value(json: &[u8]) -> serde_json::Value {
    serde_json::from_slice(json).unwrap_or_else(|err| panic!("the JSON view wrote what is not JSON: {err}"))
}

/// `a` and `b` hold the same values: equal, or, where a double is NaN
/// (not equal to itself), encoded alike (a NaN's bits are kept; maps may
/// encode in either order) or equal as their JSON views (which order no
/// map, but refuse an enum's unknown value).
fn same<M: Message + Name + PartialEq>(a: &M, b: &M) -> bool {
    a == b
        || a.encode_to_vec() == b.encode_to_vec()
        || json_view(&M::full_name()).is_some_and(|(_, to_json)| {
            let json = |m: &M| to_json(&m.encode_to_vec()).map(|json| value(&json));
            json(a).is_ok_and(|a| json(b).is_ok_and(|b| a == b))
        })
}

/// Protobuf decoded as the server decodes requests ([`crate::lenient`]):
/// whatever prost takes, taken the same; what it keeps, a message every
/// decoder takes.
pub fn lenient(data: &[u8]) {
    let mut input = Input::new(data);
    let which = input.byte();
    let bytes = Bytes::copy_from_slice(input.rest());
    match which % 7 {
        0 => same_as_prost::<SearchRequest>(bytes),
        1 => same_as_prost::<ClassifyRequest>(bytes),
        2 => same_as_prost::<CountRequest>(bytes),
        3 => same_as_prost::<ScanRequest>(bytes),
        4 => same_as_prost::<interop::SimpleRequest>(bytes),
        5 => same_as_prost::<interop::StreamingInputCallRequest>(bytes),
        _ => same_as_prost::<interop::StreamingOutputCallRequest>(bytes),
    }
}

fn same_as_prost<M: Message + Name + Default + PartialEq + Debug>(bytes: Bytes) {
    let lenient = crate::lenient::decode::<M>(bytes.clone());
    if let Ok(strict) = M::decode(bytes) {
        let taken = lenient.as_ref().is_ok_and(|lenient| same(lenient, &strict));
        assert!(taken, "{}: {lenient:?} against {strict:?}", M::full_name());
    }
    if let Ok(message) = lenient {
        let again = M::decode(&message.encode_to_vec()[..]);
        assert!(again.as_ref().is_ok_and(|again| same(again, &message)), "{}: {again:?}", M::full_name());
    }
}
