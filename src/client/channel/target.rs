//! Where the client connects: a target as the user writes it, in grpc's
//! forms, checked into a name to resolve or the addresses themselves.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use http::Uri;
use http::uri::Authority;

/// A server, or several: `HOST:PORT`, `[IPv6]:PORT`, `http://HOST:PORT`,
/// `https://HOST:PORT` for TLS, `dns:///HOST:PORT`, `ipv4:ADDR:PORT,...`,
/// `ipv6:[ADDR]:PORT,...`, `unix:/PATH`, or `xds:///NAME` (the addresses
/// and routes from an xDS management server: `channel/xds_channel.rs`).
///
/// A name is resolved to every address it has, each a subchannel of its own
/// (see `channel/balancer.rs`). The article's Python client rejects a scheme (grpc
/// resolves `http://localhost:8100` as a DNS name and fails); this client
/// takes both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the user wrote, for messages.
    original: String,
    /// What to connect to.
    kind: Kind,
    /// `https://`: TLS, checked against the host's name.
    tls: bool,
    /// The `:authority` of every call (and the name TLS checks).
    authority: Authority,
}

/// Where the addresses come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A name, resolved (and re-resolved) through the system's resolver.
    Dns { host: String, port: u16 },
    /// Addresses given as they are.
    Addresses(Vec<SocketAddr>),
    /// A Unix domain socket.
    Unix(PathBuf),
    /// `xds:///NAME`: the Listener NAME and what it leads to, from the
    /// management server of grpc's bootstrap.
    Xds(String),
}

/// Why a target string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid target {target:?}: {reason} (expected HOST:PORT, [IPv6]:PORT, http://HOST:PORT, https://HOST:PORT, \
     dns:///HOST:PORT, ipv4:ADDR:PORT[,...], ipv6:[ADDR]:PORT[,...], unix:/PATH or xds:///NAME)"
)]
pub struct InvalidTarget {
    target: String,
    reason: &'static str,
}

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(target: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidTarget { target: target.to_owned(), reason };
        let local = || Authority::from_static("localhost");
        if let Some(path) = target.strip_prefix("unix://").or_else(|| target.strip_prefix("unix:")) {
            if path.is_empty() {
                return Err(invalid("the socket's path is missing"));
            }
            let kind = Kind::Unix(PathBuf::from(path));
            return Ok(Self { original: target.to_owned(), kind, tls: false, authority: local() });
        }
        if let Some(rest) = target.strip_prefix("xds:") {
            return xds(target, rest).map_err(invalid);
        }
        for (scheme, v6) in [("ipv4:", false), ("ipv6:", true)] {
            if let Some(list) = target.strip_prefix(scheme) {
                let addresses = list
                    .split(',')
                    .map(|address| address.parse::<SocketAddr>().ok().filter(|a| a.is_ipv6() == v6 && a.port() != 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        invalid(if v6 {
                            "an ipv6: list holds [ADDR]:PORT, comma-separated"
                        } else {
                            "an ipv4: list holds ADDR:PORT, comma-separated"
                        })
                    })?;
                let authority = addresses[0].to_string().parse().map_err(|_| invalid("not an address"))?;
                let kind = Kind::Addresses(addresses);
                return Ok(Self { original: target.to_owned(), kind, tls: false, authority });
            }
        }
        let (tls, rest) = if let Some(rest) = target.strip_prefix("dns:") {
            // dns:///host:port, or dns:host:port; an authority names a DNS
            // server, which the system resolver cannot be told.
            match rest.strip_prefix("//") {
                Some(rest) => match rest.strip_prefix('/') {
                    Some(rest) => (false, rest),
                    None => {
                        return Err(invalid("a DNS server (dns://SERVER/) cannot be chosen; write dns:///HOST:PORT"));
                    }
                },
                None => (false, rest),
            }
        } else {
            match target.split_once("://") {
                None => (false, target),
                Some(("http", rest)) => (false, rest),
                Some(("https", rest)) => (true, rest),
                Some(_) => {
                    return Err(invalid("the schemes are http://, https://, dns:, ipv4:, ipv6:, unix: and xds:"));
                }
            }
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
        let port = match port.parse::<u16>() {
            Ok(0) => return Err(invalid("port 0 cannot be connected to")),
            Ok(port) => port,
            Err(_) => return Err(invalid("the port is not a number from 1 to 65535")),
        };
        let authority: Authority = rest.parse().map_err(|_| invalid("not a host and port"))?;
        if authority.host().is_empty() {
            return Err(invalid("the host is missing"));
        }
        let host = unbracketed(authority.host()).to_owned();
        Ok(Self { original: target.to_owned(), kind: Kind::Dns { host, port }, tls, authority })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Target {
    /// The URI of every call: `http://` or `https://`, and the authority.
    #[must_use]
    pub fn uri(&self) -> Uri {
        let scheme = if self.tls { "https" } else { "http" };
        Uri::builder()
            .scheme(scheme)
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_else(|_| Uri::from_static("http://localhost/"))
    }

    /// Whether the target is `https://`.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether every address the target can lead to is on this machine by
    /// definition, so that what goes to it in plaintext never crosses a
    /// network: a Unix socket, `localhost`, or loopback addresses only
    /// (127.0.0.0/8, `::1`, and 127.0.0.0/8 mapped into IPv6). Any other
    /// name is not, whatever it resolves to now; nor is `0.0.0.0`, the
    /// unspecified address.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        match &self.kind {
            Kind::Unix(_) => true,
            Kind::Xds(_) => false,
            Kind::Addresses(addresses) => addresses.iter().all(|address| is_loopback(address.ip())),
            Kind::Dns { host, .. } => {
                host.parse().is_ok_and(is_loopback)
                    || host.strip_suffix('.').unwrap_or(host).eq_ignore_ascii_case("localhost")
            }
        }
    }

    /// The host, without IPv6 brackets: the name TLS checks the certificate for.
    #[must_use]
    pub fn host(&self) -> &str {
        unbracketed(self.authority.host())
    }

    /// Where the addresses come from.
    pub(super) fn kind(&self) -> &Kind {
        &self.kind
    }

    /// `xds:///NAME`'s NAME; `None` for any other target.
    #[must_use]
    pub fn xds_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Xds(name) => Some(name),
            _ => None,
        }
    }
}

