//! A call's trace context on the wire: W3C `traceparent` and `tracestate`
//! (<https://www.w3.org/TR/trace-context/>), and grpc's binary
//! `grpc-trace-bin` (the OpenCensus format). Parsed strictly: anything
//! malformed is no parent, never an error or a panic.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The W3C header naming the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header carrying vendors' state along the trace.
pub const TRACESTATE: &str = "tracestate";
/// grpc's binary metadata with the parent span (OpenCensus' format).
pub const GRPC_TRACE_BIN: &str = "grpc-trace-bin";

/// The parent in a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`),
/// with `tracestate` when it parses. A later version than `00` is read as
/// the spec says (its first four fields, more only after a dash); ids of all
/// zeros, upper-case hex and version `ff` are refused.
#[must_use]
pub fn parse_traceparent(value: &[u8], tracestate: Option<&[u8]>) -> Option<SpanContext> {
    let value = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    let mut fields = value.splitn(5, '-');
    let (version, trace_id, span_id, flags) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
    let rest = fields.next();
    let version = hex_u8(version)?;
    // Version 00 has exactly four fields; a later one may have more.
    if version == 0xff || (version == 0 && rest.is_some()) {
        return None;
    }
    if trace_id.len() != 32 || span_id.len() != 16 || !lower_hex(trace_id) || !lower_hex(span_id) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok().filter(|id| *id != TraceId::INVALID)?;
    let span_id = SpanId::from_hex(span_id).ok().filter(|id| *id != SpanId::INVALID)?;
    let flags = TraceFlags::new(hex_u8(flags)? & TraceFlags::SAMPLED.to_u8());
    // A tracestate that does not parse is dropped, the parent kept (W3C).
    let state = tracestate
        .and_then(|state| std::str::from_utf8(state).ok())
        .and_then(|state| state.parse::<TraceState>().ok())
        .unwrap_or_default();
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// Two lower-case hex digits.
fn hex_u8(text: &str) -> Option<u8> {
    (text.len() == 2 && lower_hex(text)).then(|| u8::from_str_radix(text, 16).ok()).flatten()
}

fn lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `traceparent` value for `context`: version 00, its ids and flags.
#[must_use]
pub fn format_traceparent(context: &SpanContext) -> String {
    format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), context.trace_flags().to_u8())
}

/// The parent in a `grpc-trace-bin` value: version 0, then field 0 (the
/// 16-byte trace id), field 1 (the 8-byte span id) and field 2 (one byte of
/// options, bit 0 sampled), each once and in that order; fields 0 and 1 are
/// required. A later field ends the parse (the format lets versions add
/// fields at the end); a field out of order, repeated or cut short, another
/// version, or ids of all zeros are no parent.
#[must_use]
pub fn parse_grpc_trace_bin(value: &[u8]) -> Option<SpanContext> {
    let (&version, mut rest) = value.split_first()?;
    if version != 0 {
        return None;
    }
    let (mut trace_id, mut span_id, mut options) = (None, None, 0u8);
    let mut next_field = 0u8;
    while let Some((&field, after)) = rest.split_first() {
        if field < next_field {
            return None;
        }
        match field {
            0 => trace_id = Some(<[u8; 16]>::try_from(after.get(..16)?).ok()?),
            1 => span_id = Some(<[u8; 8]>::try_from(after.get(..8)?).ok()?),
            2 => options = *after.first()?,
            _ => break,
        }
        rest = &after[[16, 8, 1][usize::from(field)]..];
        next_field = field + 1;
    }
    let trace_id = TraceId::from_bytes(trace_id?);
    let span_id = SpanId::from_bytes(span_id?);
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = TraceFlags::new(options & TraceFlags::SAMPLED.to_u8());
    Some(SpanContext::new(trace_id, span_id, flags, true, TraceState::NONE))
}

