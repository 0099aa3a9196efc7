//! Where the client connects: a target as the user writes it, checked into
//! the URI tonic dials.

use std::fmt;
use std::str::FromStr;

use http::Uri;
use http::uri::Authority;

/// A server address: `HOST:PORT`, `[IPv6]:PORT`, `http://HOST:PORT`, or
/// `https://HOST:PORT` for TLS.
///
/// The article's Python client rejects a scheme (grpc resolves
/// `http://localhost:8100` as a DNS name and fails); this client takes both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the user wrote, for messages.
    original: String,
    /// The `http://` or `https://` URI tonic connects to.
    uri: Uri,
}

/// Why a target string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target {target:?}: {reason} (expected HOST:PORT, [IPv6]:PORT, http://HOST:PORT or https://HOST:PORT)")]
pub struct InvalidTarget {
    target: String,
    reason: &'static str,
}

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(target: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidTarget { target: target.to_owned(), reason };
        let (scheme, rest) = match target.split_once("://") {
            None => ("http", target),
            Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
            Some(_) => return Err(invalid("the only schemes are http:// and https://")),
        };
        // `http://host:port/` is still an address; anything longer is a path.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(invalid("a target has no path"));
        }
        if rest.contains('@') {
            return Err(invalid("a target has no user name"));
        }
        // The port follows the last ':' that is not inside an IPv6 literal.
        let port = match rest.rsplit_once(':') {
            Some((_, port)) if !port.contains(']') => port,
            _ => return Err(invalid("the port is missing")),
        };
        match port.parse::<u16>() {
            Ok(0) => return Err(invalid("port 0 cannot be connected to")),
            Ok(_) => {}
            Err(_) => return Err(invalid("the port is not a number from 1 to 65535")),
        }
        let authority: Authority = rest.parse().map_err(|_| invalid("not a host and port"))?;
        if authority.host().is_empty() {
            return Err(invalid("the host is missing"));
        }
        let uri = Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query("/")
            .build()
            .map_err(|_| invalid("not a host and port"))?;
        Ok(Self { original: target.to_owned(), uri })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Target {
    /// The `http://HOST:PORT/` or `https://HOST:PORT/` URI tonic connects to.
    #[must_use]
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Whether the target is `https://`.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.uri.scheme_str() == Some("https")
    }

    /// The host, without IPv6 brackets: the name TLS checks the certificate for.
    #[must_use]
    pub fn host(&self) -> &str {
        host_of(&self.uri)
    }
}

/// The host of `uri` without IPv6 brackets: what name resolution and TLS
/// take (`::1`, not `[::1]`).
pub(super) fn host_of(uri: &Uri) -> &str {
    uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_of(target: &str) -> Result<String, InvalidTarget> {
        target.parse::<Target>().map(|t| t.uri().to_string())
    }

    #[test]
    fn accepts_the_documented_forms_alike() {
        assert_eq!(uri_of("localhost:8100").as_deref(), Ok("http://localhost:8100/"));
        assert_eq!(uri_of("127.0.0.1:8100").as_deref(), Ok("http://127.0.0.1:8100/"));
        assert_eq!(uri_of("[::1]:8100").as_deref(), Ok("http://[::1]:8100/"));
        assert_eq!(uri_of("http://localhost:8100").as_deref(), Ok("http://localhost:8100/"));
        assert_eq!(uri_of("http://localhost:8100/").as_deref(), Ok("http://localhost:8100/"));
        assert_eq!(uri_of("https://localhost:8100").as_deref(), Ok("https://localhost:8100/"));
        let tls: Target = "https://[::1]:8100".parse().expect("valid");
        assert!(tls.is_tls());
        assert_eq!(tls.host(), "::1");
        assert!(!"localhost:8100".parse::<Target>().expect("valid").is_tls());
    }

    #[test]
    fn rejects_what_is_not_an_address_with_the_reason() {
        let reason = |target: &str| target.parse::<Target>().expect_err(target).reason;
        assert_eq!(reason("localhost"), "the port is missing");
        assert_eq!(reason("localhost:0"), "port 0 cannot be connected to");
        assert_eq!(reason("[::1]"), "the port is missing");
        assert_eq!(reason("localhost:99999"), "the port is not a number from 1 to 65535");
        assert_eq!(reason("localhost:http"), "the port is not a number from 1 to 65535");
        assert_eq!(reason("local host:8100"), "not a host and port");
        assert_eq!(reason(":8100"), "the host is missing");
        assert_eq!(reason("http://localhost:8100/search"), "a target has no path");
        assert_eq!(reason("dns:///localhost:8100"), "the only schemes are http:// and https://");
        assert_eq!(reason("user@localhost:8100"), "a target has no user name");
        assert_eq!(reason(""), "the port is missing");
    }

    #[test]
    fn the_message_names_the_target_and_the_forms() {
        let err = "localhost".parse::<Target>().expect_err("no port");
        assert_eq!(
            err.to_string(),
            "invalid target \"localhost\": the port is missing \
             (expected HOST:PORT, [IPv6]:PORT, http://HOST:PORT or https://HOST:PORT)"
        );
    }
}
