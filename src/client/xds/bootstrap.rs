//! grpc's xDS bootstrap: the JSON that names the management server and
//! this client's node, from `GRPC_XDS_BOOTSTRAP` (a file) or
//! `GRPC_XDS_BOOTSTRAP_CONFIG` (the JSON itself), read as grpc reads it.

use std::path::PathBuf;

use serde_json::{Map, Value};

/// The environment variable naming the bootstrap file.
pub const BOOTSTRAP_FILE_ENV: &str = "GRPC_XDS_BOOTSTRAP";
/// The environment variable holding the bootstrap JSON itself.
pub const BOOTSTRAP_CONFIG_ENV: &str = "GRPC_XDS_BOOTSTRAP_CONFIG";

/// Channel credential types grpc knows and this client does not support.
const KNOWN_BUT_UNSUPPORTED: &[&str] = &["google_default"];

/// A checked bootstrap.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// The management server: `xds_servers[0]` (grpc uses the first).
    pub server: XdsServer,
    /// This client as the management server sees it.
    pub node: Node,
    /// `client_default_listener_resource_name_template`: the Listener's name
    /// for a target, `%s` standing for the target's name.
    pub listener_name_template: String,
}

/// A management server.
#[derive(Debug, Clone, PartialEq)]
pub struct XdsServer {
    /// `server_uri`: host and port, as a gRPC target.
    pub uri: String,
    /// The first of `channel_creds` this client supports.
    pub creds: ChannelCreds,
    /// `server_features` contains `ignore_resource_deletion` (gRFC A53): a
    /// Listener or Cluster left out of an update is kept, not deleted.
    pub ignore_resource_deletion: bool,
}

/// How to reach the management server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelCreds {
    /// Plaintext HTTP/2.
    Insecure,
    /// TLS (gRFC A65's `tls` credentials), with the files of its config.
    Tls {
        /// `ca_certificate_file`; the system's roots when absent.
        ca: Option<PathBuf>,
        /// `certificate_file` and `private_key_file`, for mutual TLS.
        identity: Option<(PathBuf, PathBuf)>,
    },
}

/// The node this client says it is, sent on the stream's first request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
    /// `node.locality`.
    pub locality: Option<NodeLocality>,
    /// `node.metadata`, a JSON object sent as a protobuf Struct.
    pub metadata: Map<String, Value>,
}

/// `node.locality`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeLocality {
    /// `region`.
    pub region: String,
    /// `zone`.
    pub zone: String,
    /// `sub_zone`.
    pub sub_zone: String,
}

/// Why no bootstrap can be used: one line naming the field.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Neither environment variable is set.
    #[error("no xDS bootstrap: set {BOOTSTRAP_FILE_ENV} to a file or {BOOTSTRAP_CONFIG_ENV} to its JSON")]
    NotSet,
    /// The file cannot be read.
    #[error("cannot read the xDS bootstrap {}: {err}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The text is not JSON.
    #[error("the xDS bootstrap is not JSON: {0}")]
    Json(serde_json::Error),
    /// A field is missing or wrong.
    #[error("xDS bootstrap: {field}: {problem}")]
    Field {
        /// The field, as a path (`xds_servers[0].server_uri`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn field_error(field: impl Into<String>, problem: impl Into<String>) -> BootstrapError {
    BootstrapError::Field { field: field.into(), problem: problem.into() }
}

impl Bootstrap {
    /// The bootstrap of the environment: `GRPC_XDS_BOOTSTRAP`'s file first,
    /// else `GRPC_XDS_BOOTSTRAP_CONFIG`, as grpc looks.
    ///
    /// # Errors
    /// Neither set, the file unreadable, or the JSON not a usable bootstrap.
    pub fn from_env() -> Result<Self, BootstrapError> {
        let file = std::env::var_os(BOOTSTRAP_FILE_ENV).filter(|v| !v.is_empty());
        if let Some(path) = file {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path).map_err(|err| BootstrapError::Read { path, err })?;
            return Self::parse(&text);
        }
        match std::env::var(BOOTSTRAP_CONFIG_ENV) {
            Ok(text) if !text.is_empty() => Self::parse(&text),
            _ => Err(BootstrapError::NotSet),
        }
    }

    /// A bootstrap from its JSON. Fields this client does not use
    /// (`certificate_providers`, `authorities`, the server listener's
    /// template, anything unknown) are ignored, as grpc ignores them.
    ///
    /// # Errors
    /// Not JSON, or a field missing or of the wrong kind.
    pub fn parse(text: &str) -> Result<Self, BootstrapError> {
        let root: Value = serde_json::from_str(text).map_err(BootstrapError::Json)?;
        let root = root.as_object().ok_or_else(|| field_error("(top level)", "not a JSON object"))?;
        let servers = root.get("xds_servers").ok_or_else(|| field_error("xds_servers", "missing"))?;
        let servers = servers.as_array().ok_or_else(|| field_error("xds_servers", "not a list"))?;
        let first = servers.first().ok_or_else(|| field_error("xds_servers", "empty"))?;
        let server = parse_server(first)?;
        let node = match root.get("node") {
            None | Some(Value::Null) => Node::default(),
            Some(node) => parse_node(node)?,
        };
        let template = "client_default_listener_resource_name_template";
        let listener_name_template = match root.get(template) {
            None | Some(Value::Null) => "%s".to_owned(),
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err(field_error(template, "not a string")),
        };
        Ok(Self { server, node, listener_name_template })
    }

    /// The Listener's name for a target's name (`xds:///NAME`'s `NAME`).
    #[must_use]
    pub fn listener_name(&self, target: &str) -> String {
        self.listener_name_template.replace("%s", target)
    }
}

