//! The future every service of the stack returns for a call
//! ([`CallFuture`]), from the page and the protocols down to the routes,
//! and a call answered at once.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use http::Response;
use tonic::body::Body;

/// What every service of the stack returns for a call: boxed, so that what
/// hyper holds and moves per stream is two words.
pub(in crate::server) type CallFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// A call answered at once with `response`.
pub(in crate::server) fn answered(response: Response<Body>) -> CallFuture {
    Box::pin(std::future::ready(Ok(response)))
}
