//! The corpus's seeds, written as the targets read their bytes ([`Seed`]
//! mirrors [`super::Input`]): a few good inputs of each kind, from which
//! the fuzzers and the mutation test start. Written again, after a change
//! to how a target reads its bytes, by
//! `cargo test --lib server::fuzzing::seeds -- --ignored`; the inputs of
//! bugs found (`crash-*`) stay as they are.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use prost::Message;

use super::dispatch::paths;
use super::tokens::{AUDIENCE, ISSUER, LATER};
use crate::pb::testing::{Payload, SimpleRequest};
use crate::pb::v1::{ClassifyRequest, CountRequest, ScanRequest, SearchRequest};
use crate::server::protocols::compression::{ENCODINGS, Encoding};
use crate::server::protocols::envelope::encode;

/// The bytes of one input, written choice by choice.
#[derive(Debug, Default, Clone)]
struct Seed(Vec<u8>);

impl Seed {
    fn byte(mut self, byte: u8) -> Self {
        self.0.push(byte);
        self
    }

    fn short(mut self, bytes: &[u8]) -> Self {
        let len = u8::try_from(bytes.len()).expect("a short value");
        self.0.push(len);
        self.0.extend_from_slice(bytes);
        self
    }

    /// Headers as `fuzzing::headers::headers` reads them: each by its
    /// index in `HEADER_NAMES`.
    fn headers(self, headers: &[(&str, &[u8])]) -> Self {
        let names = super::headers::HEADER_NAMES;
        let count = u8::try_from(headers.len()).expect("a few headers");
        headers.iter().fold(self.byte(count), |seed, (name, value)| {
            let index = names.iter().position(|known| known == name).expect("a known header");
            seed.byte(u8::try_from(index).expect("a short list")).short(value)
        })
    }

    /// A body in chunks of these `lengths`, the last taking the rest.
    fn chunks(self, lengths: &[u8], body: &[u8]) -> Vec<u8> {
        let mut seed = self.short(lengths);
        seed.0.extend_from_slice(body);
        seed.0
    }

    fn rest(mut self, bytes: &[u8]) -> Vec<u8> {
        self.0.extend_from_slice(bytes);
        self.0
    }
}

fn search(query: &str) -> Vec<u8> {
    SearchRequest { query: query.into() }.encode_to_vec()
}

fn envelope_seeds() -> Vec<Vec<u8>> {
    let body = [encode(0, b"hello"), encode(1, b"x"), encode(0, b"")].concat();
    vec![
        Seed::default().byte(4).byte(1).chunks(&[3, 7], &body),
        Seed::default().byte(4).byte(0).chunks(&[], &body[..body.len() - 2]),
        Seed::default().byte(2).byte(1).chunks(&[1, 1, 1], &encode(0, b"too long")),
        Seed::default().byte(3).byte(1).chunks(&[], &encode(2, b"flags")),
    ]
}

fn compression_seeds() -> Vec<Vec<u8>> {
    let text = "banana ".repeat(100);
    let zeros = vec![0u8; 64 << 10];
    let mut seeds = Vec::new();
    for (index, encoding) in ENCODINGS.into_iter().enumerate() {
        let index = u8::try_from(index).expect("three");
        seeds.push(Seed::default().byte(index).byte(4).short(b"gzip, zstd").rest(&encoding.compress(text.as_bytes())));
        seeds.push(Seed::default().byte(index).byte(3).short(b"identity").rest(&encoding.compress(&zeros)));
    }
    seeds.push(Seed::default().byte(0).byte(2).short(b"deflate;q=1, br").rest(b"not gzip at all"));
    seeds
}

fn grpc_timeout_seeds() -> Vec<Vec<u8>> {
    ["1S", "250m", "99999999n", "0m", "2H", "1500", "9999999999", "soon"].map(|s| s.as_bytes().to_vec()).to_vec()
}

const TRACEPARENT: &[u8] = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn trace_bin() -> Vec<u8> {
    let mut bytes = vec![0, 0];
    bytes.extend_from_slice(&[0x4b; 16]);
    bytes.push(1);
    bytes.extend_from_slice(&[0x0f; 8]);
    bytes.extend_from_slice(&[2, 1]);
    bytes
}