fn parse_server(server: &Value) -> Result<XdsServer, BootstrapError> {
    const AT: &str = "xds_servers[0]";
    let server = server.as_object().ok_or_else(|| field_error(AT, "not a JSON object"))?;
    let uri = match server.get("server_uri") {
        Some(Value::String(uri)) if !uri.is_empty() => uri.clone(),
        Some(Value::String(_)) => return Err(field_error(format!("{AT}.server_uri"), "empty")),
        Some(_) => return Err(field_error(format!("{AT}.server_uri"), "not a string")),
        None => return Err(field_error(format!("{AT}.server_uri"), "missing")),
    };
    let creds = server.get("channel_creds").ok_or_else(|| field_error(format!("{AT}.channel_creds"), "missing"))?;
    let creds = parse_creds(creds)?;
    let features = match server.get("server_features") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(features)) => features.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(field_error(format!("{AT}.server_features"), "not a list")),
    };
    let ignore_resource_deletion = features.contains(&"ignore_resource_deletion");
    Ok(XdsServer { uri, creds, ignore_resource_deletion })
}

/// The first credential type this client supports, as grpc picks; an
/// error listing them all when none is.
fn parse_creds(creds: &Value) -> Result<ChannelCreds, BootstrapError> {
    const AT: &str = "xds_servers[0].channel_creds";
    let list = creds.as_array().ok_or_else(|| field_error(AT, "not a list"))?;
    let mut seen = Vec::new();
    for (i, cred) in list.iter().enumerate() {
        let kind = cred.get("type").and_then(Value::as_str);
        let kind = kind.ok_or_else(|| field_error(format!("{AT}[{i}].type"), "missing or not a string"))?;
        match kind {
            "insecure" => return Ok(ChannelCreds::Insecure),
            "tls" => return parse_tls(cred.get("config"), &format!("{AT}[{i}].config")),
            _ => seen.push(kind.to_owned()),
        }
    }
    if seen.is_empty() {
        return Err(field_error(AT, "empty"));
    }
    let known = seen.iter().any(|kind| KNOWN_BUT_UNSUPPORTED.contains(&kind.as_str()));
    let note = if known { " (google_default needs Google's credentials, which this client lacks)" } else { "" };
    Err(field_error(AT, format!("no supported type among {} (supported: insecure, tls){note}", seen.join(", "))))
}

fn parse_tls(config: Option<&Value>, at: &str) -> Result<ChannelCreds, BootstrapError> {
    let empty = Map::new();
    let config = match config {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(config)) => config,
        Some(_) => return Err(field_error(at, "not a JSON object")),
    };
    let file = |name: &str| -> Result<Option<PathBuf>, BootstrapError> {
        match config.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(path)) if !path.is_empty() => Ok(Some(PathBuf::from(path))),
            Some(_) => Err(field_error(format!("{at}.{name}"), "not a file name")),
        }
    };
    let ca = file("ca_certificate_file")?;
    let identity = match (file("certificate_file")?, file("private_key_file")?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(field_error(format!("{at}.private_key_file"), "missing beside certificate_file"));
        }
        (None, Some(_)) => {
            return Err(field_error(format!("{at}.certificate_file"), "missing beside private_key_file"));
        }
    };
    Ok(ChannelCreds::Tls { ca, identity })
}

