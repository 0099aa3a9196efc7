//! The caller's own request metadata ([`Metadata`]): headers sent with
//! every attempt of every call, as grpcurl's `-H 'name: value'` sends them,
//! checked against gRPC's rules for metadata when they are added.

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderMap;
use tonic::Request;
use tonic::metadata::{
    AsciiMetadataKey, AsciiMetadataValue, BinaryMetadataKey, BinaryMetadataValue, KeyAndValueRef, MetadataMap,
};

/// The suffix of a binary header, whose value is base64 on the wire.
const BINARY_SUFFIX: &str = "-bin";

/// Names the client or HTTP/2 sets, with why a caller may not.
const RESERVED: [(&str, &str); 9] = [
    ("content-type", "the client sets it"),
    ("te", "the client sets it"),
    ("user-agent", "the client sets it"),
    ("host", "HTTP/2 carries it as :authority, from the target"),
    ("connection", "HTTP/2 forbids connection headers"),
    ("keep-alive", "HTTP/2 forbids connection headers"),
    ("proxy-connection", "HTTP/2 forbids connection headers"),
    ("transfer-encoding", "HTTP/2 forbids connection headers"),
    ("upgrade", "HTTP/2 forbids connection headers"),
];

/// base64 as gRPC's binary headers use it: the standard alphabet, padded
/// or not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a header was refused; no message quotes a value, which may be a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// No `:` between the name and the value.
    #[error("a header is `name: value`, and `{0}` has no colon")]
    MissingColon(String),
    /// A name outside gRPC's alphabet.
    #[error("`{0}` is not a header name gRPC sends (lowercase letters, digits, `-`, `_` and `.`, not ending in `-`)")]
    InvalidName(String),
    /// A name the client, gRPC or HTTP/2 owns.
    #[error("`{name}` is reserved: {why}")]
    Reserved {
        /// The name.
        name: String,
        /// Who owns it.
        why: &'static str,
    },
    /// A text value with a byte gRPC metadata cannot hold.
    #[error(
        "the value of `{name}` has a character gRPC metadata cannot hold at byte {at} (printable ASCII only; \
         binary values go in a `-bin` header, as base64)"
    )]
    InvalidValue {
        /// The header's name.
        name: String,
        /// Where the first such byte is.
        at: usize,
    },
    /// A `-bin` header whose value is not base64.
    #[error("the value of `{0}` is not base64 (a `-bin` header's value is base64, padded or not)")]
    Base64(String),
}

/// Request metadata sent with every attempt of every call (health watches
/// excepted), each header checked when added: names lowercased, text
/// values printable ASCII, a `-bin` header's value given as base64 and
/// sent as binary metadata.
#[derive(Clone, Default)]
pub struct Metadata(MetadataMap);

impl Metadata {
    /// No headers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The headers of `name: value` lines, as `-H` takes them.
    ///
    /// # Errors
    /// The first header refused (see [`Metadata::push`]).
    pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>) -> Result<Self, MetadataError> {
        let mut metadata = Self::new();
        for header in headers {
            metadata.push(header)?;
        }
        Ok(metadata)
    }

    /// Adds `name: value` (spaces around the value ignored), after any
    /// header of the same name.
    ///
    /// # Errors
    /// See [`Metadata::append`]; [`MetadataError::MissingColon`] without a
    /// colon.
    pub fn push(&mut self, header: &str) -> Result<(), MetadataError> {
        let header = header.trim_start();
        if let Some(pseudo) = header.strip_prefix(':') {
            let name = format!(":{}", pseudo.split(':').next().unwrap_or_default().trim());
            return Err(MetadataError::Reserved { name, why: "an HTTP/2 pseudo-header, which the client sets" });
        }
        let Some((name, value)) = header.split_once(':') else {
            let name: String = header.split_whitespace().next().unwrap_or_default().chars().take(40).collect();
            return Err(MetadataError::MissingColon(name));
        };
        self.append(name.trim(), value.trim_matches([' ', '\t']))
    }

    /// Adds the header `name` (lowercased), after any of the same name: a
    /// `-bin` one with `value` as base64, any other with `value` as text.
    ///
    /// # Errors
    /// A name outside gRPC's alphabet, or reserved (a pseudo-header,
    /// `grpc-*`, or one the client or HTTP/2 sets: `content-type`, `te`,
    /// `user-agent`, `host`, the connection headers); a text value with a
    /// byte that is not printable ASCII; a binary value that is not base64.
    pub fn append(&mut self, name: &str, value: &str) -> Result<(), MetadataError> {
        let name = checked_name(name)?;
        if name.ends_with(BINARY_SUFFIX) {
            let bytes = BASE64.decode(value).map_err(|_| MetadataError::Base64(name.clone()))?;
            let key = BinaryMetadataKey::from_bytes(name.as_bytes()).map_err(|_| MetadataError::InvalidName(name))?;
            self.0.append_bin(key, BinaryMetadataValue::from_bytes(&bytes));
            return Ok(());
        }
        if let Some(at) = value.bytes().position(|byte| !(b' '..=b'~').contains(&byte)) {
            return Err(MetadataError::InvalidValue { name, at });
        }
        let value = AsciiMetadataValue::try_from(value)
            .map_err(|_| MetadataError::InvalidValue { name: name.clone(), at: 0 })?;
        let key = AsciiMetadataKey::from_bytes(name.as_bytes()).map_err(|_| MetadataError::InvalidName(name))?;
        self.0.append(key, value);
        Ok(())
    }

    /// Whether a header `name` is there.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name.to_ascii_lowercase().as_str())
    }

    /// Whether there are no headers.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the headers to `request`'s metadata.
    pub(in crate::client) fn apply<M>(&self, request: &mut Request<M>) {
        let metadata = request.metadata_mut();
        for entry in self.0.iter() {
            match entry {
                KeyAndValueRef::Ascii(key, value) => metadata.append(key.clone(), value.clone()),
                KeyAndValueRef::Binary(key, value) => metadata.append_bin(key.clone(), value.clone()),
            };
        }
    }

    /// The headers as they go on the wire (binary ones in base64), for
    /// xDS route matching.
    pub(in crate::client) fn headers(&self) -> HeaderMap {
        self.0.clone().into_headers()
    }
}

