//! Per-call credentials: a bearer token ([`BearerToken`]), fixed or read
//! from a file that is read again when it changes (as Kubernetes rotates a
//! projected service-account token), sent as `authorization: Bearer` with
//! every attempt and health watch. The token is never logged nor printed:
//! its `Debug` names where it comes from, its errors say what is wrong
//! with it, and its header is marked sensitive (HPACK never indexes it).
//!
//! tonic has an `Interceptor` for a fixed header, but no call credentials
//! that read a file again, nor grpc's refusal of them over plaintext
//! (`Client::new` refuses; see `Target::is_loopback`): both are here.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};

/// The header a bearer token goes in (RFC 6750, 2.1).
const AUTHORIZATION: &str = "authorization";
/// The longest token read: longer could not fit the server's whole header
/// block (16 KiB by default), and a file this large is not a token.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A bearer token sent as `authorization: Bearer TOKEN` with every attempt
/// of every call, and with every health watch. Cloning is cheap; clones
/// share the file's cached token.
///
/// A client refuses to send it over plaintext to a target that is not
/// loopback unless [`BearerToken::allowing_plaintext`] says otherwise, as
/// grpc refuses call credentials on an insecure channel.
#[derive(Clone)]
pub struct BearerToken {
    source: Arc<Source>,
    plaintext: bool,
}

/// Where the token comes from.
enum Source {
    /// A value given once.
    Fixed(MetadataValue<Ascii>),
    /// A file, read again whenever it changes.
    File { path: PathBuf, cache: Mutex<Cached> },
}

/// What was last read of a token file.
struct Cached {
    /// The file as it was when `header` was read from it.
    stamp: Stamp,
    /// `Bearer TOKEN`, ready to send.
    header: MetadataValue<Ascii>,
    /// Why the file could not be read again, once said (said once per
    /// reason, not once per call).
    trouble: Option<String>,
}

/// What tells that a file changed without reading it: which file the path
/// leads to (a rotation that swaps a symbolic link, as the kubelet does,
/// or renames a new file over it, leads to another), its size and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

/// Why a token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read the token file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// What was given or read is not a bearer token; the reason never
    /// quotes it.
    #[error("{what} {reason}")]
    Invalid {
        /// "the token", or "the token file PATH".
        what: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl BearerToken {
    /// A token given as it is (surrounding whitespace trimmed).
    ///
    /// # Errors
    /// [`TokenError::Invalid`] when it is not a bearer token (RFC 6750's
    /// characters: letters, digits, `-._~+/`, then `=` padding).
    pub fn new(token: &str) -> Result<Self, TokenError> {
        let header =
            header(token.as_bytes()).map_err(|reason| TokenError::Invalid { what: "the token".into(), reason })?;
        Ok(Self { source: Arc::new(Source::Fixed(header)), plaintext: false })
    }

    /// A token read from `path` now, and read again before an attempt
    /// whenever the file changed; a file that cannot be read again (or no
    /// longer holds a token) keeps the last token read, and says why once
    /// on the log.
    ///
    /// # Errors
    /// [`TokenError`] when the file cannot be read now or holds no token.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, TokenError> {
        let path = path.into();
        let (stamp, header) = read(&path)?;
        let cache = Mutex::new(Cached { stamp, header, trouble: None });
        Ok(Self { source: Arc::new(Source::File { path, cache }), plaintext: false })
    }

    /// The same token, which a client sends over plaintext to any target
    /// when `allow` (it is sent over TLS or to a loopback target anyway):
    /// for a network the caller trusts, such as a sidecar's.
    #[must_use]
    pub fn allowing_plaintext(self, allow: bool) -> Self {
        Self { plaintext: allow, ..self }
    }

    /// Whether it may go over plaintext to a target that is not loopback.
    #[must_use]
    pub fn plaintext_allowed(&self) -> bool {
        self.plaintext
    }

    /// `Bearer TOKEN` as it is now: a token file that changed since it was
    /// last read is read again.
    pub(in crate::client) fn header(&self) -> MetadataValue<Ascii> {
        match &*self.source {
            Source::Fixed(header) => header.clone(),
            Source::File { path, cache } => {
                // The stat outside the lock: calls on several threads hold
                // it only to compare, unless the file changed.
                let now = stamp(path);
                let mut cached = cache.lock().unwrap_or_else(PoisonError::into_inner);
                cached.refresh(path, now);
                cached.header.clone()
            }
        }
    }

    /// Puts the token on `request`.
    pub(in crate::client) fn authorize<M>(&self, request: &mut Request<M>) {
        request.metadata_mut().insert(AUTHORIZATION, self.header());
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("BearerToken");
        match &*self.source {
            Source::Fixed(_) => debug.field("token", &"<given, not shown>"),
            Source::File { path, .. } => debug.field("file", path),
        };
        debug.field("plaintext", &self.plaintext).finish()
    }
}

