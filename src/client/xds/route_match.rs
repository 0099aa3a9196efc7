//! What a call must match to take a route (gRFC A28): its path (prefix,
//! exact, or a whole-path regex), its headers, and a random fraction.

use serde::{Serialize, Serializer};

use super::fields::per_million;
use crate::pb::envoy::config::route::v3 as rds;
use crate::pb::envoy::r#type::matcher::v3 as matcher;

/// A regular expression (RE2 syntax, as envoy's `safe_regex` says) that
/// must match the whole text.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// `pattern`, anchored at both ends.
    ///
    /// # Errors
    /// Not a valid regular expression.
    pub fn new(pattern: &str) -> Result<Self, String> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(Self)
            .map_err(|err| format!("invalid regex {pattern:?}: {}", err.to_string().replace('\n', " ")))
    }

    /// `pattern` as it is, to find within a text (a rewrite's).
    ///
    /// # Errors
    /// Not a valid regular expression.
    pub fn unanchored(pattern: &str) -> Result<Self, String> {
        regex::Regex::new(pattern)
            .map(Self)
            .map_err(|err| format!("invalid regex {pattern:?}: {}", err.to_string().replace('\n', " ")))
    }

    /// Whether the whole of `text` matches.
    #[must_use]
    pub fn matches(&self, text: &str) -> bool {
        self.0.is_match(text)
    }

    /// The compiled expression (for rewrites).
    #[must_use]
    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// A route's match.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteMatch {
    /// The path's rule.
    pub path: PathMatch,
    /// Whether prefix and exact path matches heed case (a regex always does).
    pub case_sensitive: bool,
    /// Every header rule must hold.
    pub headers: Vec<HeaderMatch>,
    /// The share of calls, out of a million, the route takes (`runtime_fraction`).
    pub fraction_per_million: Option<u32>,
}

/// The path's rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    /// The path starts with this (`""` matches every path).
    Prefix(String),
    /// The path is this.
    Exact(String),
    /// The whole path matches this.
    Regex(Pattern),
}

/// One header's rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderMatch {
    /// The header's name, lowercase.
    pub name: String,
    /// What its value must be.
    pub rule: HeaderRule,
    /// The rule's answer is turned around.
    pub invert: bool,
}

/// What a header's value must be.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderRule {
    /// Equal to this (`ignore_case` aside).
    Exact(String, bool),
    /// Starting with this.
    Prefix(String, bool),
    /// Ending with this.
    Suffix(String, bool),
    /// Containing this.
    Contains(String, bool),
    /// Matching this whole.
    Regex(Pattern),
    /// A whole number in `[start, end)`.
    Range(i64, i64),
    /// Present (or absent, when false).
    Present(bool),
}

/// Decodes a route's match; `None` for a route this client skips (a
/// query parameter matcher, a path rule it does not know), as grpc does.
///
/// # Errors
/// A regex that does not compile, a range whose end is before its start.
pub(super) fn decode_match(m: &rds::RouteMatch) -> Result<Option<RouteMatch>, String> {
    use rds::route_match::PathSpecifier;
    if !m.query_parameters.is_empty() {
        return Ok(None);
    }
    let path = match &m.path_specifier {
        Some(PathSpecifier::Prefix(p)) => PathMatch::Prefix(p.clone()),
        Some(PathSpecifier::Path(p)) => PathMatch::Exact(p.clone()),
        Some(PathSpecifier::SafeRegex(r)) => {
            PathMatch::Regex(Pattern::new(&r.regex).map_err(|e| format!("path: {e}"))?)
        }
        #[allow(unreachable_patterns)]
        _ => return Ok(None),
    };
    let mut headers = Vec::with_capacity(m.headers.len());
    for header in &m.headers {
        headers.push(decode_header(header).map_err(|e| format!("header {:?}: {e}", header.name))?);
    }
    let fraction_per_million = m
        .runtime_fraction
        .as_ref()
        .and_then(|f| f.default_value.as_ref())
        .map(|f| per_million(f.numerator, f.denominator));
    Ok(Some(RouteMatch { path, case_sensitive: m.case_sensitive.unwrap_or(true), headers, fraction_per_million }))
}

