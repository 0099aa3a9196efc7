//! Who may call what, against the real server: bearer tokens checked
//! against a JWKS file, the gRFC A43 policy on the canonical method name,
//! the same answer over gRPC, gRPC-Web, Connect POST and Connect GET, paths
//! that are not the canonical one never getting past it, and the policy
//! read again while calls go on.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::Version;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prost::Message;
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use search::pb::v1::SearchRequest;
use search::server::{SecurityConfig, ServerConfig};
use serde_json::json;

use crate::common::TestServer;
use crate::common::http::{Answer, envelope, envelopes, request, send};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "search";

/// Alice and Bob may call Search's methods, but Bob not Scan; health is
/// open to all; Count is open to the search team's header.
const POLICY: &str = r#"{
  "name": "search-policy",
  "deny_rules": [{"name": "no-scan-for-bob",
                  "source": {"request_principals": ["https://issuer.example/bob"]},
                  "request": {"paths": ["/search.v1.SearchService/Scan"]}}],
  "allow_rules": [
    {"name": "health", "request": {"paths": ["/grpc.health.v1.Health/*"]}},
    {"name": "alice-and-bob",
     "source": {"request_principals": ["https://issuer.example/alice", "https://issuer.example/bob"]},
     "request": {"paths": ["/search.v1.SearchService/*"]}},
    {"name": "search-team", "request": {"paths": ["/search.v1.SearchService/Count"],
                                        "headers": [{"key": "x-team", "values": ["search"]}]}}
  ]
}"#;

/// The server with the policy and a key set, and how to mint its tokens.
struct Secured {
    server: TestServer,
    key: EncodingKey,
    dir: tempfile::TempDir,
}

impl Secured {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a folder");
        let pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        let point = pair.public_key_raw();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]});
        std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).expect("write the JWKS");
        std::fs::write(dir.path().join("policy.json"), POLICY).expect("write the policy");
        let security = SecurityConfig {
            authz_policy: Some(dir.path().join("policy.json")),
            jwks: Some(dir.path().join("jwks.json")),
            jwt_issuer: Some(ISSUER.into()),
            jwt_audience: Some(AUDIENCE.into()),
            ..SecurityConfig::default()
        };
        let server = TestServer::start_with("127.0.0.1:0", ServerConfig { security, ..ServerConfig::default() }).await;
        Self { server, key: EncodingKey::from_ec_der(&pair.serialize_der()), dir }
    }

    /// A token for `subject`, its claims over good defaults.
    fn token(&self, subject: &str, claims: serde_json::Value) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
        let mut all = json!({"iss": ISSUER, "sub": subject, "aud": AUDIENCE, "iat": now, "exp": now + 600});
        for (k, v) in claims.as_object().expect("an object") {
            all[k] = v.clone();
        }
        let header = Header { kid: Some("k1".into()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, &all, &self.key).expect("signed")
    }

    fn policy_file(&self) -> std::path::PathBuf {
        self.dir.path().join("policy.json")
    }
}

/// How a call is carried.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    Grpc,
    GrpcWeb,
    ConnectPost,
    ConnectGet,
}

const ALL: [Protocol; 4] = [Protocol::Grpc, Protocol::GrpcWeb, Protocol::ConnectPost, Protocol::ConnectGet];