fn metadata_seeds() -> Vec<Vec<u8>> {
    let binary = STANDARD.encode(trace_bin());
    let headers: [(&str, &[u8]); 6] = [
        ("traceparent", TRACEPARENT),
        ("tracestate", b"congo=t61rcWkgMzE"),
        ("grpc-trace-bin", binary.as_bytes()),
        ("grpc-timeout", b"5S"),
        ("grpc-accept-encoding", b"identity, gzip"),
        ("x-user-bin", b"AAEC"),
    ];
    vec![
        Seed::default().headers(&headers).short(TRACEPARENT).short(b"a=1,b=2").rest(&trace_bin()),
        Seed::default().headers(&headers[2..3]).short(b"00-bad").short(b"").rest(&trace_bin()[..20]),
    ]
}

fn connect_json_seeds() -> Vec<Vec<u8>> {
    let json: [(u8, &[u8]); 7] = [
        (0, br#"{"query":"Banana"}"#),
        (2, br#"{"queries":["a","banana"]}"#),
        (5, br#"{"queries":"3","matches":2}"#),
        (7, br#"{"matches":[{"line":"1","column":"2","offset":"3"}]}"#),
        (9, br#"{"responseSize":3,"payload":{"body":"AAE="},"expectCompressed":{"value":true}}"#),
        (16, br#"{"status":"SERVING"}"#),
        (0, &search("banana")),
    ];
    json.iter().map(|(index, bytes)| Seed::default().byte(*index).rest(bytes)).collect()
}

fn lenient_seeds() -> Vec<Vec<u8>> {
    let simple = SimpleRequest {
        response_size: 7,
        payload: Some(Payload { body: vec![1, 2], ..Payload::default() }),
        ..SimpleRequest::default()
    };
    vec![
        Seed::default().byte(0).rest(&search("banana")),
        Seed::default().byte(0).rest(&[0x08, 0x01, 0x0a, 0x01, b'b']),
        Seed::default().byte(1).rest(&ClassifyRequest { queries: vec!["a".into(), "b".into()] }.encode_to_vec()),
        Seed::default().byte(2).rest(&CountRequest { queries: vec!["x".into()] }.encode_to_vec()),
        Seed::default().byte(3).rest(&ScanRequest { text: "banana\nbanana".into() }.encode_to_vec()),
        Seed::default().byte(4).rest(&simple.encode_to_vec()),
        Seed::default().byte(6).rest(&[0x12, 0x02, 0x08, 0x05, 0x12, 0x02, 0x1a, 0x00]),
    ]
}

/// A request to `path` over protocol `protocol` (an index into
/// `dispatch::PROTOCOLS`), HTTP/2.
fn request(protocol: u8, path: &str, headers: &[(&str, &[u8])], query: &str, body: &[u8]) -> Vec<u8> {
    on(Seed::default().byte(protocol), path, headers, query, body)
}

/// [`request`] after `seed`'s first choices.
fn on(seed: Seed, path: &str, headers: &[(&str, &[u8])], query: &str, body: &[u8]) -> Vec<u8> {
    let index = paths().iter().position(|known| *known == path).unwrap_or_else(|| panic!("{path} is served"));
    let seed = seed.byte(u8::try_from(index).expect("a few paths")).byte(0);
    seed.headers(headers).short(query.as_bytes()).chunks(&[], body)
}

fn dispatch_seeds() -> Vec<Vec<u8>> {
    const SEARCH: &str = "/search.v1.SearchService/Search";
    let message = encode(0, &search("banana"));
    let gzipped = encode(1, &Encoding::Gzip.compress(&search("banana")));
    let classify = [
        encode(0, &ClassifyRequest { queries: vec!["banana".into()] }.encode_to_vec()),
        encode(0, &ClassifyRequest { queries: vec!["kiwi".into(), "BANANA".into()] }.encode_to_vec()),
    ]
    .concat();
    let scan = ScanRequest { text: "one banana\ntwo bananas".into() }.encode_to_vec();
    let get = format!("connect=v1&encoding=proto&base64=1&message={}", URL_SAFE_NO_PAD.encode(search("banana")));
    vec![
        request(0, SEARCH, &[("grpc-timeout", b"1S")], "", &message),
        request(0, SEARCH, &[("grpc-encoding", b"gzip"), ("grpc-accept-encoding", b"gzip")], "", &gzipped),
        request(1, "/search.v1.SearchService/Classify", &[("traceparent", TRACEPARENT)], "", &classify),
        request(0, "/search.v1.SearchService/Scan", &[], "", &encode(0, &scan)),
        request(0, "/grpc.health.v1.Health/Check", &[], "", &encode(0, b"")),
        request(0, "/Search/search", &[], "", &message),
        request(2, SEARCH, &[], "", &message),
        request(3, SEARCH, &[("x-user-bin", b"AAEC")], "", STANDARD.encode(&message).as_bytes()),
        request(
            6,
            SEARCH,
            &[("connect-protocol-version", b"1"), ("connect-timeout-ms", b"500")],
            "",
            br#"{"query":"banana"}"#,
        ),
        request(5, SEARCH, &[("content-encoding", b"gzip")], "", &Encoding::Gzip.compress(&search("banana"))),
        request(7, SEARCH, &[], "connect=v1&encoding=json&message=%7B%22query%22%3A%22banana%22%7D", b""),
        request(7, SEARCH, &[], &get, b""),
        request(9, "/search.v1.SearchService/Scan", &[], "", &encode(0, br#"{"text":"banana"}"#)),
        request(
            8,
            "/search.v1.SearchService/Count",
            &[],
            "",
            &encode(0, &CountRequest { queries: vec!["a".into()] }.encode_to_vec()),
        ),
        request(7, "/", &[], "", b""),
    ]
}

/// Requests to the secured stack of the dispatch target (protocol
/// `protocol`, then `authorization`, a choice), and the code each must get.
fn secured_dispatch_seeds() -> Vec<(Vec<u8>, u8)> {
    let message = encode(0, &search("banana"));
    let search = |protocol: u8, authorization: u8| {
        let seed = Seed::default().byte(132 + protocol).byte(authorization);
        on(seed, "/search.v1.SearchService/Search", &[], "", &message)
    };
    let health = Seed::default().byte(132).byte(0);
    let health = on(health, "/grpc.health.v1.Health/Check", &[], "", &encode(0, b""));
    [(0, 1, 0), (2, 1, 0), (0, 0, 7), (0, 2, 7), (1, 3, 7), (0, 4, 16), (3, 5, 16)]
        .into_iter()
        .map(|(protocol, authorization, code)| (search(protocol, authorization), code))
        .chain([(health, 0)])
        .collect()
}

/// A token the `jwt` target signs: with signer `by` (an index of its
/// signers) and its algorithm `alg`, the header naming `name` (an index of
/// its algorithm names, 0 the signer's own) and a kid (`kid`, a choice),
/// claims of issuer and audience choices and times from now.
fn signed(by: u8, alg: u8, name: u8, kid: u8, (iss, aud): (u8, u8), times: [Option<i16>; 3]) -> Vec<u8> {
    let seed = Seed::default().byte(1).byte(0).byte(by).byte(alg).byte(0).byte(name).byte(kid);
    let seed = seed.byte(0).byte(iss).byte(aud).byte(0);
    let seed = times.into_iter().fold(seed, |seed, time| match time {
        None => seed.byte(0),
        Some(offset) => offset.to_be_bytes().into_iter().fold(seed.byte(3), Seed::byte),
    });
    seed.0
}

fn jwt_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = super::tokens::fixed_tokens_for_seeds()
        .into_iter()
        .map(|token| Seed::default().byte(0).rest(format!("Bearer {token}").as_bytes()))
        .collect();
    for malformed in ["Bearer not.a.token", "Bearer a.b", "Basic dXNlcjpwYXNz", "Bearer eyJhbGciOiJub25lIn0.e30."] {
        seeds.push(Seed::default().byte(0).rest(malformed.as_bytes()));
    }
    let good = [Some(600), None, Some(0)];
    seeds.extend([
        signed(0, 0, 0, 0, (0, 0), good),
        signed(1, 0, 0, 0, (0, 1), good),
        signed(1, 3, 0, 1, (0, 0), good),
        signed(2, 0, 0, 0, (0, 0), good),
        signed(0, 0, 0, 0, (0, 0), [Some(-3600), None, Some(-4000)]),
        signed(0, 0, 0, 0, (0, 0), [Some(600), Some(3600), None]),
        signed(0, 0, 0, 0, (0, 0), [Some(600), None, Some(3600)]),
        signed(0, 0, 0, 0, (1, 0), good),
        signed(0, 0, 0, 0, (0, 2), good),
        signed(0, 0, 7, 0, (0, 0), good),
        signed(3, 0, 0, 0, (0, 0), good),
        signed(4, 0, 0, 0, (0, 0), good),
        signed(5, 0, 6, 1, (0, 0), good),
        signed(0, 0, 0, 2, (0, 0), good),
        signed(0, 0, 0, 3, (0, 0), good),
        signed(0, 0, 2, 0, (0, 0), good),
    ]);
    let header = br#"{"alg":"ES256","kid":"ec1","crit":["exp"]}"#;
    let claims = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"alice","exp":{LATER},"exp":1}}"#);
    seeds.push(Seed::default().byte(1).byte(0).byte(0).byte(0).byte(1).short(header).byte(1).rest(claims.as_bytes()));
    seeds
}

/// gRFC A43's example, the policies of docs/security.md and
/// tests/it/security.rs, shapes of grpc-go's examples, and near misses.
const POLICIES: [&str; 10] = [
    r#"{"name": "example-policy",
        "allow_rules": [
          {"name": "admin-access",
           "source": {"principals": ["spiffe://foo.com/sa/admin1", "spiffe://foo.com/sa/admin2"]},
           "request": {"paths": ["/pkg.service/*"]}},
          {"name": "dev-access", "source": {"principals": ["*", ""]},
           "request": {"paths": ["/pkg.service/foo", "/pkg.service/bar"],
                       "headers": [{"key": "dev-path", "values": ["/dev/path/*"]}]}}],
        "deny_rules": [{"name": "deny-access", "request": {"paths": ["*/secret"]}}]}"#,
    r#"{"name": "search-policy", "allow_rules": [
        {"name": "health", "request": {"paths": ["/grpc.health.v1.Health/*"]}},
        {"name": "alice", "source": {"request_principals": ["https://issuer.example/alice"]}}]}"#,
    r#"{"name": "table",
        "deny_rules": [{"name": "not-bob", "source": {"request_principals": ["https://issuer.example/bob"]}}],
        "allow_rules": [
          {"name": "tokens", "source": {"request_principals": ["https://issuer.example/alice", "https://issuer.example/bob"]},
           "request": {"paths": ["/search.v1.SearchService/Search"]}},
          {"name": "workloads", "source": {"principals": ["spiffe://acme/ns/web/sa/searcher"]},
           "request": {"paths": ["/search.v1.SearchService/Search"]}},
          {"name": "team", "request": {"paths": ["/search.v1.SearchService/Search"],
                                       "headers": [{"key": "x-team", "values": ["search"]}]}},
          {"name": "carol-everything", "source": {"request_principals": ["https://issuer.example/carol"]},
           "request": {"paths": ["/search.v1.SearchService/*"]}},
          {"name": "probes", "request": {"paths": ["/grpc.health.v1.Health/*"]}}]}"#,
    r#"{"name": "mesh", "allow_rules": [{"name": "searchers",
        "source": {"principals": ["spiffe://acme/ns/web/sa/searcher", "*.acme.internal", "CN=robot,O=acme"]},
        "request": {"paths": ["/search.v1.SearchService/Search"]}}]}"#,
    r#"{"name": "authz", "deny_rules": [],
        "allow_rules": [
          {"name": "allow_UnaryEcho", "request": {"paths": ["/grpc.examples.echo.Echo/UnaryEcho"],
           "headers": [{"key": "UNARY_ECHO:W", "values": ["true"]}]}},
          {"name": "allow_all_with_key", "source": {"principals": ["*"]},
           "request": {"headers": [{"key": "key-abc", "values": ["val-abc", "val-def"]}]}}]}"#,
    r#"{"name": "p", "allow_rules": [{"name": "r", "request": {"headers": [{"key": "x-team", "values": ["red,blue", "*"]}]}}]}"#,
    r#"{"name": "p", "allow_rules": [{"name": "r", "request": {"headers": [{"key": "grpc-timeout", "values": ["1S"]}]}}]}"#,
    "{\n  \"name\": \"p\",\n  \"allow_rules\": [],\n  \"allow_rulez\": []\n}",
    r#"{"name": "p"}"#,
    r#"{"name": "p", "allow_rules": [{"name": "r", "request": {"headers": [{"key": "TE", "values": ["trailers"]}]}},]}"#,
];

