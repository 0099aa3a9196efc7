//! Following the HTTP/2 frames of one direction of a connection, however
//! the bytes are cut, for the frame watch (`watch.rs`): each frame's header,
//! and each RST_STREAM's error code.

/// The length of a frame header.
pub(super) const FRAME_HEADER: usize = 9;

/// Frame types (RFC 9113, section 6).
pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;

/// The header of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
}

/// What a [`Cursor`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// A frame's header.
    Frame(Head),
    /// A RST_STREAM's error code, once its bytes are in.
    Reset { stream: u32, code: u32 },
}

/// Follows the frames of one direction across reads or writes, however the
/// bytes are cut: it keeps a frame header until it is whole, then skips the
/// payload, but for a RST_STREAM's error code.
#[derive(Debug, Default)]
pub(super) struct Cursor {
    header: [u8; FRAME_HEADER],
    /// Bytes of the current frame header so far.
    pub(super) have: usize,
    /// Payload bytes of the current frame still to come.
    pub(super) payload_left: usize,
    /// The RST_STREAM whose error code is coming, and its bytes so far.
    reset: Option<u32>,
    code: [u8; 4],
    code_have: usize,
}

impl Cursor {
    /// Whether the bytes so far end exactly at the end of a frame.
    pub(super) fn at_boundary(&self) -> bool {
        self.have == 0 && self.payload_left == 0
    }

    /// Follows `data`, calling `seen` with each frame header completed and
    /// each RST_STREAM's code.
    pub(super) fn feed(&mut self, mut data: &[u8], mut seen: impl FnMut(Seen)) {
        while !data.is_empty() {
            if let Some(stream) = self.reset {
                let take = (4 - self.code_have).min(data.len());
                self.code[self.code_have..self.code_have + take].copy_from_slice(&data[..take]);
                (self.code_have, self.payload_left, data) =
                    (self.code_have + take, self.payload_left - take, &data[take..]);
                if self.code_have == 4 {
                    self.reset = None;
                    seen(Seen::Reset { stream, code: u32::from_be_bytes(self.code) });
                }
                continue;
            }
            if self.payload_left > 0 {
                let skip = self.payload_left.min(data.len());
                self.payload_left -= skip;
                data = &data[skip..];
                continue;
            }
            let take = (FRAME_HEADER - self.have).min(data.len());
            self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have == FRAME_HEADER {
                let h = &self.header;
                self.payload_left = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                self.have = 0;
                if h[3] == RST_STREAM && self.payload_left >= 4 {
                    (self.reset, self.code_have) = (Some(stream), 0);
                }
                seen(Seen::Frame(Head { kind: h[3], flags: h[4], stream }));
            }
        }
    }
}

/// One frame's bytes, for the unit tests.
#[cfg(test)]
pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small").to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_however_the_bytes_are_cut() {
        let frames =
            [frame(SETTINGS, 0, 0, &[0; 6]), frame(RST_STREAM, 0, 3, &[0, 0, 0, 7]), frame(DATA, 1, 1, &[9; 40])];
        let bytes = frames.concat();
        for cut in 0..bytes.len() {
            let mut cursor = Cursor::default();
            let mut seen = Vec::new();
            let kind = |seen: Seen| match seen {
                Seen::Frame(head) => (head.kind, head.stream),
                Seen::Reset { stream, code } => (0xff - u8::try_from(code).expect("small"), stream),
            };
            cursor.feed(&bytes[..cut], |s| seen.push(kind(s)));
            for byte in &bytes[cut..] {
                cursor.feed(std::slice::from_ref(byte), |s| seen.push(kind(s)));
            }
            assert_eq!(seen, [(SETTINGS, 0), (RST_STREAM, 3), (0xff - 7, 3), (DATA, 1)], "cut at {cut}");
            assert!(cursor.at_boundary());
        }
    }
}
