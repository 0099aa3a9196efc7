//! The 5-byte envelope that gRPC, gRPC-Web and the Connect protocol all put
//! around each message of a stream: a flags byte and a big-endian length.
//! The bytes are the same in all three, so one splitter serves every
//! protocol that has to look inside a body. tonic's codec and tonic-web
//! (checked) each split envelopes too, privately: neither offers its
//! splitter or its prefix writer to use on a body of one's own.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The length of the prefix: one flags byte, four length bytes.
pub(in crate::server) const PREFIX_LEN: usize = 5;
/// The flag of a compressed message.
pub(in crate::server) const COMPRESSED: u8 = 0x01;
/// Connect's flag of the end-of-stream message (JSON with the error and
/// trailers), the last envelope of a streaming response.
pub(super) const END_STREAM: u8 = 0x02;

/// `message` in an envelope with `flags`.
pub(in crate::server) fn encode(flags: u8, message: &[u8]) -> Bytes {
    let mut out = prefixed(flags, message.len());
    out.put_slice(message);
    out.freeze()
}

/// A protobuf `message` encoded straight into an uncompressed envelope.
pub(in crate::server) fn encode_message(message: &impl prost::Message) -> Bytes {
    let mut out = prefixed(0, message.encoded_len());
    message.encode_raw(&mut out);
    out.freeze()
}

/// A buffer for a message of `len` bytes, holding its prefix so far.
fn prefixed(flags: u8, len: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(PREFIX_LEN + len);
    out.put_u8(flags);
    // Messages are bounded by the limits well below 4 GiB.
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    out
}

/// Follows the envelopes of a body through its chunks without buffering
/// them: each prefix is handed over as soon as it is whole, and where a
/// body ends is known to be a boundary or not.
#[derive(Debug, Default)]
pub(in crate::server) struct Follower {
    prefix: [u8; PREFIX_LEN],
    /// Bytes of the current prefix seen.
    have: usize,
    /// Bytes of the current message still to come.
    rest: usize,
    /// The length of the current message.
    len: usize,
}

/// Where a body ended, when not between two envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// Inside a prefix: this many of its bytes.
    InPrefix(usize),
    /// Inside a message: this many of its bytes, of so many.
    InMessage(usize, usize),
}

impl Follower {
    /// Follows `data`, calling `prefix` with the flags and length of each
    /// envelope whose prefix completes; stops at its first error. The count
    /// of prefixes completed.
    pub(in crate::server) fn follow<E>(
        &mut self,
        mut data: &[u8],
        mut prefix: impl FnMut(u8, usize) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut begun = 0;
        while !data.is_empty() {
            if self.rest > 0 {
                let n = self.rest.min(data.len());
                self.rest -= n;
                data = &data[n..];
                continue;
            }
            let n = (PREFIX_LEN - self.have).min(data.len());
            self.prefix[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have < PREFIX_LEN {
                break;
            }
            self.have = 0;
            let [flags, len @ ..] = self.prefix;
            let len = u32::from_be_bytes(len) as usize;
            prefix(flags, len)?;
            begun += 1;
            self.len = len;
            self.rest = len;
        }
        Ok(begun)
    }

    /// Where the body ends if it ends here; none on a boundary.
    pub(super) fn cut(&self) -> Option<Cut> {
        if self.have > 0 {
            return Some(Cut::InPrefix(self.have));
        }
        (self.rest > 0).then_some(Cut::InMessage(self.len - self.rest, self.len))
    }
}

/// One whole envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::server) struct Envelope {
    /// The flags byte.
    pub flags: u8,
    /// The message, as sent (compressed when `flags` says so).
    pub data: Bytes,
}

/// An envelope longer than the splitter's limit: its announced length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) struct TooLarge(pub usize);

/// Splits a body into whole envelopes however it arrives in chunks, and
/// refuses one whose prefix announces more than `limit` bytes before any
/// of it is buffered.
#[derive(Debug)]
pub(in crate::server) struct Splitter {
    buffer: BytesMut,
    limit: usize,
}

