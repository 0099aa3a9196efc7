//! gRPC-Web on the gRPC port, binary and `-text`, over HTTP/1.1 and HTTP/2,
//! CORS for the browsers that send it (allowed origins only), and the web
//! page served beside the calls (`web/test/` runs it in a real browser).

use crate::common::TestServer;
use crate::common::http::{Answer, envelope, envelopes, request, send};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::Version;
use http_body_util::Full;
use prost::Message;
use search::pb::v1::{ScanRequest, ScanResponse, SearchRequest, SearchResponse};
use search::server::{CorsOrigins, ServerConfig};

/// gRPC-Web's trailer frame flag.
const TRAILERS: u8 = 0x80;

async fn grpc_web(server: &TestServer, version: Version, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let request = request("POST", path)
        .header("content-type", content_type)
        // What grpc-web clients send: the answer in the request's format.
        .header("accept", content_type)
        .header("x-grpc-web", "1")
        .body(Full::new(Bytes::from(body)))
        .expect("valid request");
    send(server.addr, version, request).await
}

/// The messages and the trailer block of a gRPC-Web body.
fn split(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let frames = envelopes(body);
    let (last, messages) = frames.split_last().expect("a trailer frame");
    assert_eq!(last.0, TRAILERS, "the last frame holds the trailers");
    assert!(messages.iter().all(|(flags, _)| *flags == 0));
    (messages.iter().map(|(_, m)| m.clone()).collect(), String::from_utf8_lossy(&last.1).to_lowercase())
}

#[tokio::test]
async fn binary_grpc_web_over_both_http_versions() {
    let server = TestServer::start().await;
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let body = envelope(0, &SearchRequest { query: "Banana".into() }.encode_to_vec());
        let answer =
            grpc_web(&server, version, "/search.v1.SearchService/Search", "application/grpc-web+proto", body).await;
        assert_eq!(answer.status, 200, "{version:?}");
        assert!(answer.header("content-type").starts_with("application/grpc-web"), "{answer:?}");
        let (messages, trailers) = split(&answer.body);
        assert_eq!(SearchResponse::decode(&messages[0][..]).expect("a SearchResponse").status, 1);
        assert!(trailers.contains("grpc-status:0"), "{trailers}");
    }
    // Server streaming over HTTP/1.1, on the article's path's neighbour.
    let body = envelope(0, &ScanRequest { text: "banana\nBANANA".into() }.encode_to_vec());
    let answer =
        grpc_web(&server, Version::HTTP_11, "/search.v1.SearchService/Scan", "application/grpc-web", body).await;
    let (messages, trailers) = split(&answer.body);
    let offsets: Vec<u64> = messages
        .iter()
        .flat_map(|m| ScanResponse::decode(&m[..]).expect("a ScanResponse").matches)
        .map(|m| m.offset)
        .collect();
    assert_eq!(offsets, [0, 7]);
    assert!(trailers.contains("grpc-status:0"));
    server.stop().await;
}

#[tokio::test]
async fn text_grpc_web_is_base64_both_ways() {
    let server = TestServer::start().await;
    let body = envelope(0, &SearchRequest { query: "no".into() }.encode_to_vec());
    let text = STANDARD.encode(body).into_bytes();
    let answer = grpc_web(&server, Version::HTTP_11, "/Search/search", "application/grpc-web-text", text).await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").starts_with("application/grpc-web-text"), "{answer:?}");
    // Each chunk is base64 of its own, padding included: decode quad by quad.
    let decoded: Vec<u8> =
        answer.body.chunks(4).flat_map(|quad| STANDARD.decode(quad).expect("base64 quads")).collect();
    let (messages, trailers) = split(&decoded);
    assert_eq!(SearchResponse::decode(&messages[0][..]).expect("a SearchResponse").status, 0);
    assert!(trailers.contains("grpc-status:0"));
    server.stop().await;
}