fn decode_header(h: &rds::HeaderMatcher) -> Result<HeaderMatch, String> {
    use rds::header_matcher::HeaderMatchSpecifier as S;
    let rule = match &h.header_match_specifier {
        Some(S::ExactMatch(v)) => HeaderRule::Exact(v.clone(), false),
        Some(S::PrefixMatch(v)) => HeaderRule::Prefix(v.clone(), false),
        Some(S::SuffixMatch(v)) => HeaderRule::Suffix(v.clone(), false),
        Some(S::ContainsMatch(v)) => HeaderRule::Contains(v.clone(), false),
        Some(S::SafeRegexMatch(r)) => HeaderRule::Regex(Pattern::new(&r.regex)?),
        Some(S::RangeMatch(r)) if r.end < r.start => {
            return Err(format!("range_match ends ({}) before it starts ({})", r.end, r.start));
        }
        Some(S::RangeMatch(r)) => HeaderRule::Range(r.start, r.end),
        Some(S::PresentMatch(present)) => HeaderRule::Present(*present),
        Some(S::StringMatch(s)) => string_rule(s)?,
        #[allow(unreachable_patterns)]
        _ => return Err("no rule this client knows".to_owned()),
    };
    Ok(HeaderMatch { name: h.name.to_ascii_lowercase(), rule, invert: h.invert_match })
}

fn string_rule(s: &matcher::StringMatcher) -> Result<HeaderRule, String> {
    use matcher::string_matcher::MatchPattern as P;
    let ic = s.ignore_case;
    Ok(match &s.match_pattern {
        Some(P::Exact(v)) => HeaderRule::Exact(v.clone(), ic),
        Some(P::Prefix(v)) => HeaderRule::Prefix(v.clone(), ic),
        Some(P::Suffix(v)) => HeaderRule::Suffix(v.clone(), ic),
        Some(P::Contains(v)) => HeaderRule::Contains(v.clone(), ic),
        Some(P::SafeRegex(r)) => HeaderRule::Regex(Pattern::new(&r.regex)?),
        #[allow(unreachable_patterns)]
        _ => return Err("string_match: no pattern".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_match(path: rds::route_match::PathSpecifier) -> rds::RouteMatch {
        rds::RouteMatch { path_specifier: Some(path), ..Default::default() }
    }

    #[test]
    fn a_path_regex_matches_the_whole_path() {
        let p = Pattern::new("/search.v1.Search/S.*").expect("a regex");
        assert!(p.matches("/search.v1.Search/Search"));
        assert!(!p.matches("x/search.v1.Search/Search"));
        assert!(Pattern::new("(").expect_err("invalid").starts_with("invalid regex"));
    }

    #[test]
    fn a_route_with_an_invalid_regex_is_refused() {
        let regex = matcher::RegexMatcher { regex: "[".to_owned() };
        let m = route_match(rds::route_match::PathSpecifier::SafeRegex(regex));
        assert!(decode_match(&m).expect_err("refused").starts_with("path: invalid regex"));
    }

    #[test]
    fn case_sensitivity_defaults_to_true_and_fractions_are_per_million() {
        let mut m = route_match(rds::route_match::PathSpecifier::Prefix("/a".to_owned()));
        let decoded = decode_match(&m).expect("valid").expect("kept");
        assert!(decoded.case_sensitive);
        assert_eq!(decoded.fraction_per_million, None);
        m.case_sensitive = Some(false);
        m.runtime_fraction = Some(crate::pb::envoy::config::core::v3::RuntimeFractionalPercent {
            default_value: Some(crate::pb::envoy::r#type::v3::FractionalPercent { numerator: 25, denominator: 0 }),
            ..Default::default()
        });
        let decoded = decode_match(&m).expect("valid").expect("kept");
        assert!(!decoded.case_sensitive);
        assert_eq!(decoded.fraction_per_million, Some(250_000));
    }

    #[test]
    fn a_route_with_query_parameters_is_skipped() {
        let mut m = route_match(rds::route_match::PathSpecifier::Prefix(String::new()));
        m.query_parameters.push(Default::default());
        assert_eq!(decode_match(&m), Ok(None));
    }

    #[test]
    fn a_backwards_range_is_refused() {
        use rds::header_matcher::HeaderMatchSpecifier as S;
        let mut m = route_match(rds::route_match::PathSpecifier::Prefix(String::new()));
        let range = crate::pb::envoy::r#type::v3::Int64Range { start: 10, end: 5 };
        m.headers.push(rds::HeaderMatcher {
            name: "X-Shard".to_owned(),
            header_match_specifier: Some(S::RangeMatch(range)),
            ..Default::default()
        });
        assert!(decode_match(&m).expect_err("refused").contains("range_match ends"));
        m.headers[0].header_match_specifier = Some(S::ExactMatch("a".to_owned()));
        let decoded = decode_match(&m).expect("valid").expect("kept");
        assert_eq!(decoded.headers[0].name, "x-shard");
    }
}