fn parse_node(node: &Value) -> Result<Node, BootstrapError> {
    let node = node.as_object().ok_or_else(|| field_error("node", "not a JSON object"))?;
    let text = |map: &Map<String, Value>, at: &str, name: &str| -> Result<String, BootstrapError> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(field_error(format!("{at}.{name}"), "not a string")),
        }
    };
    let locality = match node.get("locality") {
        None | Some(Value::Null) => None,
        Some(Value::Object(l)) => Some(NodeLocality {
            region: text(l, "node.locality", "region")?,
            zone: text(l, "node.locality", "zone")?,
            sub_zone: text(l, "node.locality", "sub_zone")?,
        }),
        Some(_) => return Err(field_error("node.locality", "not a JSON object")),
    };
    let metadata = match node.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(field_error("node.metadata", "not a JSON object")),
    };
    Ok(Node { id: text(node, "node", "id")?, cluster: text(node, "node", "cluster")?, locality, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        Bootstrap::parse(text).expect_err("an error").to_string()
    }

    #[test]
    fn a_full_bootstrap_is_read() {
        let bootstrap = Bootstrap::parse(
            r#"{"xds_servers": [{"server_uri": "127.0.0.1:18000",
                  "channel_creds": [{"type": "google_default"}, {"type": "insecure"}],
                  "server_features": ["xds_v3", "ignore_resource_deletion"]},
                 {"server_uri": "second:1", "channel_creds": [{"type": "insecure"}]}],
                "node": {"id": "n1", "cluster": "c1", "locality": {"zone": "z1"}, "metadata": {"k": 1}},
                "certificate_providers": {}, "authorities": {}, "unknown": 1}"#,
        )
        .expect("a bootstrap");
        assert_eq!(bootstrap.server.uri, "127.0.0.1:18000");
        assert_eq!(bootstrap.server.creds, ChannelCreds::Insecure);
        assert!(bootstrap.server.ignore_resource_deletion);
        assert_eq!(bootstrap.node.id, "n1");
        assert_eq!(bootstrap.node.cluster, "c1");
        assert_eq!(bootstrap.node.locality.as_ref().map(|l| l.zone.as_str()), Some("z1"));
        assert_eq!(bootstrap.node.metadata.get("k"), Some(&Value::from(1)));
        assert_eq!(bootstrap.listener_name("search"), "search");
    }

    #[test]
    fn the_listener_template_names_the_listener() {
        let bootstrap = Bootstrap::parse(
            r#"{"xds_servers": [{"server_uri": "a:1", "channel_creds": [{"type": "insecure"}]}],
                "client_default_listener_resource_name_template": "lds/%s"}"#,
        )
        .expect("a bootstrap");
        assert_eq!(bootstrap.listener_name("search"), "lds/search");
        assert!(!bootstrap.server.ignore_resource_deletion);
    }

    #[test]
    fn tls_credentials_carry_their_files() {
        let bootstrap = Bootstrap::parse(
            r#"{"xds_servers": [{"server_uri": "a:1", "channel_creds": [{"type": "tls", "config":
                {"ca_certificate_file": "ca.pem", "certificate_file": "c.pem", "private_key_file": "k.pem"}}]}]}"#,
        )
        .expect("a bootstrap");
        let identity = Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")));
        assert_eq!(bootstrap.server.creds, ChannelCreds::Tls { ca: Some(PathBuf::from("ca.pem")), identity });
        let half = r#"{"xds_servers": [{"server_uri": "a:1", "channel_creds": [{"type": "tls",
                "config": {"certificate_file": "c.pem"}}]}]}"#;
        assert!(parse_err(half).contains("private_key_file: missing"), "{}", parse_err(half));
    }

    #[test]
    fn each_error_names_its_field() {
        let cases = [
            ("[]", "(top level): not a JSON object"),
            ("{}", "xds_servers: missing"),
            (r#"{"xds_servers": []}"#, "xds_servers: empty"),
            (r#"{"xds_servers": [{"channel_creds": []}]}"#, "xds_servers[0].server_uri: missing"),
            (r#"{"xds_servers": [{"server_uri": "a:1"}]}"#, "xds_servers[0].channel_creds: missing"),
            (r#"{"xds_servers": [{"server_uri": "a:1", "channel_creds": []}]}"#, "channel_creds: empty"),
            (
                r#"{"xds_servers": [{"server_uri": "a:1", "channel_creds": [{"type": "google_default"}]}]}"#,
                "no supported type among google_default",
            ),
            (r#"{"xds_servers": [{"server_uri": "a:1", "channel_creds": [{}]}]}"#, "channel_creds[0].type"),
            (
                r#"{"xds_servers": [{"server_uri": "a:1", "channel_creds": [{"type": "insecure"}]}],
                    "node": {"id": 5}}"#,
                "node.id: not a string",
            ),
            ("{", "not JSON"),
        ];
        for (text, expected) in cases {
            let err = parse_err(text);
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
