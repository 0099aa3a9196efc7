//! The fuzz target of authorization policies (see `mod.rs`): the fuzzer's
//! bytes as a policy file, through the loader the server uses at start and
//! at each reload, then the loaded policy asked about calls built from the
//! fuzzer's choices (a path, the peer's names, a JWT caller, headers), each
//! choice a fixed word, a string of the policy itself (its `*` made a
//! letter, so that prefixes and suffixes match), or the fuzzer's bytes.
//! What the decisions must be is checked against policies made from the
//! same rules (each allow rule also a deny rule; no allow rule; no deny
//! rule), never a second copy of the matcher.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::Input;
use crate::server::security::{Caller, Policy};
use crate::server::transport::{Peer, PeerNames};

/// Words a request's parts are chosen among, beside the policy's own.
const WORDS: [&str; 10] = [
    "/search.v1.SearchService/Search",
    "/grpc.health.v1.Health/Check",
    "/pkg.service/secret",
    "spiffe://foo.com/sa/admin1",
    "https://issuer.example/alice",
    "x-team",
    "dev-path",
    "search",
    "CN=robot,O=acme",
    "",
];
/// The headers gRFC A43 forbids in rules: pseudo-headers and `grpc-` ones
/// by prefix, Host, and the hop-by-hop headers of RFC 9110 (written here
/// apart from the loader's list, so that a header left out of it shows).
const FORBIDDEN: &str = "host connection keep-alive proxy-authenticate proxy-authorization te trailer \
                         transfer-encoding upgrade";

/// One call a policy decides on.
struct Call {
    caller: Caller,
    path: String,
    headers: HeaderMap,
}

/// A policy file (the fuzzer's bytes after its calls' choices): refused
/// with where or why, or loaded; loaded only without a header A43 forbids;
/// loaded twice, deciding the same; deny rules before allow rules; no call
/// allowed that no allow rule matches.
pub fn policy(data: &[u8]) {
    let _ = decided(data);
}

/// [`policy`], with each decision: whether the call was allowed, and
/// whether a rule decided.
pub(super) fn decided(data: &[u8]) -> Vec<(bool, bool)> {
    let mut input = Input::new(data);
    let count = input.byte() % 8;
    // Each call's choices: twelve bytes.
    let choices: Vec<&[u8]> = (0..count).map(|_| input.bytes(12)).collect();
    // The server reads a policy as text: other bytes never reach the loader.
    let Ok(text) = std::str::from_utf8(input.rest()) else { return Vec::new() };
    let policy = Policy::parse(text);
    let again = Policy::parse(text);
    let policy = match (policy, again) {
        (Ok(policy), Ok(again)) => (policy, again),
        (Err(err), Err(same)) => {
            assert_eq!(err.to_string(), same.to_string(), "loaded twice");
            refused(&err);
            return Vec::new();
        }
        (first, again) => panic!("loaded twice: {first:?}, then {again:?}"),
    };
    let file: Value = serde_json::from_str(text).expect("a policy that loads is JSON");
    assert_no_forbidden_header(&file);
    let pool = strings(&file);
    let calls: Vec<Call> = choices.into_iter().map(|bytes| call(&mut Input::new(bytes), &pool)).collect();
    decisions(&policy, &file, &calls)
}

/// A refusal: where (a line from 1) or which rule and header, and why.
fn refused(err: &crate::server::PolicyError) {
    use crate::server::PolicyError;
    match err {
        PolicyError::Syntax { line, reason, .. } => {
            assert!(*line >= 1 && !reason.is_empty(), "a refusal without where or why: {err}");
        }
        PolicyError::Header { key, why, .. } => {
            assert!(!why.is_empty() && forbidden(key), "header {key:?} refused, which A43 allows: {err}");
        }
    }
}

fn forbidden(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.starts_with(':') || key.starts_with("grpc-") || FORBIDDEN.split_whitespace().any(|name| name == key)
}

/// No rule of a loaded policy matches a header A43 forbids.
fn assert_no_forbidden_header(file: &Value) {
    let rules = ["deny_rules", "allow_rules"].into_iter().filter_map(|list| file[list].as_array()).flatten();
    for rule in rules {
        for header in rule["request"]["headers"].as_array().into_iter().flatten() {
            let key = header["key"].as_str().unwrap_or_default();
            assert!(!forbidden(key), "a policy matching header {key:?} was loaded");
        }
    }
}

