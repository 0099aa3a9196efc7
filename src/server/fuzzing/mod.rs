//! Entry points for the fuzz targets: each takes the bytes a fuzzer made,
//! reads them as what a peer could send, hands them to the server's own
//! parsers and checks what must hold whatever the bytes (no panic, nothing
//! past the limits, round trips, agreement between two parsers of the same
//! bytes). Compiled only with `--cfg fuzzing` (set by cargo fuzz, for the
//! targets of `fuzz/`) and for the tests, which replay the committed corpus
//! (`fuzz/corpus/`) and mutations of it on stable Rust; not part of the API.
//!
//! Files:
//! - `mod.rs`: the targets' table ([`TARGETS`]) and the fuzzer's bytes read
//!   as choices ([`Input`]).
//! - `alloc.rs`: the allocator that aborts past a cap ([`Capped`]): no
//!   input may make the server allocate without bound.
//! - `framing.rs`: a body's bytes: the envelope and a request's framing,
//!   message compression.
//! - `headers.rs`: a request's headers: `grpc-timeout` (and Connect's
//!   `connect-timeout-ms`), the trace context, binary metadata.
//! - `messages.rs`: a request's messages: Connect's JSON, protobuf decoding.
//! - `policies.rs`: an authorization policy file through its loader, and
//!   the loaded policy's decisions.
//! - `tokens.rs`: a bearer token through the security layer, with the key
//!   set of `keys.rs`.
//! - `dispatch.rs`: whole requests through the server's stack, every
//!   protocol (gRPC, gRPC-Web binary and text, Connect POST, GET, streams).
//! - `tests.rs`: the corpus replayed and mutated in `cargo test`;
//!   `seeds.rs`: the corpus's seeds, written.
//!
//! A new target is a function here taking `&[u8]`, a line of [`TARGETS`], a
//! file of `fuzz/fuzz_targets/` and a `[[bin]]` of `fuzz/Cargo.toml`, and
//! seeds in `fuzz/corpus/<name>/` (docs/testing.md, "Fuzzing"); the tests
//! fail until all four are there.

mod alloc;
mod dispatch;
mod framing;
mod headers;
mod keys;
mod messages;
mod policies;
mod tokens;

pub use self::alloc::{Capped, MAX_LIVE, MAX_ONE, capped};
pub use self::dispatch::dispatch;
pub use self::framing::{compression, envelope};
pub use self::headers::{grpc_timeout, metadata};
pub use self::messages::{connect_json, lenient};
pub use self::policies::policy;
pub use self::tokens::jwt;

/// A fuzz target: the fuzzer's bytes in, a panic or an abort for a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary in `fuzz/` and of its corpus.
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", envelope),
    ("compression", compression),
    ("grpc_timeout", grpc_timeout),
    ("metadata", metadata),
    ("connect_json", connect_json),
    ("lenient", lenient),
    ("dispatch", dispatch),
    ("jwt", jwt),
    ("policy", policy),
];

/// The fuzzer's bytes read as the choices of one input, from the front; a
/// read past the end gives zeros (the first choice, an empty value), so
/// that every input means something.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    /// The bytes `data`, none read yet.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self(data)
    }

    /// One byte.
    pub fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }

    /// One of `choices` (not empty).
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[usize::from(self.byte()) % choices.len()]
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// A length byte, then up to that many bytes.
    pub fn short(&mut self) -> &'a [u8] {
        let n = self.byte();
        self.bytes(n.into())
    }

    /// The rest, cut into chunks as they could arrive: a list of chunk
    /// lengths (a [`short`](Self::short)), then the bytes, the last chunk
    /// taking what the lengths leave.
    pub fn chunks(mut self) -> Vec<&'a [u8]> {
        let lengths = self.short();
        let mut rest = self.0;
        let mut chunks = Vec::with_capacity(lengths.len() + 1);
        for &length in lengths {
            let (chunk, after) = rest.split_at(usize::from(length).min(rest.len()));
            chunks.push(chunk);
            rest = after;
        }
        chunks.push(rest);
        chunks
    }

    /// What is left.
    #[must_use]
    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}

#[cfg(test)]
mod seeds;
#[cfg(test)]
mod tests;