/// Search at `path` over `protocol` with `headers`: the code it ended with,
/// as gRPC names it.
async fn search(server: &TestServer, protocol: Protocol, path: &str, headers: &[(&str, &str)]) -> String {
    let message = SearchRequest { query: "Banana".into() };
    let builder = |method: &str, path: &str| {
        let mut builder = request(method, path);
        for (key, value) in headers {
            builder = builder.header(*key, *value);
        }
        builder
    };
    let answer = match protocol {
        Protocol::Grpc => {
            let body = envelope(0, &message.encode_to_vec());
            let request = builder("POST", path).header("content-type", "application/grpc").header("te", "trailers");
            send(server.addr, Version::HTTP_2, request.body(Full::new(Bytes::from(body))).expect("request")).await
        }
        Protocol::GrpcWeb => {
            let body = envelope(0, &message.encode_to_vec());
            let request =
                builder("POST", path).header("content-type", "application/grpc-web+proto").header("x-grpc-web", "1");
            send(server.addr, Version::HTTP_11, request.body(Full::new(Bytes::from(body))).expect("request")).await
        }
        Protocol::ConnectPost => {
            let request = builder("POST", path).header("content-type", "application/json");
            send(
                server.addr,
                Version::HTTP_11,
                request.body(Full::new(Bytes::from_static(br#"{"query":"Banana"}"#))).expect("request"),
            )
            .await
        }
        Protocol::ConnectGet => {
            let query = "encoding=json&message=%7B%22query%22%3A%22Banana%22%7D&connect=v1";
            let separator = if path.contains('?') { '&' } else { '?' };
            let request = builder("GET", &format!("{path}{separator}{query}"));
            send(server.addr, Version::HTTP_11, request.body(Full::default()).expect("request")).await
        }
    };
    code(protocol, &answer)
}

/// The code an answer carries, as gRPC names it (`OK`, `PERMISSION_DENIED`).
fn code(protocol: Protocol, answer: &Answer) -> String {
    let grpc = |status: &str| match status {
        "0" => "Ok".to_owned(),
        other => other.parse::<i32>().map_or(other.to_owned(), |n| format!("{:?}", tonic::Code::from(n))),
    };
    match protocol {
        Protocol::Grpc | Protocol::GrpcWeb => {
            if let Some(status) =
                answer.headers.get("grpc-status").or_else(|| answer.trailers.as_ref()?.get("grpc-status"))
            {
                return grpc(status.to_str().expect("text"));
            }
            // gRPC-Web: the status is in the body's trailer frame.
            let frames = envelopes(&answer.body);
            let trailers =
                frames.iter().find(|(flags, _)| flags & 0x80 != 0).map(|(_, t)| String::from_utf8_lossy(t).to_string());
            let line = trailers.unwrap_or_default();
            let status =
                line.lines().find_map(|l| l.trim().strip_prefix("grpc-status:")).unwrap_or("?").trim().to_owned();
            grpc(&status)
        }
        Protocol::ConnectPost | Protocol::ConnectGet if answer.status == 200 => "Ok".into(),
        Protocol::ConnectPost | Protocol::ConnectGet => {
            let code = answer.json()["code"].as_str().unwrap_or("?").to_owned();
            // Connect's snake case as tonic's Debug names codes.
            code.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect()
        }
    }
}

/// A case: what it is, the path, the headers, the code it must end with.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str);

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn one_rule_for_every_protocol_tokens_checked_and_the_policy_on_the_method() {
    let secured = Secured::start().await;
    let server = &secured.server;
    let alice = bearer(&secured.token("alice", json!({})));
    let expired = bearer(&secured.token("alice", json!({"exp": 1_000_000_000})));
    let audience = bearer(&secured.token("alice", json!({"aud": "another"})));
    let eve = bearer(&secured.token("eve", json!({})));
    let unsigned = bearer(&format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(br#"{"iss":"https://issuer.example","sub":"alice","aud":"search","exp":9999999999}"#)
    ));
    let search_path = "/search.v1.SearchService/Search";
    let cases: [Case; 7] = [
        ("a valid token", search_path, vec![("authorization", &alice)], "Ok"),
        ("no token", search_path, vec![], "PermissionDenied"),
        ("an expired token", search_path, vec![("authorization", &expired)], "Unauthenticated"),
        ("the wrong audience", search_path, vec![("authorization", &audience)], "Unauthenticated"),
        ("alg none", search_path, vec![("authorization", &unsigned)], "Unauthenticated"),
        ("a caller no rule names", search_path, vec![("authorization", &eve)], "PermissionDenied"),
        ("the article's path, as Search", "/Search/search", vec![], "PermissionDenied"),
    ];
    for protocol in ALL {
        for (case, path, headers, want) in &cases {
            // The article's path is gRPC's alone.
            if *path == "/Search/search" && !matches!(protocol, Protocol::Grpc) {
                continue;
            }
            let got = search(server, protocol, path, headers).await;
            assert_eq!(&got, want, "{case} over {protocol:?}");
        }
    }
    assert_eq!(search(server, Protocol::Grpc, "/Search/search", &[("authorization", &alice)]).await, "Ok");
}

#[tokio::test]
async fn no_form_of_a_path_but_the_canonical_one_gets_past_the_policy() {
    let secured = Secured::start().await;
    for protocol in ALL {
        for path in [
            "/search.v1.SearchService/Search/",
            "//search.v1.SearchService/Search",
            "/search.v1.SearchService//Search",
            "/search.v1.SearchService/search",
            "/SEARCH.V1.SEARCHSERVICE/SEARCH",
            "/search.v1.SearchService/./Search",
            "/search.v1.SearchService/x/../Search",
            "/search.v1.SearchService%2FSearch",
            "/search.v1.SearchService/Searc%68",
            "/search.v1.SearchService/Search?x=1",
        ] {
            let got = search(&secured.server, protocol, path, &[]).await;
            assert_ne!(got, "Ok", "{path} over {protocol:?} was served without a token");
        }
    }
}

#[tokio::test]
async fn deny_beats_allow_and_a_header_rule_matches() {
    let secured = Secured::start().await;
    let bob = bearer(&secured.token("bob", json!({})));
    // Scan over Connect (a server stream, POST).
    let scan = |headers: Vec<(&'static str, String)>| {
        let server = &secured.server;
        async move {
            let mut builder =
                request("POST", "/search.v1.SearchService/Scan").header("content-type", "application/connect+json");
            for (key, value) in &headers {
                builder = builder.header(*key, value.as_str());
            }
            let body = envelope(0, br#"{"text":"banana"}"#);
            send(server.addr, Version::HTTP_11, builder.body(Full::new(Bytes::from(body))).expect("request")).await
        }
    };
    let answer = scan(vec![("authorization", bob.clone())]).await;
    let end = envelopes(&answer.body).pop().expect("an end frame").1;
    assert!(String::from_utf8_lossy(&end).contains("permission_denied"), "{answer:?}");
    let answer =
        search(&secured.server, Protocol::Grpc, "/search.v1.SearchService/Search", &[("authorization", &bob)]).await;
    assert_eq!(answer, "Ok", "bob may search");
    let count = |team: &'static str| {
        let server = &secured.server;
        async move {
            let request = request("POST", "/search.v1.SearchService/Count")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .header("x-team", team)
                .body(Full::new(Bytes::from(envelope(0, &[]))))
                .expect("request");
            code(Protocol::Grpc, &send(server.addr, Version::HTTP_2, request).await)
        }
    };
    assert_eq!(count("search").await, "Ok");
    assert_eq!(count("ads").await, "PermissionDenied");
}

#[tokio::test]
async fn the_policy_is_read_again_while_calls_go_on_and_a_broken_one_is_not_taken() {
    let secured = Secured::start().await;
    let alice = bearer(&secured.token("alice", json!({})));
    let path = "/search.v1.SearchService/Search";
    let headers = [("authorization", alice.as_str())];
    let call = || search(&secured.server, Protocol::Grpc, path, &headers);
    assert_eq!(call().await, "Ok");
    // Alice is denied from now on.
    let denying = POLICY.replace(
        r#""deny_rules": ["#,
        r#""deny_rules": [{"name": "no-alice", "source": {"request_principals": ["https://issuer.example/alice"]}},"#,
    );
    write_atomically(&secured.policy_file(), &denying);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut last = call().await;
    while last == "Ok" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = call().await;
    }
    assert_eq!(last, "PermissionDenied", "the new policy was taken");
    // A broken file is not taken: the last good policy stays.
    write_atomically(&secured.policy_file(), "{ not json");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(call().await, "PermissionDenied", "the broken policy left the last good one in force");
}

/// Writes `text` to `path` through a rename, as a config-map update does.
fn write_atomically(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).expect("write");
    std::fs::rename(&next, path).expect("rename");
}

#[tokio::test]
async fn a_client_certificate_names_the_caller_and_each_decision_is_one_audit_line() {
    use rcgen::{CertificateParams, SanType};
    use search::client::{Client, ClientOptions, Target};
    use search::tls::ClientTls;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let dir = tempfile::tempdir().expect("a folder");
    let pki = crate::common::pki::pki();
    // A workload's certificate names it by a SPIFFE URI; another's by DNS.
    let leaf = |san: SanType, name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "acme");
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.subject_alt_names = vec![san];
        (params.signed_by(&key, &pki.issuer).expect("signed").pem(), key.serialize_pem())
    };
    let searcher = leaf(SanType::URI("spiffe://acme/ns/web/sa/searcher".try_into().expect("a URI")), "searcher");
    let stranger = leaf(SanType::DnsName("stranger.acme.internal".try_into().expect("a name")), "stranger");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("UTF-8").to_owned()
    };
    let policy = write(
        "policy.json",
        r#"{"name": "mesh", "allow_rules": [{"name": "searchers",
            "source": {"principals": ["spiffe://acme/ns/web/sa/searcher"]},
            "request": {"paths": ["/search.v1.SearchService/Search"]}}]}"#,
    );
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        &write("server.pem", &pki.server.0),
        "--tls-key",
        &write("server.key", &pki.server.1),
        "--client-ca",
        &write("ca.pem", &pki.ca),
        "--authz-policy",
        &policy,
        "--audit-log",
        "on-deny-and-allow",
    ];
    let (mut child, addr) = crate::common::server_process(&args).await;
    let port = addr.rsplit(':').next().expect("a port");
    let target: Target = format!("https://localhost:{port}").parse().expect("a target");
    let call = |(cert, key): (String, String)| {
        let tls = ClientTls::from_pem(Some(pki.ca.clone().into_bytes()), Some((cert.into_bytes(), key.into_bytes())));
        let client =
            Client::new(&target, ClientOptions { tls, max_attempts: 1, ..ClientOptions::default() }).expect("client");
        async move { client.search(SearchRequest { query: "Banana".into() }).await }
    };
    assert_eq!(call(searcher).await.expect("the searcher may search").status, 1);
    let refused = call(stranger).await.expect_err("the stranger may not");
    assert_eq!(refused.code(), Some(tonic::Code::PermissionDenied), "{refused}");

    // Two audit lines, in grpc-go's shape, then the server's other lines.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut audits = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while audits.len() < 2 {
        let line = tokio::time::timeout_at(deadline, stderr.next_line()).await.expect("two audit lines in time");
        let line = line.expect("read stderr").expect("the server is still up");
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
            && value.get("grpc_audit_log").is_some()
        {
            audits.push(value["grpc_audit_log"].clone());
        }
    }
    assert_eq!(
        audits[0],
        json!({"rpc_method": "/search.v1.SearchService/Search", "principals": ["spiffe://acme/ns/web/sa/searcher", "CN=searcher,O=acme"],
               "policy_name": "mesh", "matched_rule": "searchers", "authorized": true})
    );
    assert_eq!(
        audits[1],
        json!({"rpc_method": "/search.v1.SearchService/Search", "principals": ["stranger.acme.internal", "CN=stranger,O=acme"],
               "policy_name": "mesh", "matched_rule": "", "authorized": false})
    );
    child.kill().await.expect("stop the server");
}
