//! The future every service of the stack returns for a call
//! ([`CallFuture`]), from the page and the protocols down to the routes,
//! and a call answered at once, or refused at once before its request was
//! read.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use http::Response;
use tonic::body::Body;

use crate::server::transport::read_out;

/// What every service of the stack returns for a call: boxed, so that what
/// hyper holds and moves per stream is two words.
pub(in crate::server) type CallFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// A call answered at once with `response`.
pub(in crate::server) fn answered(response: Response<Body>) -> CallFuture {
    Box::pin(std::future::ready(Ok(response)))
}

/// A call refused with `response` before its request was read: answered
/// at once, the rest of its request read and dropped in the background
/// (bounded: `transport/linger.rs`), so that its HTTP/2 stream closes as a
/// whole exchange instead of being reset.
pub(in crate::server) fn refused(request: Body, response: Response<Body>) -> CallFuture {
    read_out(request);
    answered(response)
}