/// `xds:///NAME` (`rest` follows `xds:`): NAME is the calls' authority too.
fn xds(target: &str, rest: &str) -> Result<Target, &'static str> {
    let Some(rest) = rest.strip_prefix("//") else { return Err("write xds:///NAME") };
    let Some(name) = rest.strip_prefix('/') else {
        return Err("an xDS authority (xds://AUTHORITY/NAME) is not supported; write xds:///NAME");
    };
    if name.is_empty() {
        return Err("the name is missing (xds:///NAME)");
    }
    let authority: Authority = name.parse().map_err(|_| "the name is not a valid authority")?;
    Ok(Target { original: target.to_owned(), kind: Kind::Xds(name.to_owned()), tls: false, authority })
}

/// Whether `ip` is a loopback address, an IPv4 one mapped into IPv6 too.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// A host without IPv6 brackets: what name resolution and TLS take (`::1`,
/// not `[::1]`).
fn unbracketed(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_of(target: &str) -> Result<String, InvalidTarget> {
        target.parse::<Target>().map(|t| t.uri().to_string())
    }

    fn kind_of(target: &str) -> Kind {
        target.parse::<Target>().expect(target).kind
    }

    #[test]
    fn reads_grpc_target_forms() {
        let dns = Kind::Dns { host: "localhost".into(), port: 8100 };
        assert_eq!(kind_of("dns:///localhost:8100"), dns);
        assert_eq!(kind_of("dns:localhost:8100"), dns);
        assert_eq!(kind_of("localhost:8100"), dns);
        assert_eq!(kind_of("[::1]:8100"), Kind::Dns { host: "::1".into(), port: 8100 });
        let v4: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().expect("ok"), "127.0.0.2:2".parse().expect("ok")];
        assert_eq!(kind_of("ipv4:127.0.0.1:1,127.0.0.2:2"), Kind::Addresses(v4));
        assert_eq!(kind_of("ipv6:[::1]:5"), Kind::Addresses(vec!["[::1]:5".parse().expect("ok")]));
        assert_eq!(kind_of("unix:/tmp/s.sock"), Kind::Unix("/tmp/s.sock".into()));
        assert_eq!(kind_of("unix:///tmp/s.sock"), Kind::Unix("/tmp/s.sock".into()));
        assert_eq!(uri_of("ipv4:127.0.0.1:1,127.0.0.2:2").as_deref(), Ok("http://127.0.0.1:1/"));
        assert_eq!(uri_of("unix:/tmp/s.sock").as_deref(), Ok("http://localhost/"));
        let reason = |target: &str| target.parse::<Target>().expect_err(target).reason;
        assert_eq!(reason("ipv4:127.0.0.1"), "an ipv4: list holds ADDR:PORT, comma-separated");
        assert_eq!(reason("ipv4:[::1]:80"), "an ipv4: list holds ADDR:PORT, comma-separated");
        assert_eq!(reason("ipv6:127.0.0.1:80"), "an ipv6: list holds [ADDR]:PORT, comma-separated");
        assert_eq!(reason("ipv4:"), "an ipv4: list holds ADDR:PORT, comma-separated");
        assert_eq!(reason("unix:"), "the socket's path is missing");
        assert_eq!(
            reason("dns://8.8.8.8/localhost:80"),
            "a DNS server (dns://SERVER/) cannot be chosen; write dns:///HOST:PORT"
        );
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
        assert_eq!(
            reason("ftp://localhost:8100"),
            "the schemes are http://, https://, dns:, ipv4:, ipv6:, unix: and xds:"
        );
        assert_eq!(reason("user@localhost:8100"), "a target has no user name");
        assert_eq!(reason(""), "the port is missing");
        assert_eq!(reason("xds:///"), "the name is missing (xds:///NAME)");
        assert_eq!(
            reason("xds://td.example/search"),
            "an xDS authority (xds://AUTHORITY/NAME) is not supported; write xds:///NAME"
        );
        assert_eq!(reason("xds:search"), "write xds:///NAME");
        assert_eq!(kind_of("xds:///search"), Kind::Xds("search".into()));
        assert_eq!(uri_of("xds:///search").as_deref(), Ok("http://search/"));
    }

    #[test]
    fn loopback_is_a_unix_socket_localhost_or_loopback_addresses_only() {
        let loopback = |target: &str| target.parse::<Target>().expect(target).is_loopback();
        for local in [
            "unix:/tmp/s.sock",
            "localhost:1",
            "LocalHost.:1",
            "http://localhost:1",
            "dns:///localhost:1",
            "127.0.0.1:1",
            "127.1.2.3:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
            "ipv4:127.0.0.1:1,127.0.0.2:2",
            "ipv6:[::1]:1",
        ] {
            assert!(loopback(local), "{local}");
        }
        for remote in [
            "example.com:1",
            "localhost.example.com:1",
            "0.0.0.0:1",
            "[::]:1",
            "10.0.0.1:1",
            "[::ffff:10.0.0.1]:1",
            "ipv4:127.0.0.1:1,10.0.0.1:1",
        ] {
            assert!(!loopback(remote), "{remote}");
        }
    }

    #[test]
    fn the_message_names_the_target_and_the_forms() {
        let err = "localhost".parse::<Target>().expect_err("no port");
        assert_eq!(
            err.to_string(),
            "invalid target \"localhost\": the port is missing \
             (expected HOST:PORT, [IPv6]:PORT, http://HOST:PORT, https://HOST:PORT, \
             dns:///HOST:PORT, ipv4:ADDR:PORT[,...], ipv6:[ADDR]:PORT[,...], unix:/PATH or xds:///NAME)"
        );
    }
}
