//! The fuzz targets of a request's headers (see `mod.rs`): `grpc-timeout`
//! and Connect's `connect-timeout-ms`, the trace context, the accept
//! lists, binary metadata.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::metadata::{KeyAndValueRef, MetadataMap};

use super::Input;
use crate::server::ServerConfig;
use crate::server::calls::CallPolicy;
use crate::server::protocols::compression::Encoding;
use crate::server::protocols::connect_timeout;
use crate::traces::{extract, format_traceparent, parse_grpc_trace_bin, parse_traceparent};

/// The longest deadline the fuzz targets' policy grants.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// The per-call policy the targets use: the defaults, a cap they know.
pub(super) fn policy() -> CallPolicy {
    let config = ServerConfig { max_timeout: MAX_TIMEOUT, ..ServerConfig::default() };
    CallPolicy::new(&config, CancellationToken::new())
}

/// A `grpc-timeout` value as the per-call policy reads it, against the
/// spec's grammar (1 to 8 digits, then H, M, S, m, u or n); and a Connect
/// `connect-timeout-ms` value made into a `grpc-timeout` that means the
/// same (rounded up to whole seconds past 8 digits of milliseconds).
pub fn grpc_timeout(data: &[u8]) {
    // What hyper takes as a header value; nothing else reaches the server.
    let Ok(value) = HeaderValue::from_bytes(data) else { return };
    let mut headers = HeaderMap::new();
    headers.insert("grpc-timeout", value.clone());
    let read = policy().timeout(&headers).map_err(|status| status.code());
    let expected = match spec_timeout(data) {
        None => Err(Code::InvalidArgument),
        Some(Duration::ZERO) => Err(Code::DeadlineExceeded),
        Some(asked) => Ok(asked.min(MAX_TIMEOUT)),
    };
    assert_eq!(read, expected, "grpc-timeout {value:?}");

    let millis = std::str::from_utf8(data)
        .ok()
        .filter(|digits| (1..=10).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u64>().ok());
    match (connect_timeout(&value), millis) {
        (Ok(grpc), Some(millis)) => {
            let asked = Duration::from_millis(millis);
            let means = spec_timeout(grpc.as_bytes()).unwrap_or_else(|| panic!("{grpc:?} from {value:?}"));
            assert!(means >= asked && means - asked < Duration::from_secs(1), "{value:?} became {grpc:?}");
        }
        (Err(status), None) => assert_eq!(status.code(), Code::InvalidArgument),
        (converted, millis) => panic!("connect-timeout-ms {value:?}: {converted:?}, expected {millis:?} ms"),
    }
}

/// The spec's `grpc-timeout`, read plainly: `None` unless 1 to 8 ASCII
/// digits and a unit.
fn spec_timeout(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?;
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if !(1..=8).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u128 = digits.parse().ok()?;
    let nanos_per: u128 = match unit {
        'H' => 3_600_000_000_000,
        'M' => 60_000_000_000,
        'S' => 1_000_000_000,
        'm' => 1_000_000,
        'u' => 1_000,
        'n' => 1,
        _ => return None,
    };
    let nanos = n * nanos_per;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, u32::try_from(nanos % 1_000_000_000).ok()?))
}

/// The request headers a server reads, by name; a fuzzed name past these
/// is its own bytes.
pub(super) const HEADER_NAMES: &[&str] = &[
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "te",
    "traceparent",
    "tracestate",
    "grpc-trace-bin",
    "connect-protocol-version",
    "connect-timeout-ms",
    "content-encoding",
    "accept-encoding",
    "connect-content-encoding",
    "connect-accept-encoding",
    "content-type",
    "user-agent",
    "authorization",
    "origin",
    "host",
    "if-none-match",
    "x-user-bin",
    "x-grpc-test-echo-initial",
    "x-grpc-test-echo-trailing-bin",
];

/// Up to 7 headers: each a name (one of [`HEADER_NAMES`], or its own bytes)
/// and a value, as hyper would hand them on (what it refuses is left out).
pub(super) fn headers(input: &mut Input<'_>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for _ in 0..input.byte() % 8 {
        let index = usize::from(input.byte());
        let name = match HEADER_NAMES.get(index) {
            Some(name) => HeaderName::from_static(name),
            None => match HeaderName::from_bytes(input.short()) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        if let Ok(value) = HeaderValue::from_bytes(input.short()) {
            headers.append(name, value);
        }
    }
    headers
}

/// Request metadata through every reader of it: the trace context
/// (`traceparent`, `tracestate`, base64 `grpc-trace-bin`), the deadline,
/// the accept lists, and binary (`-bin`) values as tonic decodes them for
/// a handler; then a `traceparent` and a `grpc-trace-bin` value each
/// written back as read and read again the same.
pub fn metadata(data: &[u8]) {
    let mut input = Input::new(data);
    let headers = headers(&mut input);
    if let Some(parent) = extract(&headers) {
        assert!(parent.is_valid() && parent.is_remote(), "{parent:?}");
    }
    let _ = policy().timeout(&headers);
    for name in ["grpc-accept-encoding", "accept-encoding", "connect-accept-encoding"] {
        for value in headers.get_all(name).iter().filter_map(|value| value.to_str().ok()) {
            let _ = Encoding::choose(value);
        }
    }
    for entry in MetadataMap::from_headers(headers.clone()).iter() {
        if let KeyAndValueRef::Binary(_, value) = entry {
            let _ = value.to_bytes();
        }
    }
    let (traceparent, tracestate) = (input.short(), input.short());
    if let Some(parent) = parse_traceparent(traceparent, Some(tracestate)) {
        let written = format_traceparent(&parent);
        let again = parse_traceparent(written.as_bytes(), None).unwrap_or_else(|| panic!("{written} unread"));
        assert_eq!(
            (again.trace_id(), again.span_id(), again.trace_flags()),
            (parent.trace_id(), parent.span_id(), parent.trace_flags())
        );
    }
    if let Some(parent) = parse_grpc_trace_bin(input.rest()) {
        let mut written = vec![0, 0];
        written.extend_from_slice(&parent.trace_id().to_bytes());
        written.push(1);
        written.extend_from_slice(&parent.span_id().to_bytes());
        written.extend_from_slice(&[2, parent.trace_flags().to_u8()]);
        assert_eq!(parse_grpc_trace_bin(&written).as_ref(), Some(&parent), "grpc-trace-bin written back");
    }
}
