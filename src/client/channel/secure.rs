//! TLS for `https://` targets, set up by the client over each dialed socket
//! (rustls, ALPN `h2`) instead of by tonic, so that what the server's TLS
//! says after the handshake reaches the calls. With TLS 1.3 the client's
//! side of the handshake is over before the server has checked the client's
//! certificate; a server that requires one answers with an alert
//! (`certificate_required`), often before a call has reached the new
//! connection, and hyper then fails that call with nothing but "connection
//! closed". The connection's reads here record the error its TLS session
//! ended with before the server answered anything, for the call's error to
//! name (`failure.rs`).
//!
//! tonic's own TLS (checked) wraps the connector's socket inside its
//! channel and keeps the session's errors to its connection task.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use super::connectivity::Connectivity;
use super::dial::TrackedStream;
use super::target::Target;
use crate::client::Error;
use crate::tls::ClientTls;

/// What a dial can fail with: the dialer's error, or the TLS handshake's.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connection's socket: plaintext, or TLS whose errors are recorded.
pub type Secured = Either<TrackedStream, Recorded>;

/// Dials with `inner`, then sets up TLS when the target has it.
#[derive(Clone)]
pub(super) struct SecureConnector<C> {
    inner: C,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connectivity: Connectivity,
}

impl<C> SecureConnector<C> {
    /// `inner`'s sockets, with TLS for the server named `name` when `tls`
    /// is given; the errors go to `connectivity`.
    pub(super) fn new(
        inner: C,
        tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
        connectivity: Connectivity,
    ) -> Self {
        let tls = tls.map(|(config, name)| (TlsConnector::from(config), name));
        Self { inner, tls, connectivity }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<Secured>, BoxError>> + Send>>;

impl<C> tower::Service<Uri> for SecureConnector<C>
where
    C: tower::Service<Uri, Response = TokioIo<TrackedStream>>,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = TokioIo<Secured>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let dialing = self.inner.call(uri);
        let (tls, connectivity) = (self.tls.clone(), self.connectivity.clone());
        Box::pin(async move {
            let socket = dialing.await.map_err(Into::into)?.into_inner();
            let Some((connector, name)) = tls else {
                return Ok(TokioIo::new(Either::Left(socket)));
            };
            connectivity.set_refused(None);
            // A failed handshake is an io::Error holding rustls's error,
            // which `failure.rs` names.
            let session = connector.connect(name, socket).await?;
            Ok(TokioIo::new(Either::Right(Recorded { session: Box::new(session), connectivity })))
        })
    }
}

/// A TLS session whose read errors, before the server has answered
/// anything, are recorded in its subchannel's connectivity.
#[derive(Debug)]
pub struct Recorded {
    session: Box<TlsStream<TrackedStream>>,
    connectivity: Connectivity,
}

impl AsyncRead for Recorded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = Pin::new(&mut *this.session).poll_read(cx, buf);
        if let Poll::Ready(Err(err)) = &read
            && !this.connectivity.answered()
        {
            this.connectivity.set_refused(Some(err.to_string()));
        }
        read
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().session).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().session).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.session.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().session).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().session).poll_shutdown(cx)
    }
}

/// The TLS settings and the name the server's certificate must have, for an
/// `https://` target.
///
/// # Errors
/// [`Error::Connect`] when the CA or the client certificate is refused, or
/// the host is not a name a certificate can have.
pub(super) fn client_config(
    target: &Target,
    tls: &ClientTls,
) -> Result<Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>, Error> {
    if !target.is_tls() {
        return Ok(None);
    }
    let invalid =
        |cause: String| Error::Connect { target: target.to_string(), cause: format!("invalid TLS settings: {cause}") };
    let config = tls.rustls_config(vec![b"h2".to_vec()]).map_err(|err| invalid(err.to_string()))?;
    let name = ServerName::try_from(target.host().to_owned()).map_err(|err| invalid(err.to_string()))?;
    Ok(Some((config, name)))
}

/// What a TLS session that ended before the server answered says: a
/// server that requires a client certificate, or the alert as it came.
pub(in crate::client) fn refusal(why: &str) -> String {
    if why.contains("CertificateRequired") {
        format!("the server refused the TLS session: {why} (it requires a client certificate)")
    } else {
        format!("the server ended the TLS session: {why}")
    }
}
