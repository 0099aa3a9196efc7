//! The JSON view of the messages the Connect protocol may carry: for each
//! message type, JSON to protobuf and back. The contract's messages, and
//! those of gRPC's interop contract (`grpc.testing`, for the interop
//! server), use their generated pbjson impls (the same JSON the
//! `client --json` prints); the health messages, which tonic-health ships
//! without serde, are written here.

use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::pb::testing as interop;
use crate::pb::v1::{
    ClassifyRequest, ClassifyResponse, CountRequest, CountResponse, ScanRequest, ScanResponse, SearchRequest,
    SearchResponse,
};

/// JSON to protobuf, or why the JSON is not that message.
pub(in crate::server) type FromJson = fn(&[u8]) -> Result<Vec<u8>, String>;
/// Protobuf to JSON, or why the bytes are not that message.
pub(in crate::server) type ToJson = fn(&[u8]) -> Result<Vec<u8>, String>;

/// The JSON transcoders of the message named `name` (`search.v1.SearchRequest`),
/// if it has a JSON view here.
pub(in crate::server) fn json(name: &str) -> Option<(FromJson, ToJson)> {
    Some(match name {
        "search.v1.SearchRequest" => (from_json::<SearchRequest>, to_json::<SearchRequest>),
        "search.v1.SearchResponse" => (from_json::<SearchResponse>, to_json::<SearchResponse>),
        "search.v1.ClassifyRequest" => (from_json::<ClassifyRequest>, to_json::<ClassifyRequest>),
        "search.v1.ClassifyResponse" => (from_json::<ClassifyResponse>, to_json::<ClassifyResponse>),
        "search.v1.CountRequest" => (from_json::<CountRequest>, to_json::<CountRequest>),
        "search.v1.CountResponse" => (from_json::<CountResponse>, to_json::<CountResponse>),
        "search.v1.ScanRequest" => (from_json::<ScanRequest>, to_json::<ScanRequest>),
        "search.v1.ScanResponse" => (from_json::<ScanResponse>, to_json::<ScanResponse>),
        "grpc.testing.Empty" => (from_json::<interop::Empty>, to_json::<interop::Empty>),
        "grpc.testing.SimpleRequest" => (from_json::<interop::SimpleRequest>, to_json::<interop::SimpleRequest>),
        "grpc.testing.SimpleResponse" => (from_json::<interop::SimpleResponse>, to_json::<interop::SimpleResponse>),
        "grpc.testing.StreamingInputCallRequest" => {
            (from_json::<interop::StreamingInputCallRequest>, to_json::<interop::StreamingInputCallRequest>)
        }
        "grpc.testing.StreamingInputCallResponse" => {
            (from_json::<interop::StreamingInputCallResponse>, to_json::<interop::StreamingInputCallResponse>)
        }
        "grpc.testing.StreamingOutputCallRequest" => {
            (from_json::<interop::StreamingOutputCallRequest>, to_json::<interop::StreamingOutputCallRequest>)
        }
        "grpc.testing.StreamingOutputCallResponse" => {
            (from_json::<interop::StreamingOutputCallResponse>, to_json::<interop::StreamingOutputCallResponse>)
        }
        "grpc.health.v1.HealthCheckRequest" => (health_request_from_json, health_request_to_json),
        "grpc.health.v1.HealthCheckResponse" => (health_response_from_json, health_response_to_json),
        _ => return None,
    })
}

fn from_json<M: Message + DeserializeOwned>(json: &[u8]) -> Result<Vec<u8>, String> {
    serde_json::from_slice::<M>(json).map(|message| message.encode_to_vec()).map_err(|err| err.to_string())
}

fn to_json<M: Message + Default + Serialize>(proto: &[u8]) -> Result<Vec<u8>, String> {
    let message = M::decode(proto).map_err(|err| err.to_string())?;
    let json = serde_json::to_vec(&message).map_err(|err| err.to_string())?;
    // pbjson leaves a double that is NaN or infinite to serde_json, which
    // writes `null` (read back as 0, or refused); the JSON mapping spells
    // them "NaN", "Infinity": refuse rather than write a different value.
    // No field of the contract is ever null otherwise.
    let has_null = json.windows(4).any(|window| window == b"null");
    if has_null && serde_json::from_slice::<serde_json::Value>(&json).is_ok_and(|value| holds_null(&value)) {
        return Err(NON_FINITE.to_owned());
    }
    Ok(json)
}

/// Why [`to_json`] refuses a message.
pub(in crate::server) const NON_FINITE: &str = "a double that is NaN or infinite, which this JSON view cannot write";

fn holds_null(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Array(values) => values.iter().any(holds_null),
        serde_json::Value::Object(fields) => fields.values().any(holds_null),
        _ => false,
    }
}

