//! Message compression on the server: the encodings it takes (`gzip`,
//! `deflate`, `zstd`), which one a client's accept list chooses, inflating a
//! message without ever growing it past the size limit (a decompression
//! bomb stops at the limit, it is never allocated whole), and compressing an
//! answer when it is large enough for that to pay.
//!
//! gRPC requests are inflated by tonic's own decoder, which writes into a
//! buffer bounded by the same limit; Connect's are inflated here. tonic's
//! compress and decompress functions (checked) are private to its codec,
//! and tower-http's compression works on whole HTTP bodies
//! (`content-encoding`), not on each message; flate2 and zstd do the work.

use std::io::{self, Read, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};
use tonic::Status;
use tonic::codec::CompressionEncoding;

/// The encodings the server takes and sends, in its order of preference.
pub(in crate::server) const ENCODINGS: [Encoding; 3] = [Encoding::Gzip, Encoding::Zstd, Encoding::Deflate];

/// What `grpc-accept-encoding` (and Connect's accept headers) advertise.
pub(in crate::server) const ACCEPTED: &str = "gzip,zstd,deflate";

/// An answer smaller than this is sent as it is: compressing a few bytes
/// costs more than it saves (the gzip header alone is 18 bytes).
pub(in crate::server) const MIN_COMPRESS_BYTES: usize = 1024;

/// A compression the server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum Encoding {
    /// RFC 1952 gzip.
    Gzip,
    /// zlib (RFC 1950), what gRPC and HTTP call `deflate`.
    Deflate,
    /// Zstandard.
    Zstd,
}

impl Encoding {
    /// The encoding named `name`, if the server has it (`identity` is no
    /// encoding, and not one of these).
    pub(in crate::server) fn parse(name: &str) -> Option<Self> {
        match name.trim() {
            "gzip" => Some(Self::Gzip),
            "deflate" => Some(Self::Deflate),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The name in headers.
    pub(in crate::server) fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Zstd => "zstd",
        }
    }

    /// tonic's name for it, to let its decoder inflate gRPC requests.
    pub(in crate::server) fn tonic(self) -> CompressionEncoding {
        match self {
            Self::Gzip => CompressionEncoding::Gzip,
            Self::Deflate => CompressionEncoding::Deflate,
            Self::Zstd => CompressionEncoding::Zstd,
        }
    }

    /// The first encoding of a client's accept list (`gzip, deflate`, in
    /// the client's order) that the server has.
    pub(in crate::server) fn choose(accepted: &str) -> Option<Self> {
        // `q` weights are not part of gRPC's list; take the names only.
        accepted.split(',').filter_map(|item| Self::parse(item.split(';').next().unwrap_or_default())).next()
    }

    /// `data` compressed.
    pub(in crate::server) fn compress(self, data: &[u8]) -> Bytes {
        // Writing into a Vec cannot fail.
        let compressed = match self {
            Self::Gzip => {
                let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 2), Compression::fast());
                encoder.write_all(data).and_then(|()| encoder.finish())
            }
            Self::Deflate => {
                let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 2), Compression::fast());
                encoder.write_all(data).and_then(|()| encoder.finish())
            }
            Self::Zstd => zstd::bulk::compress(data, 1),
        };
        Bytes::from(compressed.unwrap_or_default())
    }

    /// `data` inflated, stopping as soon as it would pass `limit` bytes.
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED when the message inflates past `limit` (naming
    /// `--max-recv-bytes`), INVALID_ARGUMENT when it is not valid data.
    pub(in crate::server) fn inflate(self, data: &[u8], limit: usize) -> Result<Bytes, Status> {
        let corrupt = |err: io::Error| {
            Status::invalid_argument(format!("the request message is not valid {} data: {err}", self.name()))
        };
        // One byte past the limit tells "over" from "exactly at it".
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        let mut out = Vec::with_capacity(limit.min(data.len().saturating_mul(4)));
        let read = match self {
            Self::Gzip => GzDecoder::new(data).take(cap).read_to_end(&mut out),
            Self::Deflate => ZlibDecoder::new(data).take(cap).read_to_end(&mut out),
            Self::Zstd => zstd::stream::read::Decoder::new(data).and_then(|d| d.take(cap).read_to_end(&mut out)),
        };
        read.map_err(corrupt)?;
        if out.len() > limit {
            return Err(inflated_too_large(limit));
        }
        Ok(Bytes::from(out))
    }
}

/// RESOURCE_EXHAUSTED for a message that inflates past `limit`.
pub(in crate::server) fn inflated_too_large(limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "the request message inflates to more than the server's limit of {limit} bytes (--max-recv-bytes)"
    ))
}

/// UNIMPLEMENTED for a request compressed with `name`.
pub(in crate::server) fn unsupported(name: &str, header: &str) -> Status {
    Status::unimplemented(format!(
        "the request is compressed with {name:?} ({header}), which this server does not support; \
         it accepts gzip, zstd and deflate"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips() {
        let text = "banana ".repeat(1000);
        for encoding in ENCODINGS {
            let compressed = encoding.compress(text.as_bytes());
            assert!(compressed.len() < text.len() / 10, "{encoding:?} compresses");
            let inflated = encoding.inflate(&compressed, 1 << 20).expect("inflates");
            assert_eq!(inflated, text.as_bytes(), "{encoding:?}");
            assert_eq!(Encoding::parse(encoding.name()), Some(encoding));
        }
        assert_eq!(Encoding::parse("identity"), None);
        assert_eq!(Encoding::parse("br"), None);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        // 64 MiB of zeros is a few KiB of gzip.
        let zeros = vec![0u8; 64 << 20];
        for encoding in ENCODINGS {
            let bomb = encoding.compress(&zeros);
            assert!(bomb.len() < 1 << 20, "{encoding:?}: {} bytes", bomb.len());
            let status = encoding.inflate(&bomb, 4 << 20).expect_err("over the limit");
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            assert!(status.message().contains("limit of 4194304 bytes (--max-recv-bytes)"), "{}", status.message());
            // Exactly at the limit is fine.
            let at_limit = encoding.compress(&zeros[..4096]);
            assert_eq!(encoding.inflate(&at_limit, 4096).expect("at the limit").len(), 4096);
        }
        let status = Encoding::Gzip.inflate(b"not gzip", 100).expect_err("corrupt");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn the_clients_order_chooses() {
        assert_eq!(Encoding::choose("identity, deflate, gzip"), Some(Encoding::Deflate));
        assert_eq!(Encoding::choose("gzip;q=1.0, zstd"), Some(Encoding::Gzip));
        assert_eq!(Encoding::choose("identity"), None);
        assert_eq!(Encoding::choose("br,snappy"), None);
    }
}
