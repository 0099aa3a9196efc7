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
use crate::common::http::{Answer, envelope, envelopes, request, send, send_tls};

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
    GrpcWebText,
    ConnectPost,
    ConnectGet,
}

const ALL: [Protocol; 5] =
    [Protocol::Grpc, Protocol::GrpcWeb, Protocol::GrpcWebText, Protocol::ConnectPost, Protocol::ConnectGet];

/// Where calls go: a plaintext port, or a TLS one with the client's
/// certificate.
#[derive(Clone)]
struct Door {
    addr: std::net::SocketAddr,
    tls: Option<search::tls::ClientTls>,
}

impl Door {
    fn plain(server: &TestServer) -> Self {
        Self { addr: server.addr, tls: None }
    }

    async fn send(&self, version: Version, request: http::Request<Full<Bytes>>) -> Answer {
        match &self.tls {
            None => send(self.addr, version, request).await,
            Some(tls) => send_tls(self.addr, version, request, tls).await,
        }
    }
}

/// A request message, in binary and as JSON.
struct Body {
    binary: Vec<u8>,
    json: &'static str,
}

fn banana() -> Body {
    Body { binary: SearchRequest { query: "Banana".into() }.encode_to_vec(), json: r#"{"query":"Banana"}"# }
}

/// Search at `path` over `protocol` with `headers`: the code it ended with,
/// as gRPC names it.
async fn search(server: &TestServer, protocol: Protocol, path: &str, headers: &[(&str, &str)]) -> String {
    call(&Door::plain(server), protocol, path, headers, &banana()).await
}

/// A unary call of `message` at `path` over `protocol` with `headers`
/// through `door`: the code it ended with, as gRPC names it.
async fn call(door: &Door, protocol: Protocol, path: &str, headers: &[(&str, &str)], message: &Body) -> String {
    let builder = |method: &str, path: &str| {
        let mut builder = request(method, path);
        for (key, value) in headers {
            builder = builder.header(*key, *value);
        }
        builder
    };
    let answer = match protocol {
        Protocol::Grpc => {
            let body = envelope(0, &message.binary);
            let request = builder("POST", path).header("content-type", "application/grpc").header("te", "trailers");
            door.send(Version::HTTP_2, request.body(Full::new(Bytes::from(body))).expect("request")).await
        }
        Protocol::GrpcWeb => {
            let body = envelope(0, &message.binary);
            let request =
                builder("POST", path).header("content-type", "application/grpc-web+proto").header("x-grpc-web", "1");
            door.send(Version::HTTP_11, request.body(Full::new(Bytes::from(body))).expect("request")).await
        }
        Protocol::GrpcWebText => {
            let body = base64::engine::general_purpose::STANDARD.encode(envelope(0, &message.binary));
            let request = builder("POST", path)
                .header("content-type", "application/grpc-web-text")
                .header("accept", "application/grpc-web-text")
                .header("x-grpc-web", "1");
            door.send(Version::HTTP_11, request.body(Full::new(Bytes::from(body))).expect("request")).await
        }
        Protocol::ConnectPost => {
            let request = builder("POST", path).header("content-type", "application/json");
            door.send(
                Version::HTTP_11,
                request.body(Full::new(Bytes::from_static(message.json.as_bytes()))).expect("request"),
            )
            .await
        }
        Protocol::ConnectGet => {
            let encoded: String = message
                .json
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
                .collect();
            let query = format!("encoding=json&message={encoded}&connect=v1");
            let separator = if path.contains('?') { '&' } else { '?' };
            let request = builder("GET", &format!("{path}{separator}{query}"));
            door.send(Version::HTTP_11, request.body(Full::default()).expect("request")).await
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
        Protocol::GrpcWebText if !answer.body.is_empty() => {
            // Padded base64 chunks one after another (the message, then the
            // trailers): each 4-character quantum decodes on its own.
            let mut body = Vec::new();
            for quantum in answer.body.chunks(4) {
                body.extend(base64::engine::general_purpose::STANDARD.decode(quantum).expect("base64"));
            }
            code(Protocol::GrpcWeb, &Answer { body: body.into(), ..answer.clone() })
        }
        Protocol::Grpc | Protocol::GrpcWeb | Protocol::GrpcWebText => {
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

/// Ways of writing Search's path that are not its canonical name.
const NON_CANONICAL: [&str; 12] = [
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
    "/search.v1.SearchService/Search%3Fx=1",
    "/Search/search/",
];

#[tokio::test]
async fn no_form_of_a_path_but_the_canonical_one_gets_past_the_policy() {
    let secured = Secured::start().await;
    let alice = bearer(&secured.token("alice", json!({})));
    let mut table = vec![
        "| path | gRPC | gRPC-Web | gRPC-Web text | Connect POST | Connect GET |".to_owned(),
        "| --- | --- | --- | --- | --- | --- |".to_owned(),
    ];
    for path in NON_CANONICAL {
        let mut row = format!("| `{path}` |");
        for protocol in ALL {
            // Never served to a caller the policy refuses Search; served to
            // one it allows only where the path the server reads is Search's
            // (a query is not part of a path): authorized and routed on the
            // same name.
            let without = search(&secured.server, protocol, path, &[]).await;
            assert_ne!(without, "Ok", "{path} over {protocol:?} was served without a token");
            let with = search(&secured.server, protocol, path, &[("authorization", &alice)]).await;
            assert_eq!(with == "Ok", path.ends_with("?x=1"), "{path} over {protocol:?} with a token: {with}");
            row.push_str(&format!(" {without} / {with} |"));
        }
        table.push(row);
    }
    println!("(without a token / with one the policy allows on Search)\n{}", table.join("\n"));
    // What HTTP libraries do not send, written raw over HTTP/2 (gRPC) and
    // HTTP/1.1 (Connect): a fragment, no part of the path, so Search; no
    // leading slash, not a path at all.
    for (path, as_search) in [("/search.v1.SearchService/Search#x", true), ("search.v1.SearchService/Search", false)] {
        for token in [None, Some(alice.as_str())] {
            let h2 = served_over_raw_h2(secured.server.addr, path, token).await;
            let h1 = served_over_raw_http1(secured.server.addr, path, token).await;
            println!("`{path}`, token {}: HTTP/2 gRPC served {h2}, HTTP/1.1 Connect served {h1}", token.is_some());
            let served = as_search && token.is_some();
            assert_eq!((h2, h1), (served, served), "{path} with a token {}", token.is_some());
        }
    }
}

/// Whether a gRPC Search at `path`, with `token`, sent as raw HTTP/2 frames,
/// got an answer message.
async fn served_over_raw_h2(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> bool {
    use crate::common::frames::{DATA, END_STREAM, GOAWAY, RST_STREAM, Raw, grpc_headers};
    let mut raw = Raw::connect(addr).await;
    let mut block = grpc_headers(path);
    if let Some(token) = token {
        // A literal without indexing, its value's length an HPACK integer.
        block.extend([0x00, 13]);
        block.extend(b"authorization");
        let mut length = token.len();
        if length < 127 {
            block.push(u8::try_from(length).expect("small"));
        } else {
            block.push(127);
            length -= 127;
            while length >= 128 {
                block.push(u8::try_from(length % 128).expect("7 bits") | 0x80);
                length /= 128;
            }
            block.push(u8::try_from(length).expect("7 bits"));
        }
        block.extend(token.as_bytes());
    }
    raw.call_with(1, &block, 0, &SearchRequest { query: "Banana".into() }.encode_to_vec()).await;
    let mut served = false;
    while let Some(frame) = raw.next(Duration::from_secs(10)).await {
        if frame.kind == GOAWAY || (frame.stream == 1 && frame.kind == RST_STREAM) {
            break;
        }
        if frame.stream == 1 {
            served |= frame.kind == DATA && !frame.payload.is_empty();
            if frame.flags & END_STREAM != 0 {
                break;
            }
        }
    }
    served
}

/// Whether a Connect JSON Search at `path`, with `token`, written as a raw
/// HTTP/1.1 request, was answered with a message.
async fn served_over_raw_http1(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"query":"Banana"}"#;
    let authorization = token.map(|t| format!("authorization: {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n{authorization}\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.starts_with("HTTP/1.1 200") && answer.ends_with(r#"{"status":1}"#)
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let secured = Secured::start().await;
    let alice = bearer(&secured.token("alice", json!({})));
    let dave = bearer(&secured.token("dave", json!({})));
    let path = "/search.v1.SearchService/Search";
    // Alice calls over every protocol all along: every policy below lets her.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic: Vec<_> = ALL
        .into_iter()
        .map(|protocol| {
            let (door, alice, stop) = (Door::plain(&secured.server), alice.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0_u32, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match call(&door, protocol, path, &[("authorization", &alice)], &banana()).await.as_str() {
                        "Ok" => ok += 1,
                        other => failed.push(format!("{protocol:?}: {other}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    // Dave, whom no rule names, until a new policy adds him.
    let daves = || async {
        let mut codes = Vec::new();
        for protocol in ALL {
            codes.push(search(&secured.server, protocol, path, &[("authorization", &dave)]).await);
        }
        codes
    };
    let until = |want: &'static str| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let codes = daves().await;
            if codes.iter().all(|code| code == want) || tokio::time::Instant::now() > deadline {
                return codes;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(daves().await, ["PermissionDenied"; 5]);
    let with_dave = POLICY
        .replace(r#""https://issuer.example/bob"]"#, r#""https://issuer.example/bob", "https://issuer.example/dave"]"#);
    write_atomically(&secured.policy_file(), &with_dave);
    assert_eq!(until("Ok").await, ["Ok"; 5], "the new policy was taken");
    // A broken file is not taken: the last good policy stays.
    write_atomically(&secured.policy_file(), "{ not json");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(daves().await, ["Ok"; 5], "the broken policy left the last good one in force");
    write_atomically(&secured.policy_file(), POLICY);
    assert_eq!(until("PermissionDenied").await, ["PermissionDenied"; 5], "the first policy is back");
    stop.store(true, Ordering::Relaxed);
    for (protocol, task) in ALL.into_iter().zip(traffic) {
        let (ok, failed) = task.await.expect("the traffic");
        println!(
            "reload: {protocol:?}: {ok} calls OK, {} failed, across three new policies (one broken)",
            failed.len()
        );
        assert!(failed.is_empty() && ok > 10, "{ok} calls OK, failed: {failed:?}");
    }
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
        json!({"rpc_method": "/search.v1.SearchService/Search",
               "principals": ["spiffe://acme/ns/web/sa/searcher", "CN=searcher,O=acme"],
               "policy_name": "mesh", "matched_rule": "searchers", "authorized": true})
    );
    assert_eq!(
        audits[1],
        json!({"rpc_method": "/search.v1.SearchService/Search",
               "principals": ["stranger.acme.internal", "CN=stranger,O=acme"],
               "policy_name": "mesh", "matched_rule": "", "authorized": false})
    );
    child.kill().await.expect("stop the server");
}

/// Keys of the three kinds the server verifies, their JWKS, and tokens.
struct Issuer {
    ec: EncodingKey,
    ec_public_pem: String,
    rsa: EncodingKey,
    ed: EncodingKey,
    jwks: serde_json::Value,
}

impl Issuer {
    fn new() -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let ec = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key");
        let rsa = rsa::PrivateKey::new(&mut rand_core::UnwrapErr(getrandom::SysRng), 2048).expect("an RSA key");
        let point = ec.public_key_raw();
        let jwks = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "k1",
             "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])},
            {"kty": "RSA", "kid": "r1", "n": URL_SAFE_NO_PAD.encode(rsa.n_bytes()),
             "e": URL_SAFE_NO_PAD.encode(rsa.e_bytes())},
            {"kty": "OKP", "crv": "Ed25519", "kid": "e1", "x": URL_SAFE_NO_PAD.encode(ed.public_key_raw())}]});
        Self {
            ec: EncodingKey::from_ec_der(&ec.serialize_der()),
            ec_public_pem: ec.public_key_pem(),
            rsa: EncodingKey::from_rsa_der(rsa.to_pkcs1_der().expect("PKCS#1").as_bytes()),
            ed: EncodingKey::from_ed_der(&ed.serialize_der()),
            jwks,
        }
    }

    /// `Bearer` and a token signed with `alg` by `key`, naming `kid`, for
    /// `subject`, its claims over good defaults.
    fn bearer(
        alg: Algorithm,
        key: &EncodingKey,
        kid: Option<&str>,
        subject: &str,
        claims: serde_json::Value,
    ) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
        let mut all = json!({"iss": ISSUER, "sub": subject, "aud": AUDIENCE, "iat": now, "exp": now + 600});
        for (k, v) in claims.as_object().expect("an object") {
            all[k] = v.clone();
        }
        let header = Header { kid: kid.map(str::to_owned), ..Header::new(alg) };
        bearer(&jsonwebtoken::encode(&header, &all, key).expect("signed"))
    }

    fn es256(&self, subject: &str, claims: serde_json::Value) -> String {
        Self::bearer(Algorithm::ES256, &self.ec, Some("k1"), subject, claims)
    }
}

/// The table's policy: callers by token, by certificate, by header and by
/// a path prefix, a deny rule over an allow rule, health open to probes.
const TABLE_POLICY: &str = r#"{
  "name": "table",
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
    {"name": "probes", "request": {"paths": ["/grpc.health.v1.Health/*"]}}
  ]
}"#;

/// A case of the table: through which door, the path, the headers, the
/// message, the code it must end with (Connect GET's, when it differs).
struct TableCase<'a> {
    door: &'a Door,
    path: &'a str,
    headers: Vec<(&'a str, String)>,
    message: Body,
    want: &'a str,
    want_get: Option<&'a str>,
}

impl<'a> TableCase<'a> {
    /// A Search through `door`, with `header` if any.
    fn new(door: &'a Door, header: Option<(&'a str, String)>) -> Self {
        let path = "/search.v1.SearchService/Search";
        Self { door, path, headers: header.into_iter().collect(), message: banana(), want: "", want_get: None }
    }

    fn ends(self, want: &'a str) -> Self {
        Self { want, ..self }
    }

    fn over_get(self, want: &'a str) -> Self {
        Self { want_get: Some(want), ..self }
    }
}

/// A client certificate naming a workload by a URI SAN or a DNS SAN.
fn workload(pki: &crate::common::pki::Pki, san: rcgen::SanType) -> search::tls::ClientTls {
    let key = KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![san];
    let cert = params.signed_by(&key, &pki.issuer).expect("signed");
    search::tls::ClientTls::from_pem(
        Some(pki.ca.clone().into_bytes()),
        Some((cert.pem().into_bytes(), key.serialize_pem().into_bytes())),
    )
}

#[tokio::test]
async fn every_case_over_every_protocol_gets_its_code() {
    use rcgen::SanType;
    let issuer = Issuer::new();
    let dir = tempfile::tempdir().expect("a folder");
    std::fs::write(dir.path().join("jwks.json"), issuer.jwks.to_string()).expect("write the JWKS");
    std::fs::write(dir.path().join("policy.json"), TABLE_POLICY).expect("write the policy");
    let pki = crate::common::pki::pki();
    let (cert, key) = pki.server.clone();
    let config = ServerConfig {
        tls: Some(search::tls::ServerTls::from_pem(
            cert.into_bytes(),
            key.into_bytes(),
            Some(pki.ca.clone().into_bytes()),
        )),
        security: SecurityConfig {
            authz_policy: Some(dir.path().join("policy.json")),
            jwks: Some(dir.path().join("jwks.json")),
            jwt_issuer: Some(ISSUER.into()),
            jwt_audience: Some(AUDIENCE.into()),
            ..SecurityConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let door = |tls| Door { addr: server.addr, tls: Some(tls) };
    let searcher = door(workload(&pki, SanType::URI("spiffe://acme/ns/web/sa/searcher".try_into().expect("URI"))));
    let stranger = door(workload(&pki, SanType::DnsName("stranger.acme.internal".try_into().expect("name"))));

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let another = EncodingKey::from_ec_der(
        &KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("another P-256 key").serialize_der(),
    );
    let public_as_secret = EncodingKey::from_secret(issuer.ec_public_pem.as_bytes()).expect("a secret");
    let unsigned = bearer(&format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(json!({"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "exp": now + 600}).to_string())
    ));
    fn by(door: &Door, token: Option<String>) -> TableCase<'_> {
        TableCase::new(door, token.map(|t| ("authorization", t)))
    }
    let es256 = |subject: &str, claims| Some(issuer.es256(subject, claims));
    let signed = |alg, key, kid, subject| Some(Issuer::bearer(alg, key, kid, subject, json!({})));
    let cases = [
        ("valid token, ES256", by(&stranger, es256("alice", json!({}))).ends("Ok")),
        ("valid token, RS256", by(&stranger, signed(Algorithm::RS256, &issuer.rsa, Some("r1"), "alice")).ends("Ok")),
        ("valid token, EdDSA", by(&stranger, signed(Algorithm::EdDSA, &issuer.ed, Some("e1"), "alice")).ends("Ok")),
        ("expired", by(&stranger, es256("alice", json!({"exp": now - 120}))).ends("Unauthenticated")),
        ("not yet valid", by(&stranger, es256("alice", json!({"nbf": now + 600}))).ends("Unauthenticated")),
        ("wrong issuer", by(&stranger, es256("alice", json!({"iss": "https://evil.example"}))).ends("Unauthenticated")),
        ("wrong audience", by(&stranger, es256("alice", json!({"aud": "billing"}))).ends("Unauthenticated")),
        (
            "unknown kid",
            by(&stranger, signed(Algorithm::ES256, &issuer.ec, Some("k9"), "alice")).ends("Unauthenticated"),
        ),
        (
            "bad signature",
            by(&stranger, signed(Algorithm::ES256, &another, Some("k1"), "alice")).ends("Unauthenticated"),
        ),
        ("alg none", by(&stranger, Some(unsigned)).ends("Unauthenticated")),
        (
            "HS256 signed with the public key",
            by(&stranger, signed(Algorithm::HS256, &public_as_secret, Some("k1"), "alice")).ends("Unauthenticated"),
        ),
        ("malformed token", by(&stranger, Some(bearer("not.a.jwt"))).ends("Unauthenticated")),
        ("no token, no rule", by(&stranger, None).ends("PermissionDenied")),
        ("valid token, no rule names the caller", by(&stranger, es256("dave", json!({}))).ends("PermissionDenied")),
        ("mTLS principal allowed", by(&searcher, None).ends("Ok")),
        ("mTLS principal denied", by(&stranger, None).ends("PermissionDenied")),
        ("deny beats allow", by(&stranger, es256("bob", json!({}))).ends("PermissionDenied")),
        ("header rule matched", TableCase::new(&stranger, Some(("x-team", "search".into()))).ends("Ok")),
        ("header rule not matched", TableCase::new(&stranger, Some(("x-team", "ads".into()))).ends("PermissionDenied")),
        ("path prefix rule", by(&stranger, es256("carol", json!({}))).ends("Ok")),
        (
            "health, by a path prefix rule",
            TableCase {
                path: "/grpc.health.v1.Health/Check",
                message: Body { binary: Vec::new(), json: "{}" },
                ..by(&stranger, None)
            }
            .ends("Ok")
            // Check has no GET form (it is not marked free of side effects).
            .over_get("Unimplemented"),
        ),
    ];
    let mut table = vec![
        "| case | gRPC | gRPC-Web | gRPC-Web text | Connect POST | Connect GET |".to_owned(),
        "| --- | --- | --- | --- | --- | --- |".to_owned(),
    ];
    let mut wrong = Vec::new();
    for (case, TableCase { door, path, headers, message, want, want_get }) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut row = format!("| {case} |");
        for protocol in ALL {
            let got = call(door, protocol, path, &headers, message).await;
            let want = if matches!(protocol, Protocol::ConnectGet) { want_get.unwrap_or(want) } else { want };
            if got != *want {
                wrong.push(format!("{case} over {protocol:?}: {got}, not {want}"));
            }
            row.push_str(&format!(" {got} |"));
        }
        table.push(row);
    }
    println!("{}", table.join("\n"));
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn no_token_is_ever_in_the_server_s_output_even_at_trace() {
    use tokio::io::AsyncReadExt;
    let issuer = Issuer::new();
    let dir = tempfile::tempdir().expect("a folder");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("UTF-8").to_owned()
    };
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--jwks",
        &write("jwks.json", &issuer.jwks.to_string()),
        "--jwt-issuer",
        ISSUER,
        "--jwt-audience",
        AUDIENCE,
        "--authz-policy",
        &write("policy.json", TABLE_POLICY),
        "--audit-log",
        "on-deny-and-allow",
    ];
    let (mut child, addr) = crate::common::server_process_with(&args, &[("RUST_LOG", "trace")]).await;
    // Read as it comes: trace output would fill the pipe and stop the server.
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = tokio::spawn(async move {
        let mut output = String::new();
        stderr.read_to_string(&mut output).await.expect("read stderr");
        output
    });
    let door = Door { addr: addr.parse().expect("an address"), tls: None };
    let good = issuer.es256("alice", json!({}));
    let expired = issuer.es256("alice", json!({"exp": 1_000_000_000}));
    let tampered = format!("{}x", issuer.es256("alice", json!({})));
    let path = "/search.v1.SearchService/Search";
    let mut secrets = Vec::new();
    for (token, want) in [(&good, "Ok"), (&expired, "Unauthenticated"), (&tampered, "Unauthenticated")] {
        for protocol in ALL {
            assert_eq!(call(&door, protocol, path, &[("authorization", token)], &banana()).await, want);
        }
        // The token, and its signature alone.
        let token = token.strip_prefix("Bearer ").expect("a bearer token");
        secrets.extend([token.to_owned(), token.rsplit('.').next().expect("a signature").to_owned()]);
    }
    child.kill().await.expect("stop the server");
    let output = reader.await.expect("the reader");
    assert!(output.contains("search::call"), "the trace-level output was read: {} bytes", output.len());
    for secret in &secrets {
        assert!(!output.contains(secret.as_str()), "a token was printed");
    }
}

#[tokio::test]
async fn a_policy_without_a_health_rule_takes_servers_out_of_round_robin() {
    use search::client::{BearerToken, Client, ClientOptions, LoadBalancing};
    let secured = Secured::start().await;
    let alice = secured.token("alice", json!({}));
    let no_health = POLICY.replace(r#"{"name": "health", "request": {"paths": ["/grpc.health.v1.Health/*"]}},"#, "");
    assert_ne!(no_health, POLICY);
    write_atomically(&secured.policy_file(), &no_health);
    let check = "/grpc.health.v1.Health/Check";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while search(&secured.server, Protocol::Grpc, check, &[]).await != "PermissionDenied" {
        assert!(tokio::time::Instant::now() < deadline, "the policy without health was taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let target = secured.server.addr.to_string().parse().expect("a target");
    let options = |health: bool| ClientOptions {
        lb: LoadBalancing::RoundRobin,
        token: Some(BearerToken::new(&alice).expect("a token")),
        timeout: Duration::from_secs(5),
        health_check: if health { ClientOptions::default().health_check } else { None },
        ..ClientOptions::default()
    };
    // Round robin watches health, which the policy denies: out of rotation.
    let watched = Client::new(&target, options(true)).expect("a client");
    let err = watched.search(SearchRequest { query: "Banana".into() }).await.expect_err("no server in rotation");
    let message = err.to_string();
    assert!(message.contains("cannot connect") && message.contains("health watch failed: PERMISSION_DENIED"), "{err}");
    // Without health checking, the same caller is served.
    let unwatched = Client::new(&target, options(false)).expect("a client");
    assert_eq!(unwatched.search(SearchRequest { query: "Banana".into() }).await.expect("served").status, 1);
    // A rule for health puts the server back.
    write_atomically(&secured.policy_file(), POLICY);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while search(&secured.server, Protocol::Grpc, check, &[]).await == "PermissionDenied" {
        assert!(tokio::time::Instant::now() < deadline, "the policy with health was taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let watched = Client::new(&target, options(true)).expect("a client");
    assert_eq!(watched.search(SearchRequest { query: "Banana".into() }).await.expect("served").status, 1);
}

#[test]
fn a_broken_policy_or_key_set_at_start_stops_the_server_saying_where_and_why() {
    let dir = tempfile::tempdir().expect("a folder");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_str().expect("UTF-8").to_owned()
    };
    let comma = file("comma.json", "{\n  \"name\": \"p\",\n  \"allow_rules\": [{\"name\": \"x\"},]\n}\n");
    let host = file(
        "host.json",
        r#"{"name": "p", "allow_rules": [{"name": "x", "request": {"headers": [{"key": "host", "values": ["a"]}]}}]}"#,
    );
    let jwks = file("jwks.json", r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA"}]}"#);
    for (args, says) in [
        (vec!["--authz-policy", comma.as_str()], "line 3, column"),
        (vec!["--authz-policy", host.as_str()], "rule \"x\": header \"host\" cannot be matched"),
        (vec!["--jwks", jwks.as_str(), "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE], "key set (JWKS)"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .expect("run the server");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "it never listened: {}", String::from_utf8_lossy(&output.stdout));
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says) && stderr.contains(dir.path().to_str().expect("UTF-8")), "{stderr}");
    }
}
