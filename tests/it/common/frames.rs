//! A raw HTTP/2 client for the abuse tests: it writes any frame, in any
//! order and number, which a real HTTP/2 library refuses to do, and reads
//! the server's frames back one by one.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// SETTINGS parameters.
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;

/// One frame, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// A GOAWAY's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAway {
    pub last_stream: u32,
    pub code: u32,
    pub debug: String,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// A GOAWAY, then the connection closed.
    GoAway(GoAway),
    /// Closed with no GOAWAY.
    Closed,
    /// Still open when the test stopped waiting.
    Open,
}

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a small frame").to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A header block for a gRPC call to `path`, in HPACK literals (no
/// indexing, no Huffman): every name and value under 127 bytes.
pub fn grpc_headers(path: &str) -> Vec<u8> {
    grpc_headers_with(path, &[])
}

/// [`grpc_headers`] and `extra` ones.
pub fn grpc_headers_with(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    let fields = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];
    for &(name, value) in fields.iter().chain(extra) {
        block.push(0x00);
        for text in [name, value] {
            block.push(u8::try_from(text.len()).expect("under 127 bytes"));
            block.extend_from_slice(text.as_bytes());
        }
    }
    block
}

/// An HPACK integer (RFC 7541, section 5.1): `value` in an `n`-bit prefix
/// after the high bits of `pattern`, then 7 bits a byte.
pub fn hpack_int(pattern: u8, n: u32, value: u64) -> Vec<u8> {
    let max = (1u64 << n) - 1;
    if value < max {
        return vec![pattern | u8::try_from(value).expect("under the prefix")];
    }
    let mut out = vec![pattern | u8::try_from(max).expect("a prefix")];
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
    out
}

/// A dynamic table size update to `size` (RFC 7541, section 6.3).
pub fn table_size_update(size: u64) -> Vec<u8> {
    hpack_int(0x20, 5, size)
}

/// A header field added to the dynamic table, its name new, its value
/// `value_len` bytes long of which only `value` follows (RFC 7541, section
/// 6.2.1): a length the bytes never reach is what a huge literal claims.
pub fn literal_indexed(name: &str, value_len: u64, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x40];
    out.extend(hpack_int(0, 7, name.len() as u64));
    out.extend_from_slice(name.as_bytes());
    out.extend(hpack_int(0, 7, value_len));
    out.extend_from_slice(value);
    out
}

/// A raw HTTP/2 connection, past its preface and SETTINGS.
pub struct Raw {
    socket: TcpStream,
    pending: Vec<u8>,
    /// The last GOAWAY read.
    goaway: Option<GoAway>,
}

impl Raw {
    /// Connects, sends the preface and an empty SETTINGS.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::over(TcpStream::connect(addr).await.expect("connect"), &[]).await
    }

    /// Sends the preface and a SETTINGS of `settings` on `socket`.
    pub async fn over(mut socket: TcpStream, settings: &[(u16, u32)]) -> Self {
        // Frames go out as written (no Nagle delay between small ones).
        socket.set_nodelay(true).expect("nodelay");
        socket.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("preface");
        let payload: Vec<u8> = settings
            .iter()
            .flat_map(|(id, value)| [id.to_be_bytes().to_vec(), value.to_be_bytes().to_vec()].concat())
            .collect();
        socket.write_all(&frame(SETTINGS, 0, 0, &payload)).await.expect("settings");
        Self { socket, pending: Vec::new(), goaway: None }
    }

    /// Sends bytes (frames), as one write.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.socket.write_all(bytes).await
    }

    /// Writes `chunk` over and over, `max` bytes at most, while keeping
    /// what the server sends for [`Raw::next`] and [`Raw::end`]; stops early
    /// when the server closes (its side, or the socket). The bytes written.
    pub async fn flood(&mut self, chunk: &[u8], max: usize) -> usize {
        let (mut reader, mut writer) = self.socket.split();
        let sent = std::cell::Cell::new(0);
        let writing = async {
            while sent.get() < max && writer.write_all(chunk).await.is_ok() {
                sent.set(sent.get() + chunk.len());
            }
        };
        tokio::pin!(writing);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            tokio::select! {
                () = &mut writing => break,
                read = reader.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                },
            }
        }
        sent.get()
    }

    /// A unary gRPC call on `stream`: headers, one message, end of stream
    /// (the message in DATA frames of at most 16 KiB, the smallest limit).
    pub async fn call(&mut self, stream: u32, path: &str, message: &[u8]) {
        self.call_with(stream, &grpc_headers(path), 0, message).await;
    }

    /// A unary call with a header block of its own, the message's envelope
    /// flag `flag` (1: compressed).
    pub async fn call_with(&mut self, stream: u32, headers: &[u8], flag: u8, message: &[u8]) {
        let mut body = vec![flag];
        body.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        body.extend_from_slice(message);
        let mut bytes = frame(HEADERS, END_HEADERS, stream, headers);
        let chunks: Vec<&[u8]> = body.chunks(16 << 10).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let flags = if i + 1 == chunks.len() { END_STREAM } else { 0 };
            bytes.extend(frame(DATA, flags, stream, chunk));
        }
        self.send(&bytes).await.expect("a call");
    }

    /// The next frame, or none when the connection closed or `within` passed;
    /// the server's SETTINGS are acknowledged on the way.
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.pending.len() >= 9 {
                let len = u32::from_be_bytes([0, self.pending[0], self.pending[1], self.pending[2]]) as usize;
                if self.pending.len() >= 9 + len {
                    let bytes: Vec<u8> = self.pending.drain(..9 + len).collect();
                    let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
                    let frame = Frame { kind: bytes[3], flags: bytes[4], stream, payload: bytes[9..].to_vec() };
                    // The server's settings apply once acknowledged.
                    if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                        let _ = self.send(&self::frame(SETTINGS, ACK, 0, &[])).await;
                    }
                    if frame.kind == GOAWAY {
                        let p = &frame.payload;
                        self.goaway = Some(GoAway {
                            last_stream: u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
                            code: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                            debug: String::from_utf8_lossy(&p[8..]).into_owned(),
                        });
                    }
                    return Some(frame);
                }
            }
            let mut buf = [0u8; 16 << 10];
            match tokio::time::timeout_at(deadline, self.socket.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// The last GOAWAY read, if any.
    pub fn goaway(&self) -> Option<&GoAway> {
        self.goaway.as_ref()
    }

    /// Reads until the connection ends or `within` passes, answering the
    /// server's PINGs as any client does (a graceful GOAWAY waits for one);
    /// the frames read on the way are returned with the end, which names
    /// the last GOAWAY read, here or before.
    pub async fn end(&mut self, within: Duration) -> (End, Vec<Frame>) {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(frame) => {
                    if frame.kind == PING && frame.flags & ACK == 0 {
                        // The server may be gone already; the end says so.
                        let _ = self.send(&self::frame(PING, ACK, 0, &frame.payload)).await;
                    }
                    seen.push(frame);
                }
                None if tokio::time::Instant::now() >= deadline => return (End::Open, seen),
                None => return (self.goaway.clone().map_or(End::Closed, End::GoAway), seen),
            }
        }
    }
}