/// `{"service": "..."}`; unknown fields are ignored, as everywhere else.
#[derive(serde::Deserialize, Serialize)]
struct HealthRequestJson {
    #[serde(default)]
    service: String,
}

fn health_request_from_json(json: &[u8]) -> Result<Vec<u8>, String> {
    let request: HealthRequestJson = serde_json::from_slice(json).map_err(|err| err.to_string())?;
    Ok(HealthCheckRequest { service: request.service }.encode_to_vec())
}

fn health_request_to_json(proto: &[u8]) -> Result<Vec<u8>, String> {
    let request = HealthCheckRequest::decode(proto).map_err(|err| err.to_string())?;
    serde_json::to_vec(&HealthRequestJson { service: request.service }).map_err(|err| err.to_string())
}

/// `{"status": "SERVING"}`: an enum by its name, as the JSON mapping has it.
#[derive(serde::Deserialize, Serialize)]
struct HealthResponseJson {
    #[serde(default)]
    status: String,
}

fn health_response_from_json(json: &[u8]) -> Result<Vec<u8>, String> {
    let response: HealthResponseJson = serde_json::from_slice(json).map_err(|err| err.to_string())?;
    let status = ServingStatus::from_str_name(&response.status)
        .ok_or_else(|| format!("unknown serving status {:?}", response.status))?;
    Ok(HealthCheckResponse { status: status as i32 }.encode_to_vec())
}

fn health_response_to_json(proto: &[u8]) -> Result<Vec<u8>, String> {
    let response = HealthCheckResponse::decode(proto).map_err(|err| err.to_string())?;
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    serde_json::to_vec(&HealthResponseJson { status: status.as_str_name().to_owned() }).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(name: &str, json_in: &str) -> String {
        let (from, to) = json(name).expect(name);
        let proto = from(json_in.as_bytes()).expect("valid JSON");
        String::from_utf8(to(&proto).expect("valid proto")).expect("UTF-8")
    }

    #[test]
    fn messages_go_through_protobuf_and_back() {
        assert_eq!(round_trip("search.v1.SearchRequest", r#"{"query":"Banana"}"#), r#"{"query":"Banana"}"#);
        assert_eq!(
            round_trip("search.v1.CountResponse", r#"{"queries":"3","matches":2}"#),
            r#"{"queries":"3","matches":"2"}"#
        );
        assert_eq!(
            round_trip("grpc.health.v1.HealthCheckResponse", r#"{"status":"NOT_SERVING"}"#),
            r#"{"status":"NOT_SERVING"}"#
        );
        assert_eq!(round_trip("grpc.health.v1.HealthCheckRequest", "{}"), r#"{"service":""}"#);
        assert!(json("grpc.reflection.v1.ServerReflectionRequest").is_none());
    }

    /// Each message of the contract's methods has its JSON view, so that
    /// Connect's JSON (the web page's, curl's) reaches every method: a
    /// method added to the proto with new messages fails here until they
    /// are in `json`.
    #[test]
    fn every_message_of_the_contract_has_a_json_view() {
        let methods = crate::rpc::methods(crate::pb::v1::FILE_DESCRIPTOR_SET);
        assert!(!methods.is_empty());
        for method in &methods {
            for name in [&method.input, &method.output] {
                assert!(json(name).is_some(), "{name} of {} has no JSON view: add it to codec::json", method.path);
            }
        }
    }

    /// JSON's "NaN" reads as a NaN double; writing it back is refused, not
    /// written as `null` (which reads back as 0), and a query of "null"
    /// still writes.
    #[test]
    fn a_double_json_cannot_hold_is_refused_not_written_as_null() {
        let (from, to) = json("grpc.testing.SimpleRequest").expect("known");
        let proto = from(br#"{"orcaPerQueryReport":{"cpuUtilization":"NaN"}}"#).expect("JSON's NaN");
        assert_eq!(to(&proto), Err(NON_FINITE.to_owned()));
        let proto = from(br#"{"orcaPerQueryReport":{"cpuUtilization":0.5}}"#).expect("a double");
        assert!(to(&proto).is_ok());
        assert_eq!(round_trip("search.v1.SearchRequest", r#"{"query":"null"}"#), r#"{"query":"null"}"#);
    }

    #[test]
    fn bad_json_says_where() {
        let (from, _) = json("search.v1.SearchRequest").expect("known");
        let err = from(b"{\"query\": 5}").expect_err("a number is not a string");
        assert!(err.contains("line 1 column"), "{err}");
        assert!(from(b"{\"query\": \"x\"").expect_err("cut short").contains("EOF"));
    }
}
