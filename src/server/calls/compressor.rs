//! An answer's messages compressed as they pass, frame by frame: those of
//! [`compression::MIN_COMPRESS_BYTES`] or more, unless the handler chose
//! otherwise for a message ([`SendCompression`]).

use bytes::{Bytes, BytesMut};

use crate::server::protocols::SendCompression;
use crate::server::protocols::compression::{self, Encoding};
use crate::server::protocols::envelope;

/// Compresses an answer's messages of [`compression::MIN_COMPRESS_BYTES`]
/// or more, frame by frame, as they pass; smaller ones go as they are. A
/// handler's choice for a message ([`SendCompression`]) overrides the size.
pub(super) struct Compressor {
    encoding: Encoding,
    /// Bytes of a message begun in an earlier chunk, passed on as they are.
    rest_of_message: usize,
    /// The handler's choice for each message, when it makes them.
    choices: Option<SendCompression>,
}

impl Compressor {
    /// Compressing with `encoding`, as the handler's `choices` say when it
    /// makes them.
    pub(super) fn new(encoding: Encoding, choices: Option<SendCompression>) -> Self {
        Self { encoding, rest_of_message: 0, choices }
    }
}

impl Compressor {
    /// One chunk of the answer, its large messages compressed. tonic writes
    /// whole messages into a chunk, so a message is seen whole; one that is
    /// not (never, from tonic) passes through uncompressed, still valid.
    pub(super) fn chunk(&mut self, chunk: Bytes) -> Bytes {
        let mut out: Option<BytesMut> = None;
        let mut at = self.rest_of_message.min(chunk.len());
        self.rest_of_message -= at;
        let mut copied = 0;
        while chunk.len() - at >= envelope::PREFIX_LEN {
            let len = u32::from_be_bytes([chunk[at + 1], chunk[at + 2], chunk[at + 3], chunk[at + 4]]) as usize;
            let end = at + envelope::PREFIX_LEN + len;
            // Taken for every message, so that the next one gets its own.
            let choice = self.choices.as_ref().and_then(SendCompression::take);
            if end > chunk.len() {
                self.rest_of_message = end - chunk.len();
                break;
            }
            if chunk[at] == 0 && choice.unwrap_or(len >= compression::MIN_COMPRESS_BYTES) {
                let out = out.get_or_insert_with(|| BytesMut::with_capacity(chunk.len()));
                out.extend_from_slice(&chunk[copied..at]);
                let compressed = self.encoding.compress(&chunk[at + envelope::PREFIX_LEN..end]);
                out.extend_from_slice(&envelope::encode(envelope::COMPRESSED, &compressed));
                copied = end;
            }
            at = end;
        }
        match out {
            None => chunk,
            Some(mut out) => {
                out.extend_from_slice(&chunk[copied..]);
                out.freeze()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_answers_are_compressed_small_ones_pass_as_they_are() {
        let small = envelope::encode(0, b"tiny");
        let large_message = "banana ".repeat(400);
        let large = envelope::encode(0, large_message.as_bytes());
        let chunk = Bytes::from([small.to_vec(), large.to_vec(), small.to_vec()].concat());
        let mut compressor = Compressor::new(Encoding::Gzip, None);
        let out = compressor.chunk(chunk);
        assert_eq!(&out[..small.len()], &small[..], "the small message is untouched");
        let rest = &out[small.len()..];
        assert_eq!(rest[0], envelope::COMPRESSED);
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let inflated = Encoding::Gzip.inflate(&rest[5..5 + len], 1 << 20).expect("gzip");
        assert_eq!(inflated, large_message.as_bytes());
        assert_eq!(&rest[5 + len..], &small[..], "the message after it is untouched");

        // A chunk of small messages is passed on as it is, without a copy.
        let chunk = Bytes::from(small.to_vec());
        assert_eq!(compressor.chunk(chunk.clone()).as_ptr(), chunk.as_ptr());
        // A message cut across chunks passes through, and the next is found.
        let cut = large.len() - 10;
        let first = compressor.chunk(large.slice(..cut));
        let second = compressor.chunk(Bytes::from([&large[cut..], &small[..]].concat()));
        assert_eq!([first, second].concat(), [large.to_vec(), small.to_vec()].concat());
    }
}
