//! A bare HTTP/2 server (h2c, hyper) that answers every request with a canned
//! gRPC response, `SearchResponse { status: 1 }` and `grpc-status: 0`,
//! without decoding anything: the floor no gRPC server can beat, for the
//! comparison in `bench/compare.py`. It reads each request body to its end,
//! as any server must, and prints its address like the real server.
//!
//! `cargo run --release --example h2_floor -- 127.0.0.1:8100`

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The gRPC message prefix (uncompressed, 2 bytes) and `status: 1`.
const ANSWER: &[u8] = &[0, 0, 0, 0, 2, 0x08, 0x01];

type Canned = StreamBody<tokio_stream::Iter<std::array::IntoIter<Result<Frame<Bytes>, Infallible>, 2>>>;

async fn answer(request: Request<Incoming>) -> Result<Response<Canned>, Infallible> {
    // Read the request to its end; its content is not looked at.
    let _ = request.into_body().collect().await;
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = [Ok(Frame::data(Bytes::from_static(ANSWER))), Ok(Frame::trailers(trailers))];
    let mut response = Response::new(StreamBody::new(tokio_stream::iter(frames)));
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    Ok(response)
}

// The same allocator as the real server, so that the floor is not lower
// (or higher) for a reason that has nothing to do with gRPC.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8100".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(answer));
            let _ = connection.await;
        });
    }
}
