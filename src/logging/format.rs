//! Durations and timestamps for a log line, written as tracing-subscriber
//! writes them (tests compare the bytes), with integer arithmetic and a
//! date formatted once a second.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::time::{Duration, UNIX_EPOCH};

/// A duration for a log line: written as `Debug` writes a [`Duration`]
/// (`71.234ms`, `1.5s`, `800ns`: the largest unit under which it is at least
/// 1, every significant digit, no trailing zeros), with integer arithmetic
/// instead of `Debug`'s general decimal formatting.
#[derive(Clone, Copy)]
pub(super) struct Elapsed(pub(super) Duration);

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        // The whole part, the rest below it, the rest's first digit's weight.
        let (whole, mut rest, mut weight, unit) = if secs > 0 {
            (secs, nanos, 100_000_000, "s")
        } else if nanos >= 1_000_000 {
            (u64::from(nanos / 1_000_000), nanos % 1_000_000, 100_000, "ms")
        } else if nanos >= 1_000 {
            (u64::from(nanos / 1_000), nanos % 1_000, 100, "µs")
        } else {
            (u64::from(nanos), 0, 1, "ns")
        };
        write!(f, "{whole}")?;
        if rest > 0 {
            f.write_char('.')?;
            while rest > 0 && weight > 0 {
                f.write_char(char::from(b'0' + (rest / weight) as u8))?;
                rest %= weight;
                weight /= 10;
            }
        }
        f.write_str(unit)
    }
}

/// 10000-01-01T00:00:00Z in seconds since the epoch: four-digit years only.
pub(super) const YEAR_10000: u64 = 253_402_300_800;

thread_local! {
    /// The last second formatted on this thread, and its
    /// `YYYY-MM-DDTHH:MM:SS.` text.
    static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ ` (RFC 3339, UTC, microseconds), as
/// tracing-subscriber writes it and as humantime's `format_rfc3339_micros`
/// does (a test compares them); `now` is since the epoch, before year 10000.
/// The date is formatted once a second per thread; only the microseconds
/// are written per line.
pub(super) fn write_timestamp(writer: &mut impl fmt::Write, now: Duration) -> fmt::Result {
    let secs = now.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = second_text(secs)?;
        SECOND.set((secs, text));
    }
    // ASCII digits and separators only.
    writer.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)?;
    let mut micros = [b'0'; 8];
    let mut value = now.subsec_micros();
    for digit in micros[..6].iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    micros[6] = b'Z';
    micros[7] = b' ';
    writer.write_str(std::str::from_utf8(&micros).map_err(|_| fmt::Error)?)
}

/// `YYYY-MM-DDTHH:MM:SS.` for `secs` since the epoch: humantime's RFC 3339
/// text of that second, its `Z` replaced by the decimal point. Fails past
/// year 9999, which humantime does not write.
fn second_text(secs: u64) -> Result<[u8; 20], fmt::Error> {
    let mut text = *b"0000-00-00T00:00:00.";
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(secs)).ok_or(fmt::Error)?;
    let mut second = String::with_capacity(text.len());
    write!(second, "{}", humantime::format_rfc3339_seconds(at))?;
    text[..19].copy_from_slice(second.as_bytes().get(..19).ok_or(fmt::Error)?);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_as_durations_debug() {
        let cases = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999),
            Duration::from_nanos(1_000),
            Duration::from_nanos(1_001),
            Duration::from_micros(71_234),
            Duration::from_nanos(71_234_567),
            Duration::from_millis(1_500),
            Duration::new(1, 1),
            Duration::new(59, 999_999_999),
            Duration::new(u64::MAX, 999_999_999),
        ];
        for duration in cases {
            assert_eq!(format!("{:?}", Elapsed(duration)), format!("{duration:?}"));
        }
    }

    proptest::proptest! {
        #[test]
        fn elapsed_reads_as_durations_debug_for_any(secs in 0u64..100_000, nanos in 0u32..1_000_000_000) {
            let duration = Duration::new(secs % 3 * secs, nanos);
            proptest::prop_assert_eq!(format!("{:?}", Elapsed(duration)), format!("{duration:?}"));
        }
    }

    #[test]
    fn timestamps_are_rfc3339_microseconds() {
        let at = |secs: u64, micros: u32| {
            let mut text = String::new();
            write_timestamp(&mut text, Duration::new(secs, micros * 1_000)).expect("written");
            text
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z ");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z ");
        assert_eq!(at(951_868_799, 999_999), "2000-02-29T23:59:59.999999Z ");
        assert_eq!(at(1_709_251_199, 123_456), "2024-02-29T23:59:59.123456Z ");
        assert_eq!(at(1_796_083_200, 5), "2026-12-01T00:00:00.000005Z ");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z ");
        assert_eq!(at(YEAR_10000 - 1, 0), "9999-12-31T23:59:59.000000Z ");
        // The cached second is reused within it and replaced after it.
        assert_eq!(at(1_796_083_200, 6), "2026-12-01T00:00:00.000006Z ");
        assert_eq!(at(1_796_083_201, 0), "2026-12-01T00:00:01.000000Z ");
    }

    proptest::proptest! {
        #[test]
        fn timestamps_are_humantimes_bytes(secs in 0..YEAR_10000, micros in 0u32..1_000_000) {
            let now = Duration::new(secs, micros * 1_000);
            let mut ours = String::new();
            write_timestamp(&mut ours, now).expect("written");
            let theirs = format!("{} ", humantime::format_rfc3339_micros(UNIX_EPOCH + now));
            proptest::prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn timestamps_past_year_9999_are_refused() {
        let mut text = String::new();
        assert!(write_timestamp(&mut text, Duration::from_secs(YEAR_10000)).is_err());
    }
}