impl Cached {
    /// Reads the file again if `now` (its stamp, taken before) says it
    /// changed since it was last read; keeps the token it has when the file
    /// cannot be read or holds none.
    fn refresh(&mut self, path: &Path, now: io::Result<Stamp>) {
        // The stamp is taken before the file is read: a change between the
        // two is read again on the next call, never missed.
        let read = match now {
            Ok(stamp) if stamp == self.stamp => return,
            Ok(_) => read(path),
            Err(source) => Err(TokenError::Read { path: path.to_owned(), source }),
        };
        match read {
            Ok((stamp, header)) => {
                (self.stamp, self.header) = (stamp, header);
                if self.trouble.take().is_some() {
                    tracing::warn!(file = %path.display(), "the token file holds a token again");
                }
            }
            Err(err) => {
                let why = err.to_string();
                if self.trouble.as_deref() != Some(why.as_str()) {
                    tracing::warn!("{why}; the last token read is sent until it can be read again");
                    self.trouble = Some(why);
                }
            }
        }
    }
}

/// The file `path` leads to, as [`Stamp`] tells it apart.
fn stamp(path: &Path) -> io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        modified: (meta.mtime(), meta.mtime_nsec()),
        changed: (meta.ctime(), meta.ctime_nsec()),
    })
}

/// Reads the token in `path`, at most [`MAX_TOKEN_BYTES`] of it, with the
/// file's stamp from before the read.
fn read(path: &Path) -> Result<(Stamp, MetadataValue<Ascii>), TokenError> {
    let failed = |source| TokenError::Read { path: path.to_owned(), source };
    let stamp = stamp(path).map_err(failed)?;
    let mut bytes = Vec::new();
    File::open(path).and_then(|file| file.take(MAX_TOKEN_BYTES as u64 + 1).read_to_end(&mut bytes)).map_err(failed)?;
    let what = || format!("the token file {}", path.display());
    let header = header(&bytes).map_err(|reason| TokenError::Invalid { what: what(), reason })?;
    Ok((stamp, header))
}