#[tokio::test]
async fn grpc_web_errors_travel_in_the_trailer_frame() {
    let config = ServerConfig { max_recv_bytes: 16, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let body = envelope(0, &SearchRequest { query: "x".repeat(64) }.encode_to_vec());
    let answer =
        grpc_web(&server, Version::HTTP_11, "/search.v1.SearchService/Search", "application/grpc-web+proto", body)
            .await;
    let status = answer.header("grpc-status").to_owned();
    let in_frame = if status.is_empty() { split(&answer.body).1 } else { format!("grpc-status:{status}") };
    assert!(in_frame.contains("grpc-status:8"), "RESOURCE_EXHAUSTED: {in_frame}");
    server.stop().await;
}

async fn preflight(server: &TestServer, origin: &str) -> Answer {
    let request = request("OPTIONS", "/search.v1.SearchService/Search")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-grpc-web,connect-protocol-version")
        .body(Full::default())
        .expect("valid request");
    send(server.addr, Version::HTTP_11, request).await
}

#[tokio::test]
async fn cors_lets_only_the_allowed_origins_in() {
    let allowed = "https://app.example.com";
    let config = ServerConfig {
        cors: CorsOrigins::List(vec![http::HeaderValue::from_static(allowed)]),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    let answer = preflight(&server, allowed).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), allowed);
    assert!(answer.header("access-control-allow-methods").contains("POST"));
    assert!(answer.header("access-control-allow-headers").contains("x-grpc-web"));
    let other = preflight(&server, "https://evil.example.com").await;
    assert_eq!(other.header("access-control-allow-origin"), "", "an origin not listed gets no grant");

    // The call itself carries the grant and exposes the gRPC headers.
    let request = request("POST", "/search.v1.SearchService/Search")
        .header("origin", allowed)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"query":"banana"}"#)))
        .expect("valid request");
    let answer = send(server.addr, Version::HTTP_11, request).await;
    assert_eq!(answer.text(), r#"{"status":1}"#);
    assert_eq!(answer.header("access-control-allow-origin"), allowed);
    assert!(answer.header("access-control-expose-headers").contains("grpc-status"));
    server.stop().await;

    // By default no origin is allowed.
    let server = TestServer::start().await;
    assert_eq!(preflight(&server, allowed).await.header("access-control-allow-origin"), "");
    server.stop().await;
}