/// The parent a request names: `traceparent` (with `tracestate`) first,
/// else `grpc-trace-bin` (base64 in HTTP/2 metadata, padded or not).
#[must_use]
pub fn extract(headers: &http::HeaderMap) -> Option<SpanContext> {
    if let Some(parent) = headers.get(TRACEPARENT) {
        let state = headers.get(TRACESTATE).map(http::HeaderValue::as_bytes);
        if let Some(context) = parse_traceparent(parent.as_bytes(), state) {
            return Some(context);
        }
    }
    let binary = headers.get(GRPC_TRACE_BIN)?.as_bytes();
    // Headers are small: a value larger than any valid one is not read.
    if binary.len() > 64 {
        return None;
    }
    use base64::Engine as _;
    let trimmed = binary.strip_suffix(b"==").or_else(|| binary.strip_suffix(b"=")).unwrap_or(binary);
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed).ok()?;
    parse_grpc_trace_bin(&decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn traceparent_parses_the_w3c_example() {
        let context = parse_traceparent(PARENT.as_bytes(), Some(b"congo=t61rcWkgMzE")).expect("parsed");
        assert_eq!(context.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(context.span_id().to_string(), "b7ad6b7169203331");
        assert!(context.is_sampled());
        assert!(context.is_remote());
        assert_eq!(context.trace_state().get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(format_traceparent(&context), PARENT);
        let unsampled = parse_traceparent(PARENT.replace("-01", "-00").as_bytes(), None).expect("parsed");
        assert!(!unsampled.is_sampled());
        // A later version may add fields after a dash; its flags' unknown
        // bits are dropped.
        let later = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-09-what-ever";
        let context = parse_traceparent(later.as_bytes(), None).expect("a later version");
        assert_eq!(context.trace_flags(), TraceFlags::SAMPLED);
        // A tracestate that does not parse leaves the parent.
        let context = parse_traceparent(PARENT.as_bytes(), Some(b"=,=,\xff")).expect("parsed");
        assert_eq!(context.trace_state().header(), "");
    }

    #[test]
    fn traceparent_refuses_what_is_not_one() {
        let bad = [
            "",
            "00",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c0-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c--b7ad6b716920333-01",
            "00-0af7651916cd43dd8448eb211c8031é-b7ad6b7169203331-01",
        ];
        for value in bad {
            assert!(parse_traceparent(value.as_bytes(), None).is_none(), "{value:?}");
        }
        assert!(parse_traceparent(b"\xff\xfe", None).is_none());
    }

    /// A grpc-trace-bin value: version, then the fields given.
    fn binary(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = vec![0];
        for (field, bytes) in fields {
            out.push(*field);
            out.extend_from_slice(bytes);
        }
        out
    }

    const TRACE: [u8; 16] =
        [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
    const SPAN: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

    #[test]
    fn grpc_trace_bin_parses_the_opencensus_format() {
        let context = parse_grpc_trace_bin(&binary(&[(0, &TRACE), (1, &SPAN), (2, &[1])])).expect("parsed");
        assert_eq!(context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled());
        // Options are optional; a later field ends the parse.
        let context = parse_grpc_trace_bin(&binary(&[(0, &TRACE), (1, &SPAN)])).expect("no options");
        assert!(!context.is_sampled());
        assert!(parse_grpc_trace_bin(&binary(&[(0, &TRACE), (1, &SPAN), (2, &[3]), (7, b"later")])).is_some());
    }

    #[test]
    fn grpc_trace_bin_refuses_what_is_not_one() {
        let zeros = [0u8; 16];
        let bad: [Vec<u8>; 11] = [
            vec![],
            vec![0],
            vec![1, 0],
            [&[1u8][..], &binary(&[(0, &TRACE), (1, &SPAN)])[1..]].concat(),
            binary(&[(0, &TRACE)]),
            binary(&[(1, &SPAN)]),
            binary(&[(1, &SPAN), (0, &TRACE)]),
            binary(&[(0, &TRACE), (0, &TRACE), (1, &SPAN)]),
            binary(&[(0, &TRACE[..15])]),
            binary(&[(0, &TRACE), (1, &SPAN[..7])]),
            binary(&[(0, &zeros), (1, &SPAN)]),
        ];
        for value in &bad {
            assert!(parse_grpc_trace_bin(value).is_none(), "{value:?}");
        }
        assert!(parse_grpc_trace_bin(&binary(&[(0, &TRACE), (1, &[0; 8])])).is_none());
        assert!(parse_grpc_trace_bin(&binary(&[(0, &TRACE), (1, &SPAN), (2, &[])])).is_none());
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = parse_grpc_trace_bin(&bytes);
            let _ = parse_traceparent(&bytes, Some(&bytes));
        }
    }

    #[test]
    fn headers_prefer_traceparent_then_grpc_trace_bin() {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(binary(&[(0, &TRACE), (1, &SPAN), (2, &[1])]));
        let mut headers = http::HeaderMap::new();
        headers.insert(GRPC_TRACE_BIN, encoded.parse().expect("a header value"));
        let from_binary = extract(&headers).expect("from grpc-trace-bin");
        assert_eq!(from_binary.span_id().to_string(), "00f067aa0ba902b7");
        headers.insert(GRPC_TRACE_BIN, encoded.trim_end_matches('=').parse().expect("a header value"));
        assert_eq!(extract(&headers), Some(from_binary.clone()));
        headers.insert(TRACEPARENT, PARENT.parse().expect("a header value"));
        assert_eq!(extract(&headers).expect("from traceparent").span_id().to_string(), "b7ad6b7169203331");
        // A bad traceparent falls back to the binary one; bad both, none.
        headers.insert(TRACEPARENT, "00-bad".parse().expect("a header value"));
        assert_eq!(extract(&headers), Some(from_binary.clone()));
        headers.insert(GRPC_TRACE_BIN, "!!not base64".parse().expect("a header value"));
        assert_eq!(extract(&headers), None);
    }
}