impl Splitter {
    /// A splitter for messages of at most `limit` bytes.
    pub(in crate::server) fn new(limit: usize) -> Self {
        Self { buffer: BytesMut::new(), limit }
    }

    /// Adds the next chunk of the body.
    pub(in crate::server) fn push(&mut self, mut chunk: impl Buf) {
        while chunk.has_remaining() {
            let part = chunk.chunk();
            self.buffer.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }

    /// The next whole envelope, if one has arrived.
    ///
    /// # Errors
    /// [`TooLarge`] when the next prefix announces more than the limit.
    pub(in crate::server) fn next(&mut self) -> Result<Option<Envelope>, TooLarge> {
        if self.buffer.len() < PREFIX_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buffer[1], self.buffer[2], self.buffer[3], self.buffer[4]]) as usize;
        if len > self.limit {
            return Err(TooLarge(len));
        }
        if self.buffer.len() < PREFIX_LEN + len {
            // Room for the rest at once, not in doublings.
            self.buffer.reserve(PREFIX_LEN + len - self.buffer.len());
            return Ok(None);
        }
        let flags = self.buffer[0];
        self.buffer.advance(PREFIX_LEN);
        Ok(Some(Envelope { flags, data: self.buffer.split_to(len).freeze() }))
    }

    /// Bytes of an envelope that has not arrived whole: at the end of the
    /// body, anything but 0 means it was cut short.
    pub(in crate::server) fn pending(&self) -> usize {
        self.buffer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_come_out_whole_however_the_body_is_cut() {
        let body: Vec<u8> = [encode(0, b"first"), encode(COMPRESSED, b""), encode(END_STREAM, b"{}")].concat();
        for cut in 0..=body.len() {
            let mut splitter = Splitter::new(100);
            let mut seen = Vec::new();
            for chunk in [&body[..cut], &body[cut..]] {
                splitter.push(chunk);
                while let Some(envelope) = splitter.next().expect("within the limit") {
                    seen.push((envelope.flags, envelope.data));
                }
            }
            assert_eq!(
                seen,
                [
                    (0, Bytes::from_static(b"first")),
                    (COMPRESSED, Bytes::new()),
                    (END_STREAM, Bytes::from_static(b"{}"))
                ],
                "cut at {cut}"
            );
            assert_eq!(splitter.pending(), 0);
        }
    }

    #[test]
    fn a_long_envelope_is_refused_from_its_prefix() {
        let mut splitter = Splitter::new(10);
        splitter.push(&encode(0, &[7; 11])[..PREFIX_LEN]);
        assert_eq!(splitter.next(), Err(TooLarge(11)));
        let mut short = Splitter::new(10);
        short.push(&encode(0, b"abc")[..6]);
        assert_eq!(short.next(), Ok(None));
        assert_eq!(short.pending(), 6, "a cut envelope is left pending");
    }

    proptest::proptest! {
        #[test]
        fn envelopes_split_as_written_however_they_arrive(
            messages in proptest::collection::vec((0u8..4, proptest::collection::vec(0u8..=255, 0..100)), 0..6),
            cuts in proptest::collection::vec(0usize..700, 0..8),
        ) {
            let body: Vec<u8> = messages.iter().flat_map(|(flags, m)| encode(*flags, m).to_vec()).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
            cuts.sort_unstable();
            let mut splitter = Splitter::new(100);
            let mut seen = Vec::new();
            let mut from = 0;
            for to in cuts.into_iter().chain([body.len()]) {
                splitter.push(&body[from..to]);
                from = to;
                while let Some(envelope) = splitter.next().expect("within the limit") {
                    seen.push((envelope.flags, envelope.data.to_vec()));
                }
            }
            proptest::prop_assert_eq!(seen, messages);
            proptest::prop_assert_eq!(splitter.pending(), 0);
        }

        #[test]
        fn any_bytes_split_without_a_panic(chunks in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..30), 0..6)) {
            let mut splitter = Splitter::new(50);
            for chunk in &chunks {
                splitter.push(&chunk[..]);
                while let Ok(Some(_)) = splitter.next() {}
            }
        }
    }
}
