//! The authorization policy, gRPC's (gRFC A43): the JSON a policy file
//! holds, as grpc-go and grpc C++ read it, checked when it is loaded, and
//! the decision for one call: deny rules first, then allow rules, else
//! denied.
//!
//! One extension beside A43's fields, as Istio's AuthorizationPolicy names
//! it: `source.request_principals`, matched against the caller a validated
//! JWT names (`ISSUER/SUBJECT`). A policy without it means what it means to
//! grpc; a policy with it is refused by grpc (an unknown field), as A43
//! wants of any field an implementation does not know.

use serde::Deserialize;

use super::identity::Caller;

/// What a policy file says (A43's JSON schema, fields unknown to it refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: String,
    #[serde(default)]
    deny_rules: Vec<RuleFile>,
    allow_rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    #[serde(default)]
    source: Option<SourceFile>,
    #[serde(default)]
    request: Option<RequestFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    #[serde(default)]
    principals: Vec<String>,
    /// The extension: JWT callers, `ISSUER/SUBJECT`.
    #[serde(default)]
    request_principals: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFile {
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    headers: Vec<HeaderFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderFile {
    key: String,
    values: Vec<String>,
}

/// One of A43's string matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `abc`.
    Exact(String),
    /// `abc*`.
    Prefix(String),
    /// `*abc`.
    Suffix(String),
    /// `*`: any value that is not empty.
    Present,
}

impl Pattern {
    fn new(text: &str) -> Self {
        if text == "*" {
            Self::Present
        } else if let Some(prefix) = text.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else if let Some(suffix) = text.strip_prefix('*') {
            Self::Suffix(suffix.to_owned())
        } else {
            Self::Exact(text.to_owned())
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(exact) => value == exact,
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Self::Suffix(suffix) => value.ends_with(suffix.as_str()),
            Self::Present => !value.is_empty(),
        }
    }
}

/// A rule, compiled.
#[derive(Debug)]
struct Rule {
    name: String,
    /// Peer principals (mTLS), any of them; empty: any peer.
    principals: Vec<Pattern>,
    /// JWT callers, any of them; empty: any caller.
    request_principals: Vec<Pattern>,
    /// Paths, any of them; empty: any path.
    paths: Vec<Pattern>,
    /// Headers, each of them must match one of its values.
    headers: Vec<(String, Vec<Pattern>)>,
}

/// A loaded policy.
#[derive(Debug)]
pub(in crate::server) struct Policy {
    name: String,
    deny: Vec<Rule>,
    allow: Vec<Rule>,
}

/// The decision for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::server) struct Decision {
    /// Whether the call may go on.
    pub(in crate::server) allowed: bool,
    /// The rule that decided, if one matched (`None`: denied, no allow rule
    /// matched).
    pub(in crate::server) rule: Option<String>,
}

/// Why a policy cannot be used: where, and what.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or not the policy's schema.
    #[error("line {line}, column {column}: {reason}")]
    Syntax {
        /// The line (from 1).
        line: usize,
        /// The column (from 1).
        column: usize,
        /// What serde said.
        reason: String,
    },
    /// A rule matching a header A43 does not allow in rules.
    #[error("rule {rule:?}: header {key:?} cannot be matched: {why}")]
    Header {
        /// The rule.
        rule: String,
        /// The header.
        key: String,
        /// Which of A43's exclusions it falls under.
        why: &'static str,
    },
}

/// Headers that are a hop's, not the request's (RFC 9110, 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Policy {
    /// The policy `json` holds.
    ///
    /// # Errors
    /// [`PolicyError`]: the JSON or the schema is wrong (line and column
    /// named), or a rule matches a header A43 excludes.
    pub(in crate::server) fn parse(json: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = serde_json::from_str(json).map_err(|err| PolicyError::Syntax {
            line: err.line(),
            column: err.column(),
            reason: err.to_string().split(" at line").next().unwrap_or_default().to_owned(),
        })?;
        let compile = |rules: Vec<RuleFile>| rules.into_iter().map(Rule::compile).collect::<Result<Vec<_>, _>>();
        Ok(Self { name: file.name, deny: compile(file.deny_rules)?, allow: compile(file.allow_rules)? })
    }

    /// The policy's name.
    pub(in crate::server) fn name(&self) -> &str {
        &self.name
    }

    /// The decision for `caller` calling `path` with `headers`.
    pub(in crate::server) fn decide(&self, caller: &Caller, path: &str, headers: &http::HeaderMap) -> Decision {
        if let Some(rule) = self.deny.iter().find(|rule| rule.matches(caller, path, headers)) {
            return Decision { allowed: false, rule: Some(rule.name.clone()) };
        }
        match self.allow.iter().find(|rule| rule.matches(caller, path, headers)) {
            Some(rule) => Decision { allowed: true, rule: Some(rule.name.clone()) },
            None => Decision { allowed: false, rule: None },
        }
    }
}

