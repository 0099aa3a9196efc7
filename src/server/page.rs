//! The web page: `web/dist/` (built from `web/src/`, a client generated from
//! the same contract) included in the binary and answered at its own few
//! paths, outermost, before any protocol sees the request. Every other
//! request, the Connect `GET` of Search included, goes on untouched, and
//! the transport's limits apply to the page's requests as to any other.
//!
//! tower-http's `ServeDir` (checked) serves files from disk, which a
//! binary that carries its page has none of; four files held in memory
//! need no more than this.

use std::convert::Infallible;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, VARY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tonic::body::Body;
use tower::{Layer, Service};

use super::protocols::{CallFuture, answered};

/// What the page may load: its own script, style and icon, and calls to the
/// server that served it; nothing inline, nothing from elsewhere, and no
/// framing by other sites.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's files, at their paths.
static ASSETS: LazyLock<[Asset; 4]> = LazyLock::new(|| {
    [
        Asset::new("/", "text/html; charset=utf-8", include_bytes!("../../web/dist/index.html"), None),
        Asset::new(
            "/app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../web/dist/app.js"),
            Some(include_bytes!("../../web/dist/app.js.gz")),
        ),
        Asset::new("/app.css", "text/css; charset=utf-8", include_bytes!("../../web/dist/app.css"), None),
        Asset::new("/favicon.svg", "image/svg+xml", include_bytes!("../../web/dist/favicon.svg"), None),
    ]
});

/// One file of the page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// The same bytes gzipped by the build, for browsers that take gzip.
    gzip: Option<&'static [u8]>,
    /// The hash of `body`, in hex: the page asks for `path?v=<version>`
    /// (`web/build.mjs` writes it with the same hash).
    version: String,
    /// A strong validator of `body` (and one of `gzip`, which differs).
    etag: HeaderValue,
    gzip_etag: HeaderValue,
}

impl Asset {
    fn new(path: &'static str, content_type: &'static str, body: &'static [u8], gzip: Option<&'static [u8]>) -> Self {
        let version = format!("{:016x}", fnv1a(body));
        let etag = |suffix: &str| {
            HeaderValue::from_str(&format!("\"{version}{suffix}\"")).expect("hex digits are a header value")
        };
        Self { path, content_type, body, gzip, etag: etag(""), gzip_etag: etag("-gzip"), version }
    }

    /// Whether `request` names this very build of the file (`?v=<version>`),
    /// whose bytes never change (the page itself is never named so).
    fn versioned<B>(&self, request: &Request<B>) -> bool {
        self.path != "/" && request.uri().query().and_then(|query| query.strip_prefix("v=")) == Some(&self.version)
    }

    /// The bytes to send, their validator, and whether they are gzipped.
    fn choose(&self, headers: &HeaderMap) -> (&'static [u8], &HeaderValue, bool) {
        match self.gzip {
            Some(gzip) if accepts_gzip(headers) => (gzip, &self.gzip_etag, true),
            _ => (self.body, &self.etag, false),
        }
    }
}

/// FNV-1a, 64 bits: enough to tell two builds of a file apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Whether `Accept-Encoding` takes gzip (by name or `*`, with a weight
/// above zero).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let weight = parts
                .find_map(|param| param.strip_prefix("q=").or_else(|| param.strip_prefix("Q=")))
                .map_or(Some(1.0), |q| q.parse::<f32>().ok());
            (name.eq_ignore_ascii_case("gzip") || name == "*") && weight.is_some_and(|q| q > 0.0)
        })
}

/// Whether `If-None-Match` names `etag` (or is `*`), weakly compared as
/// RFC 9110 says a GET's must be.
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    headers.get_all(IF_NONE_MATCH).iter().flat_map(|value| value.as_bytes().split(|&b| b == b',')).any(|tag| {
        let tag = tag.trim_ascii();
        tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours
    })
}

