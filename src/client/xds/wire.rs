//! The ADS stream's messages from the plain terms of `protocol.rs` and
//! `bootstrap.rs`: a DiscoveryRequest (the node on a stream's first), its
//! NACK's error detail, the node's metadata as a protobuf Struct.

use prost_types::value::Kind;
use serde_json::{Map, Value};

use super::bootstrap::Node;
use super::protocol::Request;
use crate::pb::envoy::config::core::v3 as core;
use crate::pb::envoy::service::discovery::v3::DiscoveryRequest;

/// The client features this client announces: it does not use the
/// overprovisioning factor, and takes resources wrapped in
/// `envoy.service.discovery.v3.Resource` on a state-of-the-world stream.
pub const CLIENT_FEATURES: [&str; 2] = ["envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw"];

/// The DiscoveryRequest for `request`, with `node` when it is the
/// stream's first.
#[must_use]
pub fn discovery_request(request: Request, node: Option<&Node>) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: request.version,
        node: node.map(node_message),
        resource_names: request.names,
        type_url: request.kind.type_url().to_owned(),
        response_nonce: request.nonce,
        // INVALID_ARGUMENT, as grpc NACKs.
        error_detail: request.error.map(|message| crate::pb::google::rpc::Status {
            code: tonic::Code::InvalidArgument as i32,
            message,
            details: Vec::new(),
        }),
    }
}

/// The bootstrap's node, with this client's name, version and features.
#[must_use]
pub fn node_message(node: &Node) -> core::Node {
    core::Node {
        id: node.id.clone(),
        cluster: node.cluster.clone(),
        metadata: Some(to_struct(&node.metadata)),
        locality: node.locality.as_ref().map(|l| core::Locality {
            region: l.region.clone(),
            zone: l.zone.clone(),
            sub_zone: l.sub_zone.clone(),
        }),
        user_agent_name: env!("CARGO_PKG_NAME").to_owned(),
        user_agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        client_features: CLIENT_FEATURES.iter().map(|f| (*f).to_owned()).collect(),
    }
}

/// A JSON object as a protobuf Struct.
fn to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct { fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect() }
}

fn to_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue { values: items.iter().map(to_value).collect() }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::xds::resource::ResourceType;

    #[test]
    fn a_nack_carries_its_error_and_the_first_request_the_node() {
        let request = Request {
            kind: ResourceType::Cluster,
            names: vec!["c".to_owned()],
            version: "v1".to_owned(),
            nonce: "n2".to_owned(),
            error: Some("broken".to_owned()),
        };
        let mut metadata = Map::new();
        metadata.insert("k".to_owned(), serde_json::json!({"list": [1, "a"]}));
        let node = Node { id: "n".to_owned(), metadata, ..Node::default() };
        let wire = discovery_request(request, Some(&node));
        assert_eq!(wire.type_url, ResourceType::Cluster.type_url());
        assert_eq!((wire.version_info.as_str(), wire.response_nonce.as_str()), ("v1", "n2"));
        let detail = wire.error_detail.expect("a NACK");
        assert_eq!((detail.code, detail.message.as_str()), (3, "broken"));
        let node = wire.node.expect("the node");
        assert_eq!(node.id, "n");
        assert!(node.client_features.iter().any(|f| f == "xds.config.resource-in-sotw"));
        let k = &node.metadata.expect("metadata").fields["k"];
        let Some(Kind::StructValue(inner)) = &k.kind else { panic!("a struct") };
        let Some(Kind::ListValue(list)) = &inner.fields["list"].kind else { panic!("a list") };
        assert_eq!(list.values.len(), 2);
    }
}