/// Calls the `policy` target builds, each twelve choices: a path, a peer
/// (and its names), a JWT caller, headers; a word by its index among
/// `WORDS` (0 to 9), then the policy's own strings.
const CALLS: [[u8; 12]; 6] = [
    [0, 0, 1, 4, 1, 5, 7, 0, 0, 0, 0, 0],
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [2, 2, 3, 9, 9, 0, 0, 0, 0, 0, 0, 0],
    [12, 2, 3, 9, 8, 1, 4, 1, 6, 13, 0, 0],
    [15, 1, 1, 11, 2, 6, 14, 16, 17, 0, 0, 0],
    [11, 2, 10, 12, 14, 1, 19, 3, 18, 21, 5, 20],
];

fn policy_seeds() -> Vec<Vec<u8>> {
    let calls = CALLS.as_flattened();
    let count = u8::try_from(CALLS.len()).expect("a few calls");
    POLICIES.iter().map(|policy| Seed::default().byte(count).rest(&[calls, policy.as_bytes()].concat())).collect()
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*: run by hand after a change to how a target reads its bytes"]
fn write_seeds() {
    let all: [(&str, Vec<Vec<u8>>); 9] = [
        ("envelope", envelope_seeds()),
        ("compression", compression_seeds()),
        ("grpc_timeout", grpc_timeout_seeds()),
        ("metadata", metadata_seeds()),
        ("connect_json", connect_json_seeds()),
        ("lenient", lenient_seeds()),
        ("dispatch", [dispatch_seeds(), secured_dispatch_seeds().into_iter().map(|(seed, _)| seed).collect()].concat()),
        ("jwt", jwt_seeds()),
        ("policy", policy_seeds()),
    ];
    for (target, seeds) in all {
        let dir = super::tests::fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("the corpus folder");
        for (index, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{index:02}")), seed).expect("a seed written");
        }
    }
}

/// Each dispatch seed is a good call that its protocol answers OK: the
/// seeds reach the handlers, and a change to how the target reads its bytes
/// fails here until they are written again.
#[test]
fn the_dispatch_seeds_are_answered_ok() {
    for (index, seed) in dispatch_seeds().iter().enumerate() {
        let answer = super::dispatch::answer(seed).unwrap_or_else(|| panic!("seed {index}: no request"));
        assert_eq!(answer.status, http::StatusCode::OK, "seed {index}: {answer:?}");
        // gRPC and gRPC-Web: OK; Connect: no error code.
        match answer.code() {
            Some(code) => assert_eq!(code, 0, "seed {index}: {answer:?}"),
            None => assert_eq!(answer.connect_code(), "", "seed {index}: {answer:?}"),
        }
    }
}

/// Each secured dispatch seed gets its code: OK for alice's search and for
/// health, PERMISSION_DENIED or UNAUTHENTICATED for the others.
#[test]
fn the_secured_dispatch_seeds_get_their_codes() {
    for (index, (seed, code)) in secured_dispatch_seeds().iter().enumerate() {
        let answer = super::dispatch::answer(seed).unwrap_or_else(|| panic!("seed {index}: no request"));
        assert_eq!(answer.code(), Some(*code), "secured seed {index}: {answer:?}");
    }
}

/// The good tokens among the jwt seeds are taken (the seeds reach past the
/// signature), the near misses refused.
#[test]
fn the_good_jwt_seeds_are_taken_and_the_others_refused() {
    let taken: Vec<usize> = jwt_seeds()
        .iter()
        .enumerate()
        .filter(|(_, seed)| super::tokens::taken_or_not(seed).expect("a header"))
        .map(|(index, _)| index)
        .collect();
    // Fixed tokens: ES256, RS256, EdDSA, RS512 for two audiences; signed
    // ones: ES256, RS256 for two audiences, PS384 without a kid, EdDSA.
    assert_eq!(taken, [0, 1, 2, 5, 13, 14, 15, 16]);
}

/// The policy seeds reach every kind of decision: allowed, denied by a deny
/// rule, denied for want of an allow rule.
#[test]
fn the_policy_seeds_reach_every_kind_of_decision() {
    let decisions: Vec<(bool, bool)> = policy_seeds().iter().flat_map(|seed| super::policies::decided(seed)).collect();
    for kind in [(true, true), (false, true), (false, false)] {
        assert!(decisions.contains(&kind), "no decision (allowed, by a rule) = {kind:?}: {decisions:?}");
    }
}