/// The answer to `request` for `asset`.
fn answer<B>(asset: &Asset, request: &Request<B>) -> Response<Body> {
    let mut headers = HeaderMap::new();
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return respond(StatusCode::METHOD_NOT_ALLOWED, headers, Body::empty());
    }
    let (bytes, etag, gzipped) = asset.choose(request.headers());
    // A file named with its version is kept for good (a new build is a new
    // URL); anything else, the page first, is revalidated on every load (a
    // 304 when unchanged), so that a new build is never hidden.
    let cache = if asset.versioned(request) { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(ETAG, etag.clone());
    if asset.gzip.is_some() {
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    if not_modified(request.headers(), etag) {
        return respond(StatusCode::NOT_MODIFIED, headers, Body::empty());
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    if gzipped {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // HEAD: the same head, no body.
    let body = if method == Method::GET { Body::new(Full::new(Bytes::from_static(bytes))) } else { Body::empty() };
    respond(StatusCode::OK, headers, body)
}

fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The page's layer, outermost: see the module documentation. Off, it
/// answers nothing and every request goes on.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageLayer {
    on: bool,
}

impl PageLayer {
    /// Serving the page when `on`.
    pub(super) fn new(on: bool) -> Self {
        if on {
            LazyLock::force(&ASSETS);
        }
        Self { on }
    }
}

impl<S> Layer<S> for PageLayer {
    type Service = Page<S>;

    fn layer(&self, inner: S) -> Page<S> {
        Page { on: self.on, inner }
    }
}

/// The page's paths answered, the rest passed to `inner`.
#[derive(Debug, Clone)]
pub(super) struct Page<S> {
    on: bool,
    inner: S,
}

impl<S> Service<Request<Body>> for Page<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future = CallFuture>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = CallFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // A gRPC or gRPC-Web request is a call, whatever its path: its
        // client reads a grpc-status (UNIMPLEMENTED here), not a page's 405.
        let call =
            request.headers().get(CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
        if self.on && !call {
            let path = request.uri().path();
            if let Some(asset) = ASSETS.iter().find(|asset| asset.path == path) {
                return answered(answer(asset, &request));
            }
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn headers(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_static(value))).collect()
    }

    #[test]
    fn gzip_is_sent_only_to_who_takes_it() {
        assert!(accepts_gzip(&headers(&[(ACCEPT_ENCODING, "gzip, deflate, br, zstd")])));
        assert!(accepts_gzip(&headers(&[(ACCEPT_ENCODING, "br;q=1.0, GZIP;q=0.5")])));
        assert!(accepts_gzip(&headers(&[(ACCEPT_ENCODING, "*")])));
        assert!(!accepts_gzip(&headers(&[(ACCEPT_ENCODING, "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(ACCEPT_ENCODING, "br, identity")])));
        assert!(!accepts_gzip(&headers(&[(ACCEPT_ENCODING, "gzip;q=nonsense")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_matching_validator_is_not_modified() {
        let etag = HeaderValue::from_static("\"0123456789abcdef\"");
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "\"0123456789abcdef\"")]), &etag));
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "\"x\", W/\"0123456789abcdef\"")]), &etag));
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "*")]), &etag));
        assert!(!not_modified(&headers(&[(IF_NONE_MATCH, "\"0123456789abcdee\"")]), &etag));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }

    /// Found by the dispatch fuzz target: a gRPC call to `/` got the page's
    /// 405, without the grpc-status its client reads.
    #[test]
    fn a_grpc_request_to_a_page_path_is_a_call() {
        use futures_util::FutureExt;
        use tower::ServiceExt;
        let status = |method: Method, content_type: Option<&'static str>| {
            let inner = tower::service_fn(|_: Request<Body>| answered(Response::new(Body::empty())));
            let mut request = Request::builder().method(method).uri("/");
            if let Some(content_type) = content_type {
                request = request.header(CONTENT_TYPE, content_type);
            }
            let request = request.body(Body::empty()).expect("a request");
            let answer = PageLayer::new(true).layer(inner).oneshot(request).now_or_never().expect("answered at once");
            answer.map_or_else(|never| match never {}, |answer| answer.status())
        };
        // The inner service's 200: the request went on to the calls.
        assert_eq!(status(Method::POST, Some("application/grpc")), StatusCode::OK);
        assert_eq!(status(Method::POST, Some("application/grpc-web-text")), StatusCode::OK);
        assert_eq!(status(Method::POST, None), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(status(Method::POST, Some("application/json")), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn the_page_names_each_file_with_its_version() {
        let [page, files @ ..] = &*ASSETS;
        let html = std::str::from_utf8(page.body).expect("UTF-8");
        for file in files {
            let named = format!("\"{}?v={}\"", &file.path[1..], file.version);
            assert!(html.contains(&named), "web/dist/index.html does not name {named}: run npm run build --prefix web");
        }
    }

    #[test]
    fn the_gzipped_bundle_is_the_bundle() {
        let [_, script, ..] = &*ASSETS;
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(script.gzip.expect("the bundle is gzipped"))
            .read_to_end(&mut inflated)
            .expect("valid gzip");
        assert!(inflated == script.body, "web/dist/app.js.gz is not web/dist/app.js: run npm run build --prefix web");
        assert_ne!(script.etag, script.gzip_etag);
    }
}