#[tokio::test]
async fn bidirectional_grpc_web_needs_http2() {
    let server = TestServer::start().await;
    let body = envelope(0, &search::pb::v1::ClassifyRequest { queries: vec!["banana".into()] }.encode_to_vec());
    let path = "/search.v1.SearchService/Classify";
    let answer = grpc_web(&server, Version::HTTP_11, path, "application/grpc-web+proto", body.clone()).await;
    assert_eq!(answer.status, 505, "as connect-go answers every protocol");
    let answer = grpc_web(&server, Version::HTTP_2, path, "application/grpc-web+proto", body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(split(&answer.body).0.len(), 1, "one answer over HTTP/2");
    server.stop().await;
}

#[tokio::test]
async fn grpc_in_json_is_refused_as_an_unsupported_content_type() {
    let server = TestServer::start().await;
    let body = envelope(0, br#"{"query":"banana"}"#);
    for (version, content_type) in [
        (Version::HTTP_2, "application/grpc+json"),
        (Version::HTTP_11, "application/grpc-web+json"),
        (Version::HTTP_2, "application/grpc-web+json"),
    ] {
        let answer = grpc_web(&server, version, "/search.v1.SearchService/Search", content_type, body.clone()).await;
        assert_eq!(answer.status, 415, "{content_type} over {version:?}");
    }
    server.stop().await;
}

async fn get(server: &TestServer, version: Version, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let request = headers.iter().fold(request(method, path), |request, (name, value)| request.header(*name, *value));
    send(server.addr, version, request.body(Full::default()).expect("valid request")).await
}

#[tokio::test]
async fn the_page_is_served_with_its_headers_beside_the_calls() {
    let server = TestServer::start().await;
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let page = get(&server, version, "GET", "/", &[]).await;
        assert_eq!(page.status, 200, "{version:?}");
        assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
        assert_eq!(page.header("cache-control"), "no-cache");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
        let policy = page.header("content-security-policy");
        assert!(policy.starts_with("default-src 'none';") && policy.contains("connect-src 'self'"), "{policy}");
        let html = page.text();
        let build = html.split(r#"src="app.js?v="#).nth(1).and_then(|rest| rest.split('"').next());
        let build = build.unwrap_or_else(|| panic!("the page names its script with its build: {html}"));
        assert_eq!(page.header("content-length"), page.body.len().to_string());

        let script = get(&server, version, "GET", "/app.js", &[("accept-encoding", "gzip, br")]).await;
        assert_eq!((script.status.as_u16(), script.header("content-encoding")), (200, "gzip"));
        assert_eq!(script.header("content-type"), "text/javascript; charset=utf-8");
        assert_eq!(script.header("vary"), "accept-encoding");
        let plain = get(&server, version, "GET", "/app.js", &[]).await;
        assert_eq!(plain.header("content-encoding"), "");
        assert!(plain.body.len() > script.body.len());
        assert_ne!(plain.header("etag"), script.header("etag"));
        assert_eq!(plain.header("etag"), format!("\"{build}\""));

        // The script at the version the page names is kept for good; at
        // another it is revalidated like the page.
        let kept = get(&server, version, "GET", &format!("/app.js?v={build}"), &[]).await;
        assert_eq!(kept.header("cache-control"), "public, max-age=31536000, immutable");
        let stale = get(&server, version, "GET", "/app.js?v=0123456789abcdef", &[]).await;
        assert_eq!((stale.status.as_u16(), stale.header("cache-control")), (200, "no-cache"));

        // HEAD: the same head, no body.
        let head = get(&server, version, "HEAD", "/app.css", &[]).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), "text/css; charset=utf-8");
        assert_ne!(head.header("content-length"), "0");
        assert!(head.body.is_empty());

        // Revalidation: unchanged is a 304 with no body.
        let etag = page.header("etag");
        let again = get(&server, version, "GET", "/", &[("if-none-match", etag)]).await;
        assert_eq!((again.status.as_u16(), again.body.len()), (304, 0));

        let post = get(&server, version, "POST", "/favicon.svg", &[]).await;
        assert_eq!((post.status.as_u16(), post.header("allow")), (405, "GET, HEAD"));
        assert_eq!(get(&server, version, "GET", "/nothing-here", &[]).await.status, 404);
        assert_eq!(get(&server, version, "GET", "/favicon.ico", &[]).await.status, 404);
    }
    // The calls are untouched: Connect's GET of Search, and gRPC-Web.
    let query = "/search.v1.SearchService/Search?connect=v1&encoding=json&message=%7B%22query%22%3A%22Banana%22%7D";
    let answer = get(&server, Version::HTTP_11, "GET", query, &[]).await;
    assert_eq!((answer.status.as_u16(), answer.text().as_str()), (200, r#"{"status":1}"#));
    let body = envelope(0, &SearchRequest { query: "Banana".into() }.encode_to_vec());
    let web =
        grpc_web(&server, Version::HTTP_11, "/search.v1.SearchService/Search", "application/grpc-web", body).await;
    assert_eq!(SearchResponse::decode(&split(&web.body).0[0][..]).expect("a SearchResponse").status, 1);
    server.stop().await;
}

#[tokio::test]
async fn without_the_page_its_paths_are_not_found() {
    let config = ServerConfig { page: false, ..ServerConfig::default() };
    let server = TestServer::start_with("127.0.0.1:0", config).await;
    for path in ["/", "/app.js"] {
        let answer = get(&server, Version::HTTP_11, "GET", path, &[]).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.header("content-security-policy"), "");
    }
    server.stop().await;
}
