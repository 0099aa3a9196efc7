//! A size flag's value ([`ByteSize`]): a number of bytes with an optional
//! binary unit. The `bytesize` crate (checked) also takes decimal units and
//! fractions (`1.5MB`) and writes `4.0 MiB`, where these flags take whole
//! binary units and `--help` shows a default as it is typed (`4MiB`).

use std::fmt;
use std::str::FromStr;

/// A size in bytes, written as a number with an optional binary unit:
/// `4194304`, `4MiB`, `512KiB`, `1GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let scale: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => return Err(format!("unknown unit {other:?} (use B, KiB, MiB or GiB)")),
        };
        let number: usize = number.parse().map_err(|_| format!("{text:?} is not a size such as 4MiB"))?;
        match number.checked_mul(scale) {
            Some(0) => Err("a size must be more than 0".to_owned()),
            Some(bytes) => Ok(Self(bytes)),
            None => Err(format!("{text} is too large")),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if bytes >= scale && bytes.is_multiple_of(scale) {
                return write!(f, "{}{unit}", bytes / scale);
            }
        }
        write!(f, "{bytes}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print_with_binary_units() {
        assert_eq!("4MiB".parse::<ByteSize>(), Ok(ByteSize(4 << 20)));
        assert_eq!("4194304".parse::<ByteSize>(), Ok(ByteSize(4 << 20)));
        assert_eq!("512 KiB".parse::<ByteSize>(), Ok(ByteSize(512 << 10)));
        assert_eq!(ByteSize(4 << 20).to_string(), "4MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        assert!("4MB".parse::<ByteSize>().unwrap_err().contains("unknown unit"));
        assert!("0".parse::<ByteSize>().is_err());
        assert!("99999999999GiB".parse::<ByteSize>().is_err());
    }
}