/// `Bearer TOKEN` for `token` (surrounding whitespace trimmed), or why it
/// is not one, without quoting it.
fn header(token: &[u8]) -> Result<MetadataValue<Ascii>, String> {
    let token = token.trim_ascii();
    if token.is_empty() {
        return Err("is empty".into());
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!("is longer than {} KiB", MAX_TOKEN_BYTES / 1024));
    }
    if token.len() > 7 && token[..7].eq_ignore_ascii_case(b"bearer ") {
        return Err("starts with \"Bearer \": give the token alone".into());
    }
    // RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let Some(body) = token.iter().rposition(|&b| b != b'=') else {
        return Err("holds only padding".into());
    };
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(b);
    if let Some(at) = token[..=body].iter().position(|b| !allowed(b)) {
        return Err(format!(
            "has a character a bearer token cannot hold at byte {at} (RFC 6750: letters, digits, -._~+/ then = padding)"
        ));
    }
    let value = format!("Bearer {}", String::from_utf8_lossy(token));
    let mut header = MetadataValue::try_from(value).map_err(|_| "is not a header value".to_owned())?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn sent(token: &BearerToken) -> String {
        token.header().to_str().expect("ASCII").to_owned()
    }

    #[test]
    fn a_given_token_is_sent_as_a_bearer_token_and_marked_sensitive() {
        let token = BearerToken::new(" eyJhbGciOi.eyJzdWIi.c2ln-_~+/== \n").expect("a token");
        assert_eq!(sent(&token), "Bearer eyJhbGciOi.eyJzdWIi.c2ln-_~+/==");
        assert!(token.header().is_sensitive(), "HPACK never indexes it");
        let mut request = Request::new(());
        token.authorize(&mut request);
        let header = request.metadata().get("authorization").and_then(|value| value.to_str().ok());
        assert_eq!(header, Some(sent(&token).as_str()));
    }

    #[test]
    fn what_is_not_a_bearer_token_is_refused_without_quoting_it() {
        for (token, reason) in [
            ("", "is empty"),
            (" \n", "is empty"),
            ("==", "holds only padding"),
            ("Bearer secret-one", "starts with \"Bearer \": give the token alone"),
            ("secret two", "has a character a bearer token cannot hold at byte 6"),
            ("secret=three", "has a character a bearer token cannot hold at byte 6"),
            ("secret\u{e9}", "has a character a bearer token cannot hold at byte 6"),
        ] {
            let err = BearerToken::new(token).expect_err(token).to_string();
            assert!(err.starts_with(&format!("the token {reason}")), "{token:?}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(BearerToken::new(&long).expect_err("long").to_string(), "the token is longer than 16 KiB");
    }

    #[test]
    fn debug_names_where_the_token_comes_from_never_the_token() {
        let given = BearerToken::new("s3cr3t").expect("a token");
        assert_eq!(format!("{given:?}"), "BearerToken { token: \"<given, not shown>\", plaintext: false }");
        assert!(!format!("{:?}", given.header()).contains("s3cr3t"), "the header's Debug too");
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t\n").expect("write");
        let file = BearerToken::from_file(&path).expect("a token").allowing_plaintext(true);
        let debug = format!("{file:#?}");
        assert!(debug.contains("plaintext: true") && debug.contains("token\""), "{debug}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    #[test]
    fn a_token_file_is_read_again_when_it_changes_and_kept_when_it_breaks() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").expect("write");
        let token = BearerToken::from_file(&path).expect("a token");
        let clone = token.clone();
        assert_eq!(sent(&token), "Bearer first");
        // Rotated as the kubelet does: a new file put in place atomically.
        let next = dir.path().join("token.new");
        std::fs::write(&next, "second").expect("write");
        std::fs::rename(&next, &path).expect("rename");
        assert_eq!(sent(&clone), "Bearer second", "clones share the file");
        assert_eq!(sent(&token), "Bearer second");
        // Rewritten in place, one byte longer.
        std::fs::File::create(&path).and_then(|mut file| file.write_all(b"third-1")).expect("rewrite");
        assert_eq!(sent(&token), "Bearer third-1");
        // Broken (emptied, then gone): the last token read is kept.
        std::fs::write(&path, "").expect("empty");
        assert_eq!(sent(&token), "Bearer third-1");
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(sent(&token), "Bearer third-1");
        std::fs::write(&path, "fourth").expect("write");
        assert_eq!(sent(&token), "Bearer fourth", "read again once it holds a token");
    }

    #[test]
    fn a_token_file_that_cannot_be_read_at_first_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("missing");
        let err = BearerToken::from_file(&path).expect_err("missing").to_string();
        assert!(err.starts_with(&format!("cannot read the token file {}: ", path.display())), "{err}");
        std::fs::write(&path, "two words").expect("write");
        let err = BearerToken::from_file(&path).expect_err("invalid").to_string();
        assert!(err.starts_with(&format!("the token file {} has a character", path.display())), "{err}");
        std::fs::write(&path, vec![b'a'; MAX_TOKEN_BYTES + 10]).expect("write");
        let err = BearerToken::from_file(&path).expect_err("long").to_string();
        assert!(err.ends_with("is longer than 16 KiB"), "{err}");
    }
}