impl Rule {
    fn compile(file: RuleFile) -> Result<Self, PolicyError> {
        let source = file.source.unwrap_or_default();
        let request = file.request.unwrap_or_default();
        let mut headers = Vec::new();
        for header in request.headers {
            let key = header.key.to_ascii_lowercase();
            let refused = |why| PolicyError::Header { rule: file.name.clone(), key: header.key.clone(), why };
            if key.starts_with(':') {
                return Err(refused("a pseudo-header"));
            }
            if key.starts_with("grpc-") {
                return Err(refused("a grpc- header, gRPC's own"));
            }
            if key == "host" {
                return Err(refused("Host"));
            }
            if HOP_BY_HOP.contains(&key.as_str()) {
                return Err(refused("a hop-by-hop header"));
            }
            headers.push((key, header.values.iter().map(|v| Pattern::new(v)).collect()));
        }
        Ok(Self {
            name: file.name,
            principals: source.principals.iter().map(|p| Pattern::new(p)).collect(),
            request_principals: source.request_principals.iter().map(|p| Pattern::new(p)).collect(),
            paths: request.paths.iter().map(|p| Pattern::new(p)).collect(),
            headers,
        })
    }

    fn matches(&self, caller: &Caller, path: &str, headers: &http::HeaderMap) -> bool {
        let principals =
            self.principals.is_empty() || self.principals.iter().any(|p| caller.peer_matches(|name| p.matches(name)));
        let requester = self.request_principals.is_empty()
            || caller.request_principal().is_some_and(|who| self.request_principals.iter().any(|p| p.matches(who)));
        let paths = self.paths.is_empty() || self.paths.iter().any(|p| p.matches(path));
        principals
            && requester
            && paths
            && self.headers.iter().all(|(key, values)| header_matches(headers, key, values))
    }
}