/// Every string of `value`, its `*` made a letter.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.replace('*', "x")],
        Value::Array(all) => all.iter().flat_map(strings).collect(),
        Value::Object(map) => map.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// A word, the policy's or [`WORDS`]', or the fuzzer's bytes.
fn word(input: &mut Input<'_>, pool: &[String]) -> String {
    let index = usize::from(input.byte());
    if index == 255 {
        return String::from_utf8_lossy(input.short()).into_owned();
    }
    match WORDS.get(index % (WORDS.len() + pool.len())) {
        Some(word) => (*word).to_owned(),
        None => pool[index % (WORDS.len() + pool.len()) - WORDS.len()].clone(),
    }
}

/// A call of the fuzzer's choosing.
fn call(input: &mut Input<'_>, pool: &[String]) -> Call {
    let path = word(input, pool);
    let peer = match input.byte() % 3 {
        0 => Peer::Plaintext,
        1 => Peer::Anonymous,
        _ => Peer::Certified(Arc::new(PeerNames {
            uris: vec![word(input, pool)],
            dns: vec![word(input, pool)],
            subject: word(input, pool),
        })),
    };
    let request_principal = (input.byte() & 1 == 1).then(|| word(input, pool));
    let mut headers = HeaderMap::new();
    for _ in 0..input.byte() % 4 {
        let (name, value) = (word(input, pool), word(input, pool));
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            headers.append(name, value);
        }
    }
    Call { caller: Caller { peer, request_principal }, path, headers }
}

/// The decisions of `policy` (loaded twice) on `calls`, against those of
/// the same rules rearranged.
fn decisions((policy, again): &(Policy, Policy), file: &Value, calls: &[Call]) -> Vec<(bool, bool)> {
    let (deny, allow) = (&file["deny_rules"], &file["allow_rules"]);
    let rules = |list: &Value| list.as_array().cloned().unwrap_or_default();
    let both = [rules(deny), rules(allow)].concat();
    let made = |deny: Value, allow: Value| {
        let text = json!({"name": file["name"], "deny_rules": deny, "allow_rules": allow}).to_string();
        Policy::parse(&text).unwrap_or_else(|err| panic!("the same rules, rearranged, do not load: {err}"))
    };
    let denying = made(json!(both), json!(rules(allow)));
    let no_allow = made(json!(rules(deny)), json!([]));
    let no_deny = made(json!([]), json!(rules(allow)));
    let names = |rules: &Value| -> Vec<String> {
        rules.as_array().into_iter().flatten().filter_map(|rule| rule["name"].as_str()).map(str::to_owned).collect()
    };
    let allow_names = names(allow);
    let mut all = Vec::new();
    for Call { caller, path, headers } in calls {
        let decision = policy.decide(caller, path, headers);
        let what = || format!("{path} by {caller:?} with {headers:?}: {decision:?}");
        assert_eq!(again.decide(caller, path, headers), decision, "loaded twice, decided otherwise: {}", what());
        let by_deny = !decision.allowed && decision.rule.is_some();
        let by_allow = decision.rule.as_ref().is_some_and(|rule| allow_names.contains(rule));
        assert!(!decision.allowed || by_allow, "allowed by no allow rule: {}", what());
        // Deny beats allow: each allow rule also a deny rule, nothing passes.
        let denied = denying.decide(caller, path, headers);
        assert!(!denied.allowed && denied.rule.is_some() == (decision.allowed || by_deny), "{}", what());
        // No allow rule matches: denied.
        let without = no_allow.decide(caller, path, headers);
        assert!(!without.allowed, "allowed without an allow rule: {}", what());
        assert_eq!(without.rule.is_some(), by_deny, "{}", what());
        // Without its deny rules, what was allowed still is, by the same rule.
        let open = no_deny.decide(caller, path, headers);
        assert!(!decision.allowed || open == decision, "{}", what());
        all.push((decision.allowed, decision.rule.is_some()));
    }
    all
}
