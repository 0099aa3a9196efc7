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