/// Names only: a value may be a secret.
impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.0.keys().map(|key| match key {
                tonic::metadata::KeyRef::Ascii(key) => key.as_str(),
                tonic::metadata::KeyRef::Binary(key) => key.as_str(),
            }))
            .finish()
    }
}

/// `name` lowercased, if gRPC may send it and the caller may set it.
fn checked_name(name: &str) -> Result<String, MetadataError> {
    let name = name.to_ascii_lowercase();
    let allowed = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte);
    if name.is_empty() || name.ends_with('-') || !name.bytes().all(allowed) {
        return Err(MetadataError::InvalidName(name));
    }
    if name.starts_with("grpc-") {
        return Err(MetadataError::Reserved { name, why: "gRPC's own (grpc-*)" });
    }
    match RESERVED.iter().find(|(reserved, _)| *reserved == name) {
        Some((_, why)) => Err(MetadataError::Reserved { name, why }),
        None => Ok(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(header: &str) -> String {
        Metadata::parse([header]).expect_err(header).to_string()
    }

    #[test]
    fn text_and_binary_headers_go_on_every_request_lowercased() {
        let metadata = Metadata::parse(["X-Shard: blue", "x-shard:green ", "x-trace-bin: AQID", "x-raw-bin:AQIDBA=="])
            .expect("valid");
        let mut request = Request::new(());
        metadata.apply(&mut request);
        let shards: Vec<_> = request.metadata().get_all("x-shard").iter().map(|v| v.to_str().expect("ASCII")).collect();
        assert_eq!(shards, ["blue", "green"]);
        let trace = request.metadata().get_bin("x-trace-bin").expect("binary").to_bytes().expect("base64");
        assert_eq!(&trace[..], [1, 2, 3]);
        let raw = request.metadata().get_bin("x-raw-bin").expect("binary").to_bytes().expect("base64");
        assert_eq!(&raw[..], [1, 2, 3, 4], "padded base64 too");
        assert!(metadata.contains("X-SHARD"));
        assert_eq!(metadata.headers().get_all("x-shard").iter().count(), 2);
        assert_eq!(format!("{metadata:?}"), r#"{"x-shard", "x-trace-bin", "x-raw-bin"}"#, "names only");
    }

    #[test]
    fn bad_headers_are_refused_naming_the_header_and_never_quoting_the_value() {
        assert_eq!(
            refused("authorization Bearer s3cret"),
            "a header is `name: value`, and `authorization` has no colon"
        );
        assert!(refused("x y: 1").contains("`x y` is not a header name gRPC sends"));
        assert!(refused("x-é: 1").contains("is not a header name gRPC sends"));
        let empty = Metadata::new().append("", "1").expect_err("no name").to_string();
        assert!(empty.starts_with("`` is not a header name"), "{empty}");
        assert_eq!(
            refused(":authority: evil"),
            "`:authority` is reserved: an HTTP/2 pseudo-header, which the client sets"
        );
        assert_eq!(refused("grpc-timeout: 1S"), "`grpc-timeout` is reserved: gRPC's own (grpc-*)");
        for name in ["content-type", "Te", "user-agent", "host", "connection", "transfer-encoding"] {
            assert!(refused(&format!("{name}: x")).contains("is reserved"), "{name}");
        }
        let value = refused("x-secret: s3cr\u{e9}t");
        assert!(
            value.starts_with("the value of `x-secret` has a character gRPC metadata cannot hold at byte 4"),
            "{value}"
        );
        assert!(!value.contains("s3cr"), "{value}");
        assert_eq!(
            refused("x-blob-bin: not base64!"),
            "the value of `x-blob-bin` is not base64 (a `-bin` header's value is base64, padded or not)"
        );
        assert!(Metadata::parse(["x-empty:"]).is_ok(), "an empty value is a value");
    }
}
