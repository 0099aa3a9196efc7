//! Reading protobuf fields the way every resource's rules need them:
//! messages decoded with a one-line error, durations checked, fractions
//! as shares of a million.

use std::time::Duration;

use prost::Message;

/// Decodes a protobuf message, the error as a line.
///
/// # Errors
/// The bytes are not the message.
pub(super) fn message<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, String> {
    M::decode(bytes).map_err(|err| format!("cannot decode the {what}: {err}"))
}

/// A protobuf Duration as a std one: negative, out of protobuf's range
/// (10,000 years) or with nanos of 1 s or more is an error naming `field`.
///
/// # Errors
/// The duration is not a valid protobuf Duration, or is negative.
pub(super) fn duration(value: &prost_types::Duration, field: &str) -> Result<Duration, String> {
    const MAX_SECONDS: i64 = 315_576_000_000;
    let bad = value.seconds < 0 || value.nanos < 0 || value.seconds > MAX_SECONDS || value.nanos >= 1_000_000_000;
    if bad {
        return Err(format!("{field} is not a valid duration ({}s {}ns)", value.seconds, value.nanos));
    }
    Ok(Duration::new(value.seconds.unsigned_abs(), value.nanos.unsigned_abs()))
}

/// An optional protobuf Duration, `default` when unset.
///
/// # Errors
/// As [`duration`].
pub(super) fn duration_or(
    value: Option<&prost_types::Duration>,
    field: &str,
    default: Duration,
) -> Result<Duration, String> {
    value.map_or(Ok(default), |v| duration(v, field))
}

/// A share out of a million: envoy's FractionalPercent (numerator over
/// 100, 10,000 or 1,000,000), capped at the whole.
#[must_use]
pub fn per_million(numerator: u32, denominator: i32) -> u32 {
    let scale = match denominator {
        1 => 100,    // TEN_THOUSAND
        2 => 1,      // MILLION
        _ => 10_000, // HUNDRED, and anything unknown as protobuf's default
    };
    numerator.saturating_mul(scale).min(1_000_000)
}

/// A duration in the dump as people write it ("2s", "25ms").
pub(super) fn human<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// An optional duration in the dump, as [`human`].
#[allow(clippy::ref_option)] // serde's serialize_with hands a reference
pub(super) fn human_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => human(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_checked() {
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(duration(&d(2, 5), "f"), Ok(Duration::new(2, 5)));
        assert!(duration(&d(-1, 0), "f").expect_err("negative").starts_with("f is not"));
        assert!(duration(&d(0, 1_000_000_000), "f").is_err());
        assert!(duration(&d(315_576_000_001, 0), "f").is_err());
    }

    #[test]
    fn fractions_are_per_million() {
        assert_eq!(per_million(5, 0), 50_000);
        assert_eq!(per_million(5, 1), 500);
        assert_eq!(per_million(5, 2), 5);
        assert_eq!(per_million(200, 0), 1_000_000);
    }
}