/// Whether header `key` has a value one of `values` matches; several
/// values of the header are one, joined with commas (A43).
fn header_matches(headers: &http::HeaderMap, key: &str, values: &[Pattern]) -> bool {
    let mut all = headers.get_all(key).iter().filter_map(|v| v.to_str().ok()).peekable();
    if all.peek().is_none() {
        return false;
    }
    let joined = all.collect::<Vec<_>>().join(",");
    values.iter().any(|v| v.matches(&joined))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::server::transport::{Peer, PeerNames};

    /// gRFC A43's own example, unchanged.
    const EXAMPLE: &str = r#"{
        "name": "example-policy",
        "allow_rules": [
            {"name": "admin-access",
             "source": {"principals": ["spiffe://foo.com/sa/admin1", "spiffe://foo.com/sa/admin2"]},
             "request": {"paths": ["/pkg.service/*"]}},
            {"name": "dev-access",
             "source": {"principals": ["*", ""]},
             "request": {"paths": ["/pkg.service/foo", "/pkg.service/bar"],
                         "headers": [{"key": "dev-path", "values": ["/dev/path/*"]}]}}
        ],
        "deny_rules": [{"name": "deny-access", "request": {"paths": ["*/secret"]}}]
    }"#;

    fn certified(uris: &[&str], dns: &[&str], subject: &str) -> Caller {
        let names = PeerNames {
            uris: uris.iter().map(|s| (*s).to_owned()).collect(),
            dns: dns.iter().map(|s| (*s).to_owned()).collect(),
            subject: subject.to_owned(),
        };
        Caller { peer: Peer::Certified(Arc::new(names)), request_principal: None }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (key, value) in pairs {
            map.append(*key, http::HeaderValue::from_static(value));
        }
        map
    }

    fn decide(
        policy: &Policy,
        caller: &Caller,
        path: &str,
        with: &[(&'static str, &'static str)],
    ) -> (bool, Option<String>) {
        let decision = policy.decide(caller, path, &headers(with));
        (decision.allowed, decision.rule)
    }

    #[test]
    fn the_a43_example_means_what_grpc_says() {
        let policy = Policy::parse(EXAMPLE).expect("A43's example loads");
        assert_eq!(policy.name(), "example-policy");
        let admin = certified(&["spiffe://foo.com/sa/admin1"], &[], "CN=admin");
        assert_eq!(decide(&policy, &admin, "/pkg.service/anything", &[]), (true, Some("admin-access".into())));
        // Deny rules first: not even the admins reach the secret.
        assert_eq!(decide(&policy, &admin, "/pkg.service/secret", &[]), (false, Some("deny-access".into())));
        // Any authenticated caller, or one without a certificate ("" over TLS), with the header.
        let dev = certified(&[], &["dev.example.com"], "CN=dev");
        assert!(decide(&policy, &dev, "/pkg.service/foo", &[("dev-path", "/dev/path/x")]).0);
        assert_eq!(decide(&policy, &dev, "/pkg.service/foo", &[("dev-path", "/prod/x")]), (false, None));
        assert_eq!(decide(&policy, &dev, "/pkg.service/foo", &[]), (false, None), "the header is required");
        let anonymous = Caller { peer: Peer::Anonymous, request_principal: None };
        assert!(decide(&policy, &anonymous, "/pkg.service/bar", &[("dev-path", "/dev/path/")]).0);
        // Over plaintext no principal matches at all (A43), not even "".
        let plaintext = Caller::default();
        assert_eq!(decide(&policy, &plaintext, "/pkg.service/bar", &[("dev-path", "/dev/path/")]), (false, None));
    }

    #[test]
    fn principals_are_uri_sans_then_dns_sans_then_the_subject() {
        let policy = Policy::parse(
            r#"{"name": "p", "allow_rules": [
                {"name": "by-uri", "source": {"principals": ["spiffe://acme/*"]}},
                {"name": "by-dns", "source": {"principals": ["*.acme.internal"]}},
                {"name": "by-subject", "source": {"principals": ["CN=robot,O=acme"]}}]}"#,
        )
        .expect("loads");
        let rule = |caller: &Caller| decide(&policy, caller, "/a.B/C", &[]).1;
        assert_eq!(rule(&certified(&["spiffe://acme/sa/x"], &["x.acme.internal"], "")), Some("by-uri".into()));
        assert_eq!(rule(&certified(&["spiffe://other/sa/x"], &["x.acme.internal"], "")), Some("by-dns".into()));
        assert_eq!(rule(&certified(&[], &[], "CN=robot,O=acme")), Some("by-subject".into()));
        assert_eq!(rule(&certified(&[], &[], "CN=human,O=acme")), None);
    }

    #[test]
    fn a_jwt_caller_is_matched_by_request_principals() {
        let policy = Policy::parse(
            r#"{"name": "p", "allow_rules": [
                {"name": "alice", "source": {"request_principals": ["https://issuer.example/alice"]},
                 "request": {"paths": ["/search.v1.SearchService/*"]}}]}"#,
        )
        .expect("loads");
        let alice = Caller { peer: Peer::Plaintext, request_principal: Some("https://issuer.example/alice".into()) };
        let bob = Caller { request_principal: Some("https://issuer.example/bob".into()), ..alice.clone() };
        assert!(decide(&policy, &alice, "/search.v1.SearchService/Search", &[]).0);
        assert!(!decide(&policy, &bob, "/search.v1.SearchService/Search", &[]).0);
        assert!(!decide(&policy, &Caller::default(), "/search.v1.SearchService/Search", &[]).0, "no token: no caller");
    }

    #[test]
    fn multi_valued_headers_are_one_value_joined_with_commas() {
        let policy = Policy::parse(
            r#"{"name": "p", "allow_rules": [{"name": "r", "request": {"headers": [{"key": "x-team", "values": ["red,blue"]}]}}]}"#,
        )
        .expect("loads");
        assert!(decide(&policy, &Caller::default(), "/a.B/C", &[("x-team", "red"), ("x-team", "blue")]).0);
        assert!(!decide(&policy, &Caller::default(), "/a.B/C", &[("x-team", "red")]).0);
    }

    #[test]
    fn headers_a43_forbids_and_unknown_fields_are_refused_at_load_with_where() {
        for (key, why) in [
            (":path", "a pseudo-header"),
            ("grpc-timeout", "a grpc- header"),
            ("Host", "Host"),
            ("connection", "a hop-by-hop header"),
            ("TE", "a hop-by-hop header"),
        ] {
            let json = format!(
                r#"{{"name": "p", "allow_rules": [{{"name": "r", "request": {{"headers": [{{"key": "{key}", "values": ["x"]}}]}}}}]}}"#
            );
            let err = Policy::parse(&json).expect_err(key).to_string();
            assert!(err.contains(why) && err.contains(&format!("{key:?}")), "{key}: {err}");
        }
        let unknown =
            Policy::parse("{\n  \"name\": \"p\",\n  \"allow_rules\": [],\n  \"allow_rulez\": []\n}").expect_err("typo");
        assert!(unknown.to_string().starts_with("line 4, column"), "{unknown}");
        let missing = Policy::parse(r#"{"name": "p"}"#).expect_err("allow_rules is required");
        assert!(missing.to_string().contains("allow_rules"), "{missing}");
    }
}
